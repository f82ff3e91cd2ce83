/**
 * Config reload: a valid new file restarts only the servers whose entries changed (reason
 * `config_changed`); a broken file is refused and the fleet is untouched.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { loadConfigOrThrow } from '../src/config/load.js';
import { ConfigReloader } from '../src/config/reload.js';
import { silentLogger } from '../src/log.js';
import { createSupervisor, type Supervisor } from '../src/supervisor/create.js';
import { TransitionLog } from './helpers/fleet.js';
import { fixture } from './mcp.harness.js';

const logger = silentLogger();
const server = (marker: string): Record<string, unknown> => ({
  command: process.execPath,
  args: [fixture('flaky.mjs'), marker],
});

let dir: string;
let file: string;
let supervisor: Supervisor;
let reloader: ConfigReloader;
let log: TransitionLog;

async function writeConfig(servers: Record<string, unknown>, extra = ''): Promise<void> {
  await writeFile(file, JSON.stringify({ mcpServers: servers }, null, 2) + extra);
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mcps-reload-'));
  file = join(dir, 'mcp.json');
  await writeConfig({ a: server('a1'), b: server('b1') });
  const loaded = await loadConfigOrThrow(file);

  supervisor = await createSupervisor({
    servers: loaded.servers,
    settings: { 'shutdown.graceMs': 300 },
    logger,
  });
  log = new TransitionLog(supervisor);
  await Promise.all([log.reach('a', 'closed'), log.reach('b', 'closed')]);

  const admin = supervisor.admin;
  if (!admin) throw new Error('no admin surface');
  reloader = new ConfigReloader({
    file,
    apply: (servers, settings) => admin.applyConfig(servers, settings),
    logger,
    debounceMs: 20,
  });
});

afterEach(async () => {
  reloader.close();
  await supervisor.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('config reload', () => {
  it('restarts only the server whose entry changed, with reason config_changed', async () => {
    const mark = log.lastSeq;
    await writeConfig({ a: server('a2'), b: server('b1') });

    const outcome = await reloader.reload();

    expect(outcome).toMatchObject({ ok: true, change: { changed: ['a'], added: [] } });
    const stopped = await log.reach('a', 'stopped', mark);
    expect(stopped.reason).toBe('config_changed');
    await log.reach('a', 'closed', stopped.seq);
    expect(log.seen.filter((t) => t.seq > mark && t.server === 'b')).toEqual([]);
  });

  it('refuses a broken file and leaves the fleet as it was', async () => {
    const mark = log.lastSeq;
    const before = supervisor.servers().map((s) => [s.name, s.pid]);
    await writeConfig({ a: server('a2'), c: { command: 7 } }, '\n}');

    const outcome = await reloader.reload();

    expect(outcome.ok).toBe(false);
    expect(outcome.problems.some((p) => p.severity === 'error')).toBe(true);
    expect(supervisor.servers().map((s) => [s.name, s.pid])).toEqual(before);
    expect(log.lastSeq).toBe(mark);
  });

  it('starts added servers and stops dropped ones with reason removed', async () => {
    await writeConfig({ a: server('a1'), c: server('c1') });

    await reloader.reload();

    expect((await log.reach('b', 'stopped')).reason).toBe('removed');
    await log.reach('c', 'closed');
    expect(supervisor.servers().map((s) => s.name)).toEqual(['a', 'c']);
  });

  it('reloads when the watched file changes', async () => {
    reloader.watch();
    const mark = log.lastSeq;

    await writeConfig({ a: server('a1'), b: server('b2') });

    const stopped = await log.reach('b', 'stopped', mark);
    expect(stopped.reason).toBe('config_changed');
    await log.reach('b', 'closed', stopped.seq);
  });

  it('applies a changed settings block of the file', async () => {
    await writeFile(
      file,
      JSON.stringify({
        mcpServers: { a: server('a1'), b: server('b1') },
        supervisor: { 'cache.ttlMs': 1_234 },
      }),
    );

    await reloader.reload();

    expect(supervisor.settings()['cache.ttlMs']).toBe(1_234);
  });
});
