/**
 * Sentinel sweep: secret values planted in env, headers, URL user-info and query, arguments
 * and every `${VAR}`, then looked for in everything the supervisor shows or keeps — logs, API
 * answers, stream frames, error details, `check` output, every table of the database, the
 * stderr tail. Only masks may appear. Keys are ordinary names, so key-based redaction would
 * not catch them: only value-based redaction passes.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { hashToken } from '../src/http/auth.js';
import { PGLITE_SUBDIR } from '../src/store/pglite.js';
import { MASK } from '../src/redact.js';
import { createSupervisor, type Supervisor } from '../src/supervisor/create.js';
import { TransitionLog } from './helpers/fleet.js';
import { FrameClient } from './helpers/http-stack.js';
import { captureLogger, fixture, freePort } from './mcp.harness.js';

const SENTINELS = {
  env: 'snt-env-4b1e7d',
  header: 'snt-header-9a02c3',
  userinfo: 'snt-userinfo-51f8aa',
  query: 'snt-query-c7d316',
  arg: 'snt-arg-0e94bb',
  envVar: 'snt-envvar-77ad10',
  headerVar: 'snt-headervar-3c5e21',
  argVar: 'snt-argvar-e61b09',
  token: 'snt-token-clear-2d8f44aa',
};
const ADMIN_TOKEN = 'secrets-admin-token-0123';
const ROOT = fileURLToPath(new URL('..', import.meta.url));

function servers(closedPort: number): Record<string, unknown> {
  return {
    leaky: {
      command: process.execPath,
      args: [fixture('leaky.mjs'), `--api-key=${SENTINELS.arg}`, '${ARG_VAR}'],
      env: { LEAK: SENTINELS.env, PLAIN_NAME: '${ENV_VAR}' },
    },
    remote: {
      type: 'http',
      url: `http://bob:${SENTINELS.userinfo}@127.0.0.1:${closedPort}/mcp?k=${SENTINELS.query}`,
      headers: { Authorization: 'Bearer ${HEADER_VAR}', 'X-Plain': SENTINELS.header },
    },
  };
}

const env = {
  ...process.env,
  ENV_VAR: SENTINELS.envVar,
  HEADER_VAR: SENTINELS.headerVar,
  ARG_VAR: SENTINELS.argVar,
};

/** Everything gathered from one run, by where it came from. */
const seen: Record<string, string[]> = {
  logs: [],
  api: [],
  frames: [],
  database: [],
  check: [],
};
let dataDir: string;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'secrets-'));
  const closedPort = await freePort();
  const { logger, lines } = captureLogger();
  const supervisor: Supervisor = await createSupervisor({
    servers: servers(closedPort),
    settings: { 'backoff.baseMs': 10, 'backoff.capMs': 100, 'shutdown.graceMs': 300 },
    store: { dataDir },
    http: { port: 0, users: [{ name: 'root', tokenHash: hashToken(ADMIN_TOKEN) }] },
    logger,
    env,
  });
  const log = new TransitionLog(supervisor);
  const url = supervisor.url ?? '';
  const client = new FrameClient(`${url.replace('http', 'ws')}/ws`, [
    'mcp-supervisor.v1',
    `bearer.${ADMIN_TOKEN}`,
  ]);
  client.ws.on('message', (data) => seen.frames?.push(String(data)));

  try {
    await client.opened();
    await log.reach('leaky', 'closed');
    await log.next((t) => t.server === 'remote' && t.to === 'open');

    const api = async (method: string, route: string, body?: unknown): Promise<void> => {
      const res = await fetch(`${url}${route}`, {
        method,
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      seen.api?.push(await res.text());
    };

    await api('POST', '/api/servers/leaky/tools/echo', { text: 'hello' });
    await api('POST', '/api/servers/leaky/tools/fail', {});
    await api('POST', '/api/servers/remote/tools/anything', {});
    const dying = log.lastSeq;
    await api('POST', '/api/servers/leaky/tools/die', {});
    await log.next((t) => t.server === 'leaky' && t.reason === 'process_exited', dying);
    await log.reach('leaky', 'closed', dying);
    for (const route of ['/api/servers', '/api/servers/leaky', '/api/servers/remote']) {
      await api('GET', route);
    }
    await api('GET', '/api/transitions?limit=1000');
    await api('GET', '/api/settings');
    await api('POST', '/api/servers/remote/enable');
  } finally {
    client.ws.terminate();
    await supervisor.stop();
  }

  seen.logs = lines.map((line) => JSON.stringify(line));
  seen.database = await dumpDatabase(dataDir);
  seen.check = await runCheck(closedPort);
}, 60_000);

afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

/** Every row of every table of the PGlite data directory, as JSON text. */
async function dumpDatabase(dir: string): Promise<string[]> {
  const db = new PGlite(path.join(dir, PGLITE_SUBDIR));
  try {
    const tables = await db.query<{ table_name: string }>(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
    );
    const out: string[] = [];
    for (const { table_name: table } of tables.rows) {
      const rows = await db.query(`SELECT * FROM "${table}"`);
      out.push(`${table}: ${JSON.stringify(rows.rows)}`);
    }

    return out;
  } finally {
    await db.close();
  }
}

/** `check` on a config holding every sentinel, plus a user whose token is given in clear. */
async function runCheck(closedPort: number): Promise<string[]> {
  const file = path.join(dataDir, 'mcp.json');
  const config = {
    mcpServers: { ...servers(closedPort), broken: { command: 'x', args: ['${NOT_SET_ANYWHERE}'] } },
    supervisor: { users: [{ name: 'ops', role: 'admin', token: SENTINELS.token }] },
  };
  await writeFile(file, JSON.stringify(config));

  const result = spawnSync(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), 'check', '--config', file],
    { cwd: ROOT, encoding: 'utf8', env },
  );

  return [result.stdout, result.stderr];
}

describe.each(Object.keys(seen).map((where) => [where]))('%s', (where) => {
  it.each(Object.entries(SENTINELS))('never hold the %s sentinel', (_kind, sentinel) => {
    const text = (seen[where] ?? []).join('\n');

    expect(text.length).toBeGreaterThan(0);
    expect(text).not.toContain(sentinel);
  });
});

describe('the masks', () => {
  it('stand where the stderr tail held secrets', () => {
    const detail = seen.api?.find(
      (body) => body.includes('"stderrTail"') && body.includes('leaky'),
    );

    expect(detail).toContain(`LEAK=${MASK} args=--api-key=${MASK} ${MASK}`);
  });

  it('stand in the transition detail of the crash', () => {
    const frames = (seen.frames ?? []).filter((f) => f.includes('process_exited'));

    expect(frames.join('\n')).toContain(`dying with ${MASK}`);
  });

  it('leave the check output naming the refused token by its path', () => {
    expect(seen.check?.join('\n')).toContain('supervisor.users[0].token');
  });
});
