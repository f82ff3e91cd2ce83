/**
 * Start-up against PostgreSQL: an unreachable database is waited for (`--database-wait-ms`),
 * then refused with one line naming host and port; a second supervisor on an owned database
 * (or PGlite directory) refuses to start; `seq` continues from the store.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { silentLogger } from '../src/log.js';
import { createSupervisor } from '../src/supervisor/create.js';
import {
  ADMIN_URL,
  canReachPostgres,
  createTestDatabase,
  TcpProxy,
  type TestDatabase,
} from './helpers/postgres.js';
import { freePort } from './mcp.harness.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = path.join(ROOT, 'src/cli.ts');
const logger = silentLogger();
let temp: string;

beforeAll(async () => {
  temp = await mkdtemp(path.join(tmpdir(), 'mcps-boot-'));
});

afterAll(async () => {
  await rm(temp, { recursive: true, force: true });
});

describe('start-up without a database', () => {
  it('exits 1 with one fatal line naming host and port once the wait is over', async () => {
    const config = path.join(temp, 'empty.json');
    await writeFile(config, JSON.stringify({ mcpServers: {} }));
    const port = await freePort();
    const url = `postgres://postgres@127.0.0.1:${port}/none`;

    const result = spawnSync(
      process.execPath,
      ['--import', 'tsx', CLI, 'start', '-c', config, '--database-url', url, '--port', '0'].concat([
        '--database-wait-ms',
        '600',
      ]),
      { cwd: ROOT, encoding: 'utf8', timeout: 20_000 },
    );

    expect(result.status).toBe(1);
    const lines = result.stdout.trim().split('\n');
    const fatal = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const fatalLines = fatal.filter((l) => l.level === 60);
    expect(fatalLines).toHaveLength(1);
    expect(String(fatalLines[0]?.msg)).toContain(`127.0.0.1:${port}`);
    expect(result.stdout + result.stderr).not.toMatch(/\n\s+at /);
  });

  it('refuses a second supervisor on the same PGlite directory', async () => {
    const dataDir = path.join(temp, 'owned');
    const first = await createSupervisor({ store: { dataDir }, logger });
    try {
      await expect(createSupervisor({ store: { dataDir }, logger })).rejects.toMatchObject({
        code: 'STORE_LOCKED',
      });
    } finally {
      await first.stop();
    }
  });
});

const reachable = await canReachPostgres();

if (!reachable && process.env.CI === 'true') {
  describe('start-up on PostgreSQL', () => {
    it('reaches PostgreSQL (required under CI)', () => {
      throw new Error(`PostgreSQL is unreachable at ${ADMIN_URL}`);
    });
  });
}

(reachable ? describe : describe.skip)('start-up on PostgreSQL', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase();
  });

  afterAll(async () => {
    await db.drop();
  });

  it('starts once a database that was away comes back within the wait', async () => {
    const proxy = new TcpProxy();
    await proxy.start();
    proxy.cut();
    try {
      const starting = createSupervisor({
        store: { databaseUrl: db.urlVia(proxy.port) },
        databaseWaitMs: 10_000,
        logger,
      });
      // The outage is the point here: the database really is away for a while.
      await new Promise((resolve) => setTimeout(resolve, 700));
      proxy.restore();

      const supervisor = await starting;
      await supervisor.stop();
    } finally {
      await proxy.close();
    }
  });

  it('refuses a second supervisor on an owned database', async () => {
    const first = await createSupervisor({ store: { databaseUrl: db.url }, logger });
    try {
      await expect(
        createSupervisor({ store: { databaseUrl: db.url }, logger }),
      ).rejects.toMatchObject({ code: 'STORE_LOCKED' });
    } finally {
      await first.stop();
    }
  });

  it('continues seq from the store after a restart', async () => {
    await db.sql`INSERT INTO transitions (seq, server, to_state, reason, at)
                 VALUES (41, 'old', 'closed', 'connected', now())`;
    const supervisor = await createSupervisor({ store: { databaseUrl: db.url }, logger });
    try {
      expect(supervisor.seq()).toBe(41);
    } finally {
      await supervisor.stop();
    }
  });
});
