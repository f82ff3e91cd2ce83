import { describe, expect, it } from 'vitest';

import { isSupervisorError } from '../src/errors.js';
import { CallGate, type Admission, type GateOptions } from '../src/supervisor/gate.js';

const OPTIONS: GateOptions = {
  window: 'consecutive',
  failureThreshold: 3,
  windowSize: 100,
  windowMs: 60_000,
  failureRate: 0.5,
  minimumCalls: 10,
  slowCallMs: 1_000,
  slowCallRate: 1,
  halfOpenMaxCalls: 2,
};

function gate(options: Partial<GateOptions> = {}): { gate: CallGate; clock: { t: number } } {
  const clock = { t: 0 };
  return { gate: new CallGate({ ...OPTIONS, ...options }, () => clock.t), clock };
}

function rejection(fn: () => unknown): string {
  try {
    fn();
    return 'admitted';
  } catch (error) {
    if (isSupervisorError(error)) return error.code;
    throw error;
  }
}

describe('closed', () => {
  it('sends exactly one trip for a burst of concurrent failures', () => {
    const { gate: g } = gate();
    const tickets = Array.from({ length: 10 }, () => g.admit('closed', null));
    const signals = tickets.map((t) => g.settle(t, 'failure').kind);

    expect(signals.filter((k) => k === 'trip')).toHaveLength(1);
  });

  it('fails fast after its trip even before the machine has moved', () => {
    const { gate: g } = gate({ failureThreshold: 1 });
    g.settle(g.admit('closed', null), 'failure');
    expect(rejection(() => g.admit('closed', null))).toBe('CIRCUIT_OPEN');
  });

  it('leaves ignored outcomes out of the window', () => {
    const { gate: g } = gate({ failureThreshold: 2 });
    g.settle(g.admit('closed', null), 'failure');
    g.settle(g.admit('closed', null), 'ignored');
    expect(g.settle(g.admit('closed', null), 'failure').kind).toBe('trip');
    expect(g.stats().window.calls).toBe(2);
  });

  it('trips with slow_calls when calls outlast breaker.slowCallMs', () => {
    const { gate: g, clock } = gate({ failureThreshold: 2 });
    const signals = [0, 1].map(() => {
      const ticket = g.admit('closed', null);
      clock.t += 1_001;
      return g.settle(ticket, 'success');
    });

    expect(signals.at(-1)).toMatchObject({ kind: 'trip', trip: { reason: 'slow_calls' } });
  });

  it('does not count a call exactly at breaker.slowCallMs as slow', () => {
    const { gate: g, clock } = gate({ failureThreshold: 1 });
    const ticket = g.admit('closed', null);
    clock.t += 1_000;
    expect(g.settle(ticket, 'success').kind).toBe('none');
  });

  it('uses the sliding window breaker.window names', () => {
    const { gate: g } = gate({ window: 'count', minimumCalls: 2, windowSize: 4 });
    g.settle(g.admit('closed', null), 'success');
    expect(g.settle(g.admit('closed', null), 'failure')).toMatchObject({ kind: 'trip' });
  });

  it('leaves short-circuited calls out of the denominator', () => {
    const { gate: g } = gate({ window: 'count', minimumCalls: 2, windowSize: 4 });
    g.observe('open');
    for (let i = 0; i < 5; i += 1) rejection(() => g.admit('open', 1));
    g.observe('closed');
    expect(g.stats().window.calls).toBe(0);
  });
});

describe('halfOpen', () => {
  it('admits exactly halfOpenMaxCalls trials in one tick (stampede regression)', () => {
    const { gate: g } = gate();
    const codes = Array.from({ length: 50 }, () => rejection(() => g.admit('halfOpen', 5)));

    expect(codes.filter((c) => c === 'admitted')).toHaveLength(2);
    expect(codes.filter((c) => c === 'CIRCUIT_OPEN')).toHaveLength(48);
  });

  it('gives an ignored trial permit back (stuck half-open regression)', () => {
    const { gate: g } = gate({ halfOpenMaxCalls: 1 });
    g.settle(g.admit('halfOpen', null), 'ignored');
    expect(rejection(() => g.admit('halfOpen', null))).toBe('admitted');
  });

  it('re-opens on the first counted failure, whatever the minimum', () => {
    const { gate: g } = gate({ window: 'count', minimumCalls: 100 });
    const first = g.admit('halfOpen', null);
    const second = g.admit('halfOpen', null);

    expect(g.settle(first, 'failure')).toEqual({ kind: 'trial', ok: false });
    expect(g.settle(second, 'success').kind).toBe('none');
  });

  it('closes once halfOpenMaxCalls trials succeeded', () => {
    const { gate: g } = gate();
    const tickets = [g.admit('halfOpen', null), g.admit('halfOpen', null)];

    expect(g.settle(tickets[0]!, 'success').kind).toBe('none');
    expect(g.settle(tickets[1]!, 'success')).toEqual({ kind: 'trial', ok: true });
  });

  it('does not hand back a permit for a finished successful trial', () => {
    const { gate: g } = gate({ halfOpenMaxCalls: 2 });
    g.settle(g.admit('halfOpen', null), 'success');
    g.admit('halfOpen', null);
    expect(rejection(() => g.admit('halfOpen', null))).toBe('CIRCUIT_OPEN');
  });
});

describe('late results', () => {
  it('does not let a late success close an open breaker', () => {
    const { gate: g } = gate();
    const trial: Admission = g.admit('halfOpen', null);
    g.observe('open');

    expect(g.settle(trial, 'success').kind).toBe('none');
    expect(g.stats().lateResults).toBe(1);
  });

  it('does not let a failure from before a recovery count against the new closed stay', () => {
    const { gate: g } = gate({ failureThreshold: 1 });
    const old = g.admit('closed', null);
    g.observe('open');
    g.observe('halfOpen');
    g.observe('closed');

    expect(g.settle(old, 'failure').kind).toBe('none');
    expect(g.stats().window.failures).toBe(0);
  });

  it('does not let a late trial free a permit of a later half-open', () => {
    const { gate: g } = gate({ halfOpenMaxCalls: 1 });
    const old = g.admit('halfOpen', null);
    g.observe('open');
    g.observe('halfOpen');
    g.admit('halfOpen', null);
    g.settle(old, 'ignored');

    expect(rejection(() => g.admit('halfOpen', null))).toBe('CIRCUIT_OPEN');
  });
});

it.each([
  ['open', 'CIRCUIT_OPEN'],
  ['connecting', 'SERVER_CONNECTING'],
  ['failed', 'SERVER_FAILED'],
  ['stopped', 'SERVER_STOPPED'],
] as const)('fails fast in %s with %s', (state, code) => {
  const { gate: g } = gate();
  expect(rejection(() => g.admit(state, 7))).toBe(code);
});
