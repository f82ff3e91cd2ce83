/**
 * Public bug classes of breakers and supervisors, each a named regression test run through
 * the whole supervisor against real servers, time on a simulated clock. (Timers alive after
 * shutdown: test/breaker.shutdown.test.ts.)
 */
import { createServer, type Server } from 'node:http';

import { afterEach, describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';

import { createSupervisor, type Supervisor } from '../src/supervisor/create.js';
import { TransitionLog } from './helpers/fleet.js';
import { fixture } from './mcp.harness.js';

const CAP_MS = 60_000;
let running: Supervisor[] = [];
let servers: Server[] = [];

afterEach(async () => {
  await Promise.all(running.map((s) => s.stop()));
  running = [];
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function start(
  entries: Record<string, unknown>,
  settings: Record<string, unknown>,
): Promise<{ supervisor: Supervisor; log: TransitionLog; clock: SimulatedClock }> {
  const clock = new SimulatedClock();
  clock.set(Date.now());
  const supervisor = await createSupervisor({
    servers: entries,
    settings: { 'shutdown.graceMs': 300, 'backoff.capMs': CAP_MS, ...settings },
    clock,
    random: () => 0.5,
  });
  running.push(supervisor);

  return { supervisor, log: new TransitionLog(supervisor), clock };
}

const flaky = { flaky: { command: process.execPath, args: [fixture('flaky.mjs')] } };

describe('a burst cancelling the reset timer (regression)', () => {
  it('opens once for a burst of failures and keeps the one timer armed', async () => {
    const { supervisor, log, clock } = await start(flaky, {
      'breaker.failureThreshold': 3,
      'backoff.baseMs': 10_000,
    });
    const closed = await log.reach('flaky', 'closed');

    const burst = Array.from({ length: 12 }, () =>
      supervisor.callTool('flaky', 'fail', {}).catch(() => undefined),
    );
    await Promise.all(burst);
    const opened = log.seen.filter((t) => t.seq > closed.seq);

    expect(opened.map((t) => `${t.from}>${t.to}:${t.reason}`)).toEqual([
      'closed>open:threshold_reached',
    ]);
    const { delayMs, retryAt } = opened[0]!.detail;
    expect(supervisor.server('flaky')!.retryAt).toBe(retryAt);

    clock.increment((delayMs as number) - 1);
    expect(supervisor.server('flaky')!.state).toBe('open');
    clock.increment(1);
    expect(supervisor.server('flaky')!.state).toBe('halfOpen');
  });
});

describe('restart budget never refilling (regression)', () => {
  const settings = {
    'restart.maxRestarts': 1,
    'restart.periodMs': 120_000,
    'backoff.baseMs': 1_000,
  };

  /** Crashes the server and brings it back to `closed`; returns the crash's transition. */
  async function crashAndRecover(
    supervisor: Supervisor,
    log: TransitionLog,
    clock: SimulatedClock,
  ) {
    const mark = log.lastSeq;
    await supervisor.callTool('flaky', 'crash', {}).catch(() => undefined);
    const crash = await log.next((t) => t.server === 'flaky' && t.from === 'closed', mark);
    if (crash.to === 'open') {
      clock.increment(crash.detail.delayMs as number);
      await log.reach('flaky', 'closed', crash.seq);
    }

    return crash;
  }

  it('counts a second crash within restart.periodMs as a crash loop', async () => {
    const { supervisor, log, clock } = await start(flaky, settings);
    await log.reach('flaky', 'closed');

    expect((await crashAndRecover(supervisor, log, clock)).to).toBe('open');
    const second = await crashAndRecover(supervisor, log, clock);

    expect(second).toMatchObject({ to: 'failed', reason: 'restart_intensity' });
  });

  it('refills the budget once the earlier crash is older than restart.periodMs', async () => {
    const { supervisor, log, clock } = await start(flaky, settings);
    await log.reach('flaky', 'closed');

    await crashAndRecover(supervisor, log, clock);
    clock.increment(120_000);
    const later = await crashAndRecover(supervisor, log, clock);

    expect(later).toMatchObject({ to: 'open', reason: 'process_exited' });
  });
});

describe('auth_required (item 9)', () => {
  it('retries a refused credential at the backoff cap and never enters failed', async () => {
    const server = createServer((_request, response) => {
      response.writeHead(401, { 'content-type': 'text/plain' }).end('unauthorized');
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const { supervisor, log, clock } = await start(
      { remote: { type: 'http', url: `http://127.0.0.1:${port}/mcp` } },
      { 'restart.maxRestarts': 1, 'backoff.baseMs': 1_000 },
    );

    let opened = await log.reach('remote', 'open');
    for (let round = 0; round < 4; round += 1) {
      expect(opened.reason).toBe('auth_required');
      expect(opened.detail.delayMs).toBe(CAP_MS);

      clock.increment(CAP_MS);
      opened = await log.reach('remote', 'open', opened.seq);
    }

    expect(log.seen.some((t) => t.to === 'failed' || t.to === 'closed')).toBe(false);
    expect(supervisor.server('remote')!.state).toBe('open');
  });
});
