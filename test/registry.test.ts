/**
 * The server registry through the API: persisted, merged with the config file's servers (which
 * are read-only there), stdio only when allowed, and every change applied to live actors.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { silentLogger } from '../src/log.js';
import { createSupervisor, type Supervisor } from '../src/supervisor/create.js';
import { TransitionLog } from './helpers/fleet.js';
import { eventually } from './helpers/postgres.js';
import { fixture } from './mcp.harness.js';

const flaky = { command: process.execPath, args: [fixture('flaky.mjs')] };
const logger = silentLogger();
let dataDir: string;
let running: Supervisor | null = null;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'mcps-registry-'));
});

afterEach(async () => {
  await running?.stop();
  running = null;
});

afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

async function start(allowStdio: boolean): Promise<{ supervisor: Supervisor; log: TransitionLog }> {
  const supervisor = await createSupervisor({
    servers: { fromFile: flaky },
    settings: { 'api.allowStdioServers': allowStdio, 'shutdown.graceMs': 300 },
    store: { dataDir },
    http: { port: 0 },
    logger,
  });
  running = supervisor;
  return { supervisor, log: new TransitionLog(supervisor) };
}

async function call(
  supervisor: Supervisor,
  method: 'PUT' | 'DELETE',
  name: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${supervisor.url}/api/servers/${name}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

describe('registry API', () => {
  it('refuses a stdio entry while api.allowStdioServers is off', async () => {
    const { supervisor } = await start(false);

    const answer = await call(supervisor, 'PUT', 'added', flaky);

    expect(answer.status).toBe(403);
    expect(supervisor.servers().map((s) => s.name)).toEqual(['fromFile']);
  });

  it('answers 409 for a config server, on PUT and on DELETE', async () => {
    const { supervisor } = await start(true);

    const put = await call(supervisor, 'PUT', 'fromFile', flaky);
    const del = await call(supervisor, 'DELETE', 'fromFile');

    expect([put.status, del.status]).toEqual([409, 409]);
    expect(put.json).toMatchObject({ error: { code: 'CONFLICT' } });
    expect(String((put.json.error as { message: string }).message)).toContain('config file');
  });

  it('answers 400 with the problems of a bad entry', async () => {
    const { supervisor } = await start(true);

    const answer = await call(supervisor, 'PUT', 'bad', { command: 42 });

    expect(answer.status).toBe(400);
    expect(answer.json).toMatchObject({ error: { code: 'INVALID_CONFIG' } });
  });

  it('spawns a PUT server live and keeps it across a restart', async () => {
    const first = await start(true);
    const answer = await call(first.supervisor, 'PUT', 'added', flaky);
    expect(answer.status).toBe(201);
    await first.log.reach('added', 'closed');
    await first.supervisor.stop();

    const second = await start(true);

    expect(second.supervisor.servers().map((s) => s.name)).toEqual(['fromFile', 'added']);
    await second.log.reach('added', 'closed');
  });

  it('restarts a replaced server with reason config_changed', async () => {
    const { supervisor, log } = await start(true);
    await Promise.all([log.reach('added', 'closed'), log.reach('fromFile', 'closed')]);
    const mark = log.lastSeq;

    const answer = await call(supervisor, 'PUT', 'added', { ...flaky, tags: ['new'] });

    expect(answer.status).toBe(200);
    const stopped = await log.reach('added', 'stopped', mark);
    const again = await log.reach('added', 'connecting', stopped.seq);
    expect([stopped.reason, again.reason]).toEqual(['config_changed', 'config_changed']);
    await log.reach('added', 'closed', again.seq);
    expect(log.seen.filter((t) => t.seq > mark && t.server === 'fromFile')).toEqual([]);
  });

  it('stops a deleted server with reason removed and forgets it', async () => {
    const { supervisor, log } = await start(true);
    await log.reach('added', 'closed');
    const pid = supervisor.servers().find((s) => s.name === 'added')?.pid ?? 0;

    const answer = await call(supervisor, 'DELETE', 'added');

    expect(answer.status).toBe(200);
    expect((await log.reach('added', 'stopped')).reason).toBe('removed');
    expect(supervisor.servers().map((s) => s.name)).toEqual(['fromFile']);
    await eventually(() => !isAlive(pid), 5_000, 'the process gone');
    expect((await call(supervisor, 'DELETE', 'added')).status).toBe(404);
  });
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
