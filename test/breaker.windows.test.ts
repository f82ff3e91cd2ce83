import { describe, expect, it } from 'vitest';

import { ConsecutiveWindow } from '../src/breaker/consecutive-window.js';
import { CountWindow } from '../src/breaker/count-window.js';
import { TimeWindow } from '../src/breaker/time-window.js';
import type { WindowOptions } from '../src/breaker/window.js';

const OPTIONS: WindowOptions = {
  window: 'count',
  failureThreshold: 5,
  windowSize: 10,
  windowMs: 10_000,
  failureRate: 0.5,
  minimumCalls: 4,
  slowCallRate: 1,
};

const ok = (at = 0) => ({ failed: false, slow: false, at });
const bad = (at = 0) => ({ failed: true, slow: false, at });
const slow = (at = 0) => ({ failed: false, slow: true, at });

describe('consecutive window', () => {
  it('trips with threshold_reached on the failureThreshold-th consecutive failure', () => {
    const w = new ConsecutiveWindow(3);
    expect(w.record(bad())).toBeNull();
    expect(w.record(bad())).toBeNull();
    expect(w.record(bad())?.reason).toBe('threshold_reached');
  });

  it('starts the failure run over after a success', () => {
    const w = new ConsecutiveWindow(3);
    w.record(bad());
    w.record(bad());
    w.record(ok());
    w.record(bad());
    expect(w.record(bad())).toBeNull();
  });

  it('trips with slow_calls after failureThreshold consecutive slow calls', () => {
    const w = new ConsecutiveWindow(2);
    w.record(slow());
    expect(w.record(slow())?.reason).toBe('slow_calls');
  });
});

describe('count window', () => {
  it('trips at exactly the failure rate (>=), not only above it', () => {
    const w = new CountWindow(OPTIONS);
    w.record(ok());
    w.record(bad());
    w.record(ok());
    const trip = w.record(bad());

    expect(trip).toEqual({ reason: 'threshold_reached', calls: 4, failures: 2, slowCalls: 0 });
  });

  it('stays closed just below the failure rate', () => {
    const w = new CountWindow({ ...OPTIONS, minimumCalls: 5 });
    for (const sample of [ok(), ok(), bad(), ok(), bad()]) expect(w.record(sample)).toBeNull();
  });

  it('never trips below the minimum number of calls, however bad', () => {
    const w = new CountWindow(OPTIONS);
    for (let i = 0; i < 3; i += 1) expect(w.record(bad())).toBeNull();
    expect(w.record(bad())?.reason).toBe('threshold_reached');
  });

  it('forgets calls that slid out of the last windowSize', () => {
    const w = new CountWindow({ ...OPTIONS, windowSize: 4, failureRate: 0.75 });
    w.record(bad());
    w.record(bad());
    w.record(ok());
    w.record(ok());
    w.record(ok());
    expect(w.stats()).toEqual({ calls: 4, failures: 1, slowCalls: 0 });
  });

  it('caps the minimum number of calls at the window size', () => {
    const w = new CountWindow({ ...OPTIONS, windowSize: 2, minimumCalls: 10 });
    w.record(bad());
    expect(w.record(bad())?.reason).toBe('threshold_reached');
  });

  it('trips with slow_calls at the slow-call rate', () => {
    const w = new CountWindow({ ...OPTIONS, slowCallRate: 0.5 });
    for (const sample of [slow(), ok(), slow()]) w.record(sample);
    expect(w.record(ok())?.reason).toBe('slow_calls');
  });
});

describe('time window', () => {
  const timeOptions: WindowOptions = { ...OPTIONS, window: 'time', windowMs: 10_000 };

  it('trips on the failure rate of the calls inside windowMs', () => {
    const w = new TimeWindow(timeOptions);
    w.record(bad(1_000));
    w.record(ok(2_000));
    w.record(ok(3_000));
    expect(w.record(bad(4_000))?.reason).toBe('threshold_reached');
  });

  it('counts no sample older than windowMs after a long idle (stale window regression)', () => {
    const w = new TimeWindow(timeOptions);
    for (let i = 0; i < 3; i += 1) w.record(bad(i));

    expect(w.stats(3 + 10_000 * 50)).toEqual({ calls: 0, failures: 0, slowCalls: 0 });
    expect(w.record(bad(10_000 * 50))).toBeNull();
  });

  it('drops a sample once it is windowMs old', () => {
    const w = new TimeWindow(timeOptions);
    w.record(bad(0));
    expect(w.stats(9_999).calls).toBe(1);
    expect(w.stats(10_000).calls).toBe(0);
  });

  it('keeps samples from later buckets when older ones leave', () => {
    const w = new TimeWindow(timeOptions);
    w.record(bad(0));
    w.record(ok(5_000));
    expect(w.stats(12_000)).toEqual({ calls: 1, failures: 0, slowCalls: 0 });
  });
});
