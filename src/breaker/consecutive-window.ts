import type { CallSample, FailureWindow, WindowStats, WindowTrip } from './window.js';

/**
 * Trips after `failureThreshold` consecutive counted failures (`threshold_reached`), or as
 * many consecutive slow calls (`slow_calls`). Any success resets the failure run; any call
 * that was not slow resets the slow run.
 */
export class ConsecutiveWindow implements FailureWindow {
  private failures = 0;
  private slowCalls = 0;
  private calls = 0;

  constructor(private readonly failureThreshold: number) {}

  record(sample: CallSample): WindowTrip | null {
    this.calls += 1;
    this.failures = sample.failed ? this.failures + 1 : 0;
    this.slowCalls = sample.slow ? this.slowCalls + 1 : 0;

    if (this.failures >= this.failureThreshold) return this.trip('threshold_reached');
    if (this.slowCalls >= this.failureThreshold) return this.trip('slow_calls');

    return null;
  }

  stats(): WindowStats {
    return { calls: this.calls, failures: this.failures, slowCalls: this.slowCalls };
  }

  reset(): void {
    this.failures = 0;
    this.slowCalls = 0;
    this.calls = 0;
  }

  private trip(reason: WindowTrip['reason']): WindowTrip {
    return { reason, calls: this.calls, failures: this.failures, slowCalls: this.slowCalls };
  }
}
