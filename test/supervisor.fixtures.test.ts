/**
 * Misbehaving servers of our own, supervised for real. Time that the supervisor waits out
 * (probe intervals, timeouts, backoff) runs on a simulated clock; only I/O is waited for.
 */
import { randomUUID } from 'node:crypto';

import { afterEach, describe, expect, it } from 'vitest';
import { SimulatedClock, type InspectionEvent } from 'xstate';

import { isSupervisorError } from '../src/errors.js';
import { createSupervisor, type Supervisor } from '../src/supervisor/create.js';
import { TransitionLog } from './helpers/fleet.js';
import { captureLogger, fixture, livePidsWith } from './mcp.harness.js';

const node = process.execPath;
let running: Supervisor[] = [];

afterEach(async () => {
  await Promise.all(running.map((s) => s.stop()));
  running = [];
});

interface Started {
  supervisor: Supervisor;
  log: TransitionLog;
  clock: SimulatedClock;
  lines: Record<string, unknown>[];
  /** Resolves when the next probe actor (of any server) settles. */
  probeSettled(): Promise<void>;
}

async function start(
  servers: Record<string, unknown>,
  settings: Record<string, unknown> = {},
): Promise<Started> {
  const clock = new SimulatedClock();
  clock.set(Date.now());
  const { logger, lines } = captureLogger();
  const settled: Array<() => void> = [];

  const supervisor = await createSupervisor({
    servers,
    settings: {
      'health.intervalMs': 10_000,
      'health.timeoutMs': 2_000,
      'shutdown.graceMs': 300,
      ...settings,
    },
    logger,
    clock,
    random: () => 0.5,
    inspect: (event: InspectionEvent) => {
      if (event.type !== '@xstate.event') return;
      const type = event.event.type as string;
      const probed = type === 'probe.ok' || type === 'probe.failed';
      if (
        probed ||
        type.startsWith('xstate.done.actor.') ||
        type.startsWith('xstate.error.actor.')
      ) {
        settled.splice(0).forEach((resolve) => resolve());
      }
    },
  });
  running.push(supervisor);

  return {
    supervisor,
    log: new TransitionLog(supervisor),
    clock,
    lines,
    probeSettled: () => new Promise<void>((resolve) => settled.push(resolve)),
  };
}

async function failure(promise: Promise<unknown>): Promise<{ code: string; fields: object }> {
  try {
    await promise;
  } catch (error) {
    if (isSupervisorError(error)) return { code: error.code, fields: error.fields };
    throw error;
  }
  throw new Error('expected the call to fail');
}

describe('a server that exits during start-up', () => {
  it('fails fast with exit code and stderr, backs off, the supervisor stays up', async () => {
    const { supervisor, log, clock } = await start({
      broken: { command: node, args: [fixture('exit-on-start.mjs')] },
      healthy: { command: node, args: [fixture('noisy-stdout.mjs')] },
    });

    const opened = await log.reach('broken', 'open');
    expect(opened.reason).toBe('process_exited');
    expect(opened.detail.exitCode).toBe(3);
    expect(opened.detail.stderr).toContain('fatal: cannot start');
    expect(supervisor.server('broken')!.stderrTail).toContain('fatal: cannot start');

    const call = await failure(supervisor.callTool('broken', 'anything', {}));
    expect(call.code).toBe('CIRCUIT_OPEN');
    expect(call.fields).toHaveProperty('retryAt', opened.detail.retryAt);

    clock.increment(opened.detail.delayMs as number);
    const again = await log.next((t) => t.server === 'broken' && t.from === 'halfOpen', opened.seq);
    expect(again.to).toBe('open');
    expect(again.reason).toBe('process_exited');
    expect(again.detail.attempt).toBe(1);

    await log.reach('healthy', 'closed');
    const result = await supervisor.callTool('healthy', 'echo', { message: 'still here' });
    expect(JSON.stringify(result)).toContain('still here');
  });
});

describe('a server that prints non-protocol lines on stdout', () => {
  it('still works, and the noise is a named warning', async () => {
    const { supervisor, log, lines } = await start({
      noisy: { command: node, args: [fixture('noisy-stdout.mjs')] },
    });
    await log.reach('noisy', 'closed');

    const result = await supervisor.callTool('noisy', 'echo', { message: 'through the noise' });
    expect(JSON.stringify(result)).toContain('through the noise');

    const warnings = lines.filter((l) => l.msg === 'non-protocol output on stdout');
    expect(warnings.length).toBeGreaterThan(0);
    expect(warnings[0]).toMatchObject({ level: 40, service: 'Server', server: 'noisy' });
  });
});

describe('a server that never answers ping', () => {
  it('opens with probe_timeout after health.failureThreshold missed probes', async () => {
    const { supervisor, log, clock } = await start({
      silent: { command: node, args: [fixture('no-ping.mjs')] },
    });
    const closed = await log.reach('silent', 'closed');

    for (let i = 0; i < 2; i += 1) {
      clock.increment(10_000);
      clock.increment(2_000);
      expect(supervisor.server('silent')!.state).toBe('closed');
    }

    clock.increment(10_000);
    clock.increment(2_000);
    const opened = await log.reach('silent', 'open', closed.seq);
    expect(opened.reason).toBe('probe_timeout');
    expect(opened.detail.misses).toBe(3);
  });
});

describe('a server that answers ping with method-not-found', () => {
  it('stays closed across many probes and is never restarted', async () => {
    const { supervisor, log, clock, probeSettled } = await start({
      oldping: { command: node, args: [fixture('ping-not-found.mjs')] },
    });
    const closed = await log.reach('oldping', 'closed');
    const pid = supervisor.server('oldping')!.pid;

    for (let i = 0; i < 6; i += 1) {
      const settled = probeSettled();
      clock.increment(10_000);
      await settled;
    }

    expect(log.seen.filter((t) => t.server === 'oldping' && t.seq > closed.seq)).toEqual([]);
    expect(supervisor.server('oldping')).toMatchObject({ state: 'closed', restarts: 0, pid });
  });
});

describe('a server launched through sh -c that spawns a grandchild', () => {
  it('leaves no process carrying its marker after a crash, a restart and a stop', async () => {
    const marker = `gc-${randomUUID()}`;
    const { supervisor, log, clock } = await start({
      wrapped: {
        command: 'sh',
        args: ['-c', `"${node}" "${fixture('grandchild.mjs')}"`],
        env: { GRANDCHILD_MARKER: marker },
      },
    });
    let last = await log.reach('wrapped', 'closed');
    const first = livePidsWith(marker);
    expect(first).toHaveLength(1);

    // A crash: the wrapper dies, its grandchild would live on holding the pipes.
    process.kill(supervisor.server('wrapped')!.pid!, 'SIGKILL');
    const opened = await log.reach('wrapped', 'open', last.seq);
    expect(opened.reason).toBe('process_exited');
    clock.increment(opened.detail.delayMs as number);
    last = await log.reach('wrapped', 'closed', opened.seq);
    const second = livePidsWith(marker);
    expect(second).toHaveLength(1);
    expect(second).not.toContain(first[0]);

    // An operator restart.
    await supervisor.control('wrapped', 'restart', { user: 'test' });
    last = await log.reach('wrapped', 'closed', last.seq);
    const third = livePidsWith(marker);
    expect(third).toHaveLength(1);
    expect(third).not.toContain(second[0]);

    await supervisor.stop();
    expect(livePidsWith(marker)).toEqual([]);
  });
});
