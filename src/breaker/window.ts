/**
 * Failure windows: the books a breaker keeps on the calls it admitted while `closed`. Each
 * window is told of every counted outcome and answers whether the breaker must open.
 */

/** One finished call, as a window records it. */
export interface CallSample {
  /** A counted failure (not an `isError` result, invalid params or an abort). */
  failed: boolean;
  /** Took longer than `breaker.slowCallMs`. */
  slow: boolean;
  /** Epoch ms when the call ended. */
  at: number;
}

/** Why a window says the breaker must open, and the numbers that made it say so. */
export interface WindowTrip {
  reason: 'threshold_reached' | 'slow_calls';
  calls: number;
  failures: number;
  slowCalls: number;
}

/** What a window holds at a moment. */
export interface WindowStats {
  calls: number;
  failures: number;
  slowCalls: number;
}

/** A failure window. `record` returns the trip it causes, or null. */
export interface FailureWindow {
  record(sample: CallSample): WindowTrip | null;
  /** The samples that still count at `now` (older ones are gone, however long the idle). */
  stats(now: number): WindowStats;
  reset(): void;
}

/** The `breaker.*` settings a window runs on. */
export interface WindowOptions {
  /** `consecutive`, or the `count` / `time` sliding windows. Default `consecutive`. */
  window: 'consecutive' | 'count' | 'time';
  /** Consecutive counted failures that open the breaker (consecutive window). Default 5. */
  failureThreshold: number;
  /** Calls in a count window. Default 100. */
  windowSize: number;
  /** Milliseconds of a time window. Default 60000. */
  windowMs: number;
  /** In `(0, 1]`: trips at a failure rate at or above this. Default 0.5. */
  failureRate: number;
  /** Calls the window must hold before a rate means anything. Default 10. */
  minimumCalls: number;
  /** In `(0, 1]`: trips at a slow-call rate at or above this. Default 1. */
  slowCallRate: number;
}

/**
 * The rate verdict shared by the sliding windows, as resilience4j decides it: nothing below
 * the minimum number of calls; at or above it, a failure rate `>=` the threshold trips, then
 * a slow-call rate `>=` its threshold.
 */
export function judgeRates(
  stats: WindowStats,
  minimumCalls: number,
  options: Pick<WindowOptions, 'failureRate' | 'slowCallRate'>,
): WindowTrip | null {
  const { calls, failures, slowCalls } = stats;
  if (calls === 0 || calls < minimumCalls) return null;

  if (failures / calls >= options.failureRate) {
    return { reason: 'threshold_reached', calls, failures, slowCalls };
  }

  if (slowCalls / calls >= options.slowCallRate) {
    return { reason: 'slow_calls', calls, failures, slowCalls };
  }

  return null;
}
