import { describe, expect, it } from 'vitest';

import { backoffCeilingMs, backoffDelayMs } from '../machines/backoff.js';
import {
  breakerTrip,
  connectionLost,
  operatorCommand,
  serverStop,
  trialResult,
} from '../machines/server.events.js';
import { SERVER_STATES } from '../machines/vocabulary.js';
import { MachineHarness, POLICY } from './helpers/machine-harness.js';

const fail = (reason: string, detail = {}) => ({ ok: false as const, error: { reason, detail } });

async function closedHarness(
  ...args: ConstructorParameters<typeof MachineHarness>
): Promise<MachineHarness> {
  const h = new MachineHarness(...args).start();
  await h.flush();
  expect(h.state).toBe('closed');
  return h;
}

function last(h: MachineHarness): string {
  return h.path().at(-1) ?? '';
}

describe('connecting', () => {
  it('goes to closed with connected when the connection opens', async () => {
    const h = await closedHarness();
    expect(h.path()).toEqual(['connecting>closed:connected']);
  });

  it.each(['spawn_failed', 'process_exited', 'auth_required', 'connect_failed'])(
    'opens with %s when connecting fails that way',
    async (reason) => {
      const h = new MachineHarness();
      h.connectOutcomes = [fail(reason, { exitCode: 3 })];
      h.start();
      await h.flush();

      expect(h.state).toBe('open');
      expect(last(h)).toBe(`connecting>open:${reason}`);
      expect(h.transitions.at(-1)?.detail.exitCode).toBe(3);
    },
  );

  it('opens with connect_failed when connecting outlasts connect.timeoutMs', async () => {
    const h = new MachineHarness();
    h.connectOutcomes = ['hang'];
    h.start();
    await h.advance(POLICY.connectTimeoutMs - 1);
    expect(h.state).toBe('connecting');

    await h.advance(1);
    expect(last(h)).toBe('connecting>open:connect_failed');
  });

  it('keeps retrying a server that never connects without ever reaching failed', async () => {
    const h = new MachineHarness();
    h.connectOutcomes = Array.from({ length: 40 }, () => fail('connect_failed'));
    h.start();

    for (let i = 0; i < 39; i += 1) await h.advance(POLICY.backoffCapMs + POLICY.connectTimeoutMs);

    expect(h.path().some((p) => p.includes('failed>') || p.endsWith('>failed'))).toBe(false);
    expect(h.state).toBe('open');
  });
});

describe('closed', () => {
  it.each(['process_exited', 'connection_lost', 'session_lost', 'auth_required'] as const)(
    'opens at once with %s when the connection is lost',
    async (reason) => {
      const h = await closedHarness();
      h.connected = false;
      h.actor.send(connectionLost(reason, { exitCode: 1 }));

      expect(h.state).toBe('open');
      expect(last(h)).toBe(`closed>open:${reason}`);
    },
  );

  it('probes every health.intervalMs and stays closed while probes pass', async () => {
    const h = await closedHarness();
    await h.advance(POLICY.healthIntervalMs);
    await h.advance(POLICY.healthIntervalMs);

    expect(h.probes).toBe(2);
    expect(h.state).toBe('closed');
  });

  it('opens with probe_timeout after health.failureThreshold silent probes', async () => {
    const h = await closedHarness();
    h.probeOutcomes = ['hang', 'hang', 'hang'];

    for (let i = 0; i < POLICY.healthFailureThreshold - 1; i += 1) {
      await h.advance(POLICY.healthIntervalMs);
      await h.advance(POLICY.healthTimeoutMs);
      expect(h.state).toBe('closed');
    }

    await h.advance(POLICY.healthIntervalMs);
    await h.advance(POLICY.healthTimeoutMs);
    expect(last(h)).toBe('closed>open:probe_timeout');
  });

  it('opens with probe_failed after health.failureThreshold failed probes', async () => {
    const h = await closedHarness();
    const error = { ok: false as const, error: new Error('pipe closed') };
    h.probeOutcomes = [error, error, error];

    for (let i = 0; i < POLICY.healthFailureThreshold; i += 1)
      await h.advance(POLICY.healthIntervalMs);

    expect(last(h)).toBe('closed>open:probe_failed');
    expect(h.transitions.at(-1)?.detail.message).toBe('pipe closed');
  });

  it('forgets earlier probe misses after a probe passes', async () => {
    const h = await closedHarness();
    const error = { ok: false as const, error: new Error('x') };
    h.probeOutcomes = [error, error, { ok: true }, error, error];

    for (let i = 0; i < 5; i += 1) await h.advance(POLICY.healthIntervalMs);

    expect(h.state).toBe('closed');
  });

  it.each(['threshold_reached', 'slow_calls'] as const)(
    'opens with %s when the call gate trips',
    async (reason) => {
      const h = await closedHarness();
      h.actor.send(breakerTrip(reason, { failures: 5 }));
      expect(last(h)).toBe(`closed>open:${reason}`);
    },
  );
});

