import {
  judgeRates,
  type CallSample,
  type FailureWindow,
  type WindowOptions,
  type WindowStats,
  type WindowTrip,
} from './window.js';

const FAILED = 1;
const SLOW = 2;

/**
 * The last `windowSize` calls in a ring, with running totals: recording is O(1) whatever the
 * size. The minimum number of calls is capped at the window size, as a full window is all the
 * evidence there will ever be.
 */
export class CountWindow implements FailureWindow {
  private readonly ring: Uint8Array;
  private next = 0;
  private size = 0;
  private failures = 0;
  private slowCalls = 0;

  constructor(private readonly options: WindowOptions) {
    this.ring = new Uint8Array(options.windowSize);
  }

  record(sample: CallSample): WindowTrip | null {
    if (this.size === this.ring.length) this.forget(this.ring[this.next]!);
    else this.size += 1;

    const bits = (sample.failed ? FAILED : 0) | (sample.slow ? SLOW : 0);
    this.ring[this.next] = bits;
    this.next = (this.next + 1) % this.ring.length;
    if (sample.failed) this.failures += 1;
    if (sample.slow) this.slowCalls += 1;

    const minimum = Math.min(this.options.minimumCalls, this.ring.length);
    return judgeRates(this.stats(), minimum, this.options);
  }

  stats(): WindowStats {
    return { calls: this.size, failures: this.failures, slowCalls: this.slowCalls };
  }

  reset(): void {
    this.ring.fill(0);
    this.next = 0;
    this.size = 0;
    this.failures = 0;
    this.slowCalls = 0;
  }

  private forget(bits: number): void {
    if (bits & FAILED) this.failures -= 1;
    if (bits & SLOW) this.slowCalls -= 1;
  }
}
