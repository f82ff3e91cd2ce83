/**
 * Leaks (issue 4, item 8): each stdio server's process-group RSS and CPU in the status, and
 * `restart.maxRssBytes` / `restart.maxUptimeMs` restarting a server on the probe tick. Probe
 * intervals run on a simulated clock; the memory is real.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';

import { createSupervisor, type Supervisor } from '../src/supervisor/create.js';
import { TransitionLog } from './helpers/fleet.js';
import { fixture, isLive } from './mcp.harness.js';

const MiB = 1024 * 1024;
const INTERVAL_MS = 10_000;
let running: Supervisor[] = [];

afterEach(async () => {
  await Promise.all(running.map((s) => s.stop()));
  running = [];
});

interface Started {
  supervisor: Supervisor;
  log: TransitionLog;
  clock: SimulatedClock;
  /** Moves the clock one probe interval and resolves once that probe has settled. */
  tick(): Promise<void>;
}

async function start(settings: Record<string, unknown> = {}): Promise<Started> {
  const clock = new SimulatedClock();
  clock.set(Date.now());
  const settled: Array<() => void> = [];
  const supervisor = await createSupervisor({
    servers: {
      leaky: { command: process.execPath, args: [fixture('leaky-memory.mjs')] },
      broken: { command: process.execPath, args: [fixture('exit-on-start.mjs')] },
    },
    settings: { 'health.intervalMs': INTERVAL_MS, 'shutdown.graceMs': 300, ...settings },
    clock,
    random: () => 0.5,
    inspect: (event) => {
      if (event.type !== '@xstate.event') return;
      const type = event.event.type as string;
      if (/^probe\.(ok|failed)$/.test(type)) settled.splice(0).forEach((r) => r());
    },
  });
  running.push(supervisor);
  const log = new TransitionLog(supervisor);
  await log.reach('leaky', 'closed');

  const tick = (): Promise<void> => {
    const done = new Promise<void>((resolve) => settled.push(resolve));
    clock.increment(INTERVAL_MS);
    return done;
  };

  return { supervisor, log, clock, tick };
}

function leaky(supervisor: Supervisor) {
  const status = supervisor.servers().find((s) => s.name === 'leaky');
  if (!status) throw new Error('no status for leaky');

  return status;
}

describe('process-tree usage in the status', () => {
  it('counts the memory of every process in the group, the leader and its helper', async () => {
    const { supervisor } = await start();
    const before = leaky(supervisor).rssBytes ?? 0;

    await supervisor.callTool('leaky', 'grow', { mb: 64 });

    const after = leaky(supervisor).rssBytes ?? 0;
    expect(before).toBeGreaterThan(0);
    expect(after - before).toBeGreaterThanOrEqual(60 * MiB);
    expect(supervisor.server('leaky')!.rssBytes).toBeGreaterThanOrEqual(after - 8 * MiB);
  });

  it('reports the group CPU time in milliseconds, growing with work', async () => {
    const { supervisor } = await start();
    const before = leaky(supervisor).cpuMs ?? -1;

    await supervisor.callTool('leaky', 'grow', { mb: 128 });

    expect(before).toBeGreaterThanOrEqual(0);
    expect(leaky(supervisor).cpuMs).toBeGreaterThan(before);
  });

  it('reports null usage for a server with no live process', async () => {
    const { supervisor, log } = await start();
    await log.reach('broken', 'open');

    const broken = supervisor.servers().find((s) => s.name === 'broken')!;
    expect(broken.rssBytes).toBeNull();
    expect(broken.cpuMs).toBeNull();
  });
});

describe('restart.maxRssBytes', () => {
  it('restarts a server past the limit on the next probe tick, with the crossing', async () => {
    const { supervisor, log, clock } = await start();
    const baseline = leaky(supervisor).rssBytes!;
    const oldPid = leaky(supervisor).pid!;
    const limit = baseline + 32 * MiB;
    supervisor.applySettings({ ...supervisor.settings(), 'restart.maxRssBytes': limit });
    await supervisor.callTool('leaky', 'grow', { mb: 64 });
    const mark = log.lastSeq;

    clock.increment(INTERVAL_MS);
    const restart = await log.next((t) => t.server === 'leaky', mark);

    expect(restart).toMatchObject({ from: 'closed', to: 'connecting', reason: 'operator_restart' });
    expect(restart.detail).toMatchObject({ cause: 'max_rss', maxRssBytes: limit });
    expect(restart.detail.rssBytes).toBeGreaterThan(limit);
    expect(restart.detail).not.toHaveProperty('user');

    await log.reach('leaky', 'closed', restart.seq);
    expect(isLive(oldPid)).toBe(false);
    expect(leaky(supervisor).pid).not.toBe(oldPid);
    expect(leaky(supervisor).rssBytes).toBeLessThan(limit);
  });

  it('leaves a server under the limit alone on the probe tick', async () => {
    const { supervisor, log, tick } = await start();
    const limit = leaky(supervisor).rssBytes! + 256 * MiB;
    supervisor.applySettings({ ...supervisor.settings(), 'restart.maxRssBytes': limit });
    const mark = log.lastSeq;

    await tick();
    await new Promise((resolve) => setImmediate(resolve));

    expect(log.seen.filter((t) => t.seq > mark && t.server === 'leaky')).toEqual([]);
    expect(leaky(supervisor).state).toBe('closed');
  });
});

describe('restart.maxUptimeMs', () => {
  it('restarts a server connected longer than the limit, and not before', async () => {
    const { supervisor, log, tick } = await start({ 'restart.maxUptimeMs': 3 * INTERVAL_MS });
    const oldPid = leaky(supervisor).pid!;
    const mark = log.lastSeq;

    await tick();
    await tick();
    expect(log.seen.filter((t) => t.seq > mark && t.server === 'leaky')).toEqual([]);

    void tick();
    const restart = await log.next((t) => t.server === 'leaky' && t.to === 'connecting', mark);

    expect(restart.reason).toBe('operator_restart');
    expect(restart.detail).toMatchObject({ cause: 'max_uptime', maxUptimeMs: 3 * INTERVAL_MS });
    await log.reach('leaky', 'closed', restart.seq);
    expect(leaky(supervisor).pid).not.toBe(oldPid);
    expect(leaky(supervisor).uptimeMs).toBe(0);
  });
});
