import {
  judgeRates,
  type CallSample,
  type FailureWindow,
  type WindowOptions,
  type WindowStats,
  type WindowTrip,
} from './window.js';

/** Buckets per window: memory stays fixed however many calls arrive. */
const BUCKETS = 100;

interface Bucket {
  /** The bucket's index on the time axis (`floor(at / bucketMs)`), or -1 when empty. */
  index: number;
  calls: number;
  failures: number;
  slowCalls: number;
}

/**
 * The calls of the last `windowMs`, in fixed time buckets with running totals. A bucket leaves
 * as soon as its start falls out of the window, so no sample older than `windowMs` ever counts,
 * however long the server was idle (a bucket may leave up to `windowMs / 100` early).
 */
export class TimeWindow implements FailureWindow {
  private readonly buckets: Bucket[];
  private readonly bucketMs: number;
  private totals: WindowStats = { calls: 0, failures: 0, slowCalls: 0 };
  /** The bucket index `expire` last ran for: within one bucket nothing more can leave. */
  private expiredAt = -1;

  constructor(private readonly options: WindowOptions) {
    const count = Math.min(BUCKETS, options.windowMs);
    this.bucketMs = options.windowMs / count;
    this.buckets = Array.from({ length: count }, () => emptyBucket());
  }

  record(sample: CallSample): WindowTrip | null {
    this.expire(sample.at);

    const index = Math.floor(sample.at / this.bucketMs);
    const bucket = this.buckets[index % this.buckets.length]!;
    if (bucket.index !== index) {
      this.drop(bucket);
      bucket.index = index;
    }

    bucket.calls += 1;
    this.totals.calls += 1;
    if (sample.failed) {
      bucket.failures += 1;
      this.totals.failures += 1;
    }
    if (sample.slow) {
      bucket.slowCalls += 1;
      this.totals.slowCalls += 1;
    }

    return judgeRates(this.totals, this.options.minimumCalls, this.options);
  }

  stats(now: number): WindowStats {
    this.expire(now);
    return { ...this.totals };
  }

  reset(): void {
    for (const bucket of this.buckets) Object.assign(bucket, emptyBucket());
    this.totals = { calls: 0, failures: 0, slowCalls: 0 };
    this.expiredAt = -1;
  }

  private expire(now: number): void {
    const current = Math.floor(now / this.bucketMs);
    if (current === this.expiredAt) return;

    // A bucket whose start is `windowMs` or more ago holds samples outside the window.
    this.expiredAt = current;
    const oldest = current - this.buckets.length;

    for (const bucket of this.buckets) {
      if (bucket.index >= 0 && bucket.index <= oldest) this.drop(bucket);
    }
  }

  private drop(bucket: Bucket): void {
    this.totals.calls -= bucket.calls;
    this.totals.failures -= bucket.failures;
    this.totals.slowCalls -= bucket.slowCalls;
    Object.assign(bucket, emptyBucket());
  }
}

function emptyBucket(): Bucket {
  return { index: -1, calls: 0, failures: 0, slowCalls: 0 };
}