describe('open and halfOpen', () => {
  it('waits out its retryAt, then goes halfOpen with backoff_elapsed', async () => {
    const h = await closedHarness();
    h.actor.send(breakerTrip('threshold_reached'));
    const retryAt = h.transitions.at(-1)?.detail.retryAt as number;

    await h.advance(retryAt - h.clock.now() - 1);
    expect(h.state).toBe('open');

    h.probeOutcomes = ['hang'];
    await h.advance(1);
    expect(last(h)).toBe('open>halfOpen:backoff_elapsed');
  });

  it('closes with trial_succeeded when the trial probe passes', async () => {
    const h = await closedHarness();
    h.actor.send(breakerTrip('threshold_reached'));
    await h.advance(POLICY.backoffCapMs);

    expect(h.path().slice(-2)).toEqual([
      'open>halfOpen:backoff_elapsed',
      'halfOpen>closed:trial_succeeded',
    ]);
  });

  it('reconnects in halfOpen when the transport is gone, then trials', async () => {
    const h = await closedHarness();
    h.connected = false;
    h.actor.send(connectionLost('process_exited'));
    await h.advance(POLICY.backoffCapMs);

    expect(h.connects).toHaveLength(2);
    expect(h.state).toBe('closed');
  });

  it('reopens with trial_failed when the trial probe fails', async () => {
    const h = await closedHarness();
    h.actor.send(breakerTrip('threshold_reached'));
    h.probeOutcomes = [{ ok: false, error: new Error('nope') }];
    await h.advance(POLICY.backoffCapMs);

    expect(last(h)).toBe('halfOpen>open:trial_failed');
  });

  it('settles halfOpen from a trial call result', async () => {
    const h = await closedHarness();
    h.actor.send(breakerTrip('threshold_reached'));
    h.probeOutcomes = ['hang'];
    await h.advance(POLICY.backoffCapMs);
    expect(h.state).toBe('halfOpen');

    h.actor.send(trialResult(false, { message: 'boom' }));
    expect(last(h)).toBe('halfOpen>open:trial_failed');

    h.probeOutcomes = ['hang'];
    await h.advance(POLICY.backoffCapMs);
    h.actor.send(trialResult(true));
    expect(last(h)).toBe('halfOpen>closed:trial_succeeded');
  });

  it('reopens with half_open_deadline when a trial stays silent too long', async () => {
    const h = await closedHarness({}, { healthTimeoutMs: 60_000, halfOpenDeadlineMs: 30_000 });
    h.actor.send(breakerTrip('threshold_reached'));
    h.probeOutcomes = ['hang'];
    await h.advance(POLICY.backoffCapMs);
    await h.advance(30_000);

    expect(last(h)).toBe('halfOpen>open:half_open_deadline');
  });

  it('grows the backoff ceiling with each failed recovery', async () => {
    const h = await closedHarness({ random: () => 0.999 });
    h.actor.send(breakerTrip('threshold_reached'));

    const delays: number[] = [];
    for (let i = 0; i < 5; i += 1) {
      delays.push(h.transitions.at(-1)?.detail.delayMs as number);
      h.probeOutcomes = [{ ok: false, error: new Error('still sick') }];
      await h.advance(POLICY.backoffCapMs);
    }

    expect(delays).toEqual([999, 1998, 3996, 7992, 15984]);
  });
});

describe('restart intensity and policies', () => {
  it('fails with restart_intensity past restart.maxRestarts restarts', async () => {
    const h = await closedHarness({}, { maxRestarts: 2 });

    for (let i = 0; i < 3; i += 1) {
      h.connected = false;
      h.actor.send(connectionLost('process_exited'));
      if (i < 2) {
        await h.advance(POLICY.backoffCapMs);
        expect(h.state).toBe('closed');
      }
    }

    expect(last(h)).toBe('closed>failed:restart_intensity');
    expect(h.transitions.at(-1)?.detail.cause).toBe('process_exited');
  });

  it('re-probes failed every restart.failedRetryMs with failed_retry', async () => {
    const h = await closedHarness({}, { maxRestarts: 0 });
    h.connected = false;
    h.actor.send(connectionLost('process_exited'));
    expect(h.state).toBe('failed');

    await h.advance(POLICY.failedRetryMs);
    expect(h.path()).toContain('failed>halfOpen:failed_retry');
    expect(h.state).toBe('closed');
  });

  it('refills the restart budget once restarts fall out of restart.periodMs', async () => {
    const h = await closedHarness({}, { maxRestarts: 1 });

    for (let i = 0; i < 4; i += 1) {
      h.connected = false;
      h.actor.send(connectionLost('process_exited'));
      await h.advance(POLICY.restartPeriodMs);
      expect(h.state).toBe('closed');
    }
  });

  it('stops a transient server with exited_clean after a clean exit', async () => {
    const h = await closedHarness({}, { restartPolicy: 'transient' });
    h.actor.send(connectionLost('process_exited', { exitCode: 0 }, true));
    expect(last(h)).toBe('closed>stopped:exited_clean');
  });

  it('restarts a transient server after a crash', async () => {
    const h = await closedHarness({}, { restartPolicy: 'transient' });
    h.actor.send(connectionLost('process_exited', { exitCode: 1 }, false));
    expect(h.state).toBe('open');
  });

  it('stops a temporary server with not_restarted whenever it is lost', async () => {
    const h = await closedHarness({}, { restartPolicy: 'temporary' });
    h.actor.send(connectionLost('process_exited', { exitCode: 1 }));
    expect(last(h)).toBe('closed>stopped:not_restarted');
  });

  it.each(['removed', 'shutdown', 'config_changed'] as const)(
    'stops with %s when the supervisor says so',
    async (reason) => {
      const h = await closedHarness();
      h.actor.send(serverStop(reason));
      expect(last(h)).toBe(`closed>stopped:${reason}`);
      expect(h.actor.getSnapshot().status).toBe('done');
    },
  );
});

describe('operator events', () => {
  it('holds open with no timer after operator_open, recording the user', async () => {
    const h = await closedHarness();
    h.actor.send(operatorCommand('open', 'ops@example'));
    await h.advance(POLICY.backoffCapMs * 10);

    expect(last(h)).toBe('closed>open:operator_open');
    expect(h.transitions.at(-1)?.detail.user).toBe('ops@example');
    expect(h.state).toBe('open');
  });

  it('closes with operator_close', async () => {
    const h = await closedHarness();
    h.actor.send(operatorCommand('open'));
    h.actor.send(operatorCommand('close'));
    expect(last(h)).toBe('open>closed:operator_close');
  });

  it('clears counters and closes with operator_reset', async () => {
    const h = await closedHarness({}, { maxRestarts: 0 });
    h.connected = false;
    h.actor.send(connectionLost('process_exited'));
    expect(h.state).toBe('failed');

    h.actor.send(operatorCommand('reset'));
    expect(last(h)).toBe('failed>connecting:operator_reset');
    await h.flush();
    expect(h.state).toBe('closed');
    expect(h.actor.getSnapshot().context.attempt).toBe(0);
  });

  it('kills and respawns with operator_restart', async () => {
    const h = await closedHarness();
    h.actor.send(operatorCommand('restart'));
    await h.flush();

    expect(h.path().slice(-2)).toEqual([
      'closed>connecting:operator_restart',
      'connecting>closed:connected',
    ]);
    expect(h.connects.at(-1)).toEqual({ killFirst: true });
  });

  it('probes now with operator_probe while closed', async () => {
    const h = await closedHarness();
    h.actor.send(operatorCommand('probe'));
    await h.flush();

    expect(last(h)).toBe('closed>closed:operator_probe');
    expect(h.probes).toBe(1);
  });

  it('goes halfOpen at once with operator_probe while open', async () => {
    const h = await closedHarness();
    h.actor.send(breakerTrip('threshold_reached'));
    h.probeOutcomes = ['hang'];
    h.actor.send(operatorCommand('probe'));
    expect(last(h)).toBe('open>halfOpen:operator_probe');
  });

  it('stops with operator_disable', async () => {
    const h = await closedHarness();
    h.actor.send(operatorCommand('disable', 'ops'));
    expect(last(h)).toBe('closed>stopped:operator_disable');
  });

  it('reports an actor started by enable as stopped > connecting, operator_enable', async () => {
    const h = new MachineHarness({ startReason: 'operator_enable', startUser: 'ops' }).start();
    expect(h.path()[0]).toBe('stopped>connecting:operator_enable');
    expect(h.transitions[0]?.detail.user).toBe('ops');
  });
});

describe('restore', () => {
  it('resumes a restored open for the rest of its delay', async () => {
    const h = new MachineHarness(
      { restore: { state: 'open', retryAt: 20_000, attempt: 3, stickyOpen: false } },
      {},
      10_000,
    );
    h.start();

    expect(h.state).toBe('open');
    await h.advance(9_999);
    expect(h.state).toBe('open');
    await h.advance(1);
    expect(h.state).toBe('closed');
  });

  it('never waits more than backoff.capMs after a restore', async () => {
    const h = new MachineHarness({
      restore: { state: 'open', retryAt: 10 ** 12, attempt: 3, stickyOpen: false },
    });
    h.start();
    await h.advance(POLICY.backoffCapMs);
    expect(h.state).toBe('closed');
  });

  it('keeps a restored sticky open without a timer', async () => {
    const h = new MachineHarness({
      restore: { state: 'open', retryAt: null, attempt: 0, stickyOpen: true },
    });
    h.start();
    await h.advance(POLICY.backoffCapMs * 100);
    expect(h.state).toBe('open');
  });
});

describe('backoff', () => {
  it('draws every delay from [0, min(cap, base * 2^n)] for attempts 0 to 10^6', () => {
    for (const n of [0, 1, 2, 5, 10, 30, 63, 64, 1_000, 10 ** 6, Number.MAX_SAFE_INTEGER]) {
      for (const r of [0, 0.25, 0.999_999]) {
        const delay = backoffDelayMs(n, 1_000, 60_000, () => r);
        expect(Number.isFinite(delay)).toBe(true);
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThanOrEqual(Math.min(60_000, 1_000 * 2 ** Math.min(n, 52)));
      }
    }
  });

  it('caps the ceiling for huge and non-finite attempt counts', () => {
    expect(backoffCeilingMs(Infinity, 1_000, 60_000)).toBe(60_000);
    expect(backoffCeilingMs(Number.NaN, 1_000, 60_000)).toBe(60_000);
    expect(backoffCeilingMs(-5, 1_000, 60_000)).toBe(1_000);
  });
});

it('names only the six states of the design as top-level states', () => {
  const h = new MachineHarness();
  const states = Object.keys(h.actor.logic.root.states).filter(
    (s) => s !== 'starting' && s !== 'recovering',
  );
  expect(states.sort()).toEqual([...SERVER_STATES].sort());
});

it('backoff overflow: a huge persisted attempt arms a finite delay within the cap', async () => {
  const h = new MachineHarness({
    restore: { state: 'open', retryAt: 0, attempt: 1e9, stickyOpen: false },
  });
  h.probeOutcomes = [{ ok: false, error: new Error('still sick') }];
  h.start();
  await h.advance(0);
  await h.flush();

  const reopened = h.transitions.find((t) => t.to === 'open');
  expect(reopened?.reason).toBe('trial_failed');
  expect(Number.isFinite(reopened?.detail.delayMs)).toBe(true);
  expect(reopened?.detail.delayMs).toBeLessThanOrEqual(POLICY.backoffCapMs);
  expect(reopened?.detail.retryAt).toBeLessThanOrEqual(h.clock.now() + POLICY.backoffCapMs);
});
