import { pino, type Logger } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import type { Transition } from '../machines/vocabulary.js';
import { PgliteStore } from '../src/store/pglite.js';
import type { ServerStateRecord, Store } from '../src/store/store.js';
import {
  TransitionWriter,
  type TransitionWriterOptions,
  type WriterScheduler,
} from '../src/store/writer.js';

/** Timers moved by hand; after each one fires, the store calls it caused are let finish. */
class ManualScheduler implements WriterScheduler {
  time = 1_700_000_000_000;
  private timers: { at: number; fn: () => void }[] = [];

  constructor(private readonly settle: () => Promise<void>) {}

  get scheduled(): number {
    return this.timers.length;
  }

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): () => void {
    const timer = { at: this.time + ms, fn };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((t) => t !== timer);
    };
  }

  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (due === undefined) break;

      this.timers = this.timers.filter((t) => t !== due);
      this.time = due.at;
      due.fn();
      await this.settle();
    }

    this.time = end;
  }
}

type Mode = 'up' | 'down' | 'writeThenFail';

/** A real store behind a switch: down, it refuses every call; it records what was asked. */
class FlakyStore {
  mode: Mode = 'up';
  readonly calls: { method: string; seqs: number[] }[] = [];
  private readonly inFlight = new Set<Promise<unknown>>();
  private gate: Promise<void> | null = null;
  private openGate: (() => void) | null = null;
  readonly store: Store;

  constructor(inner: Store) {
    this.store = new Proxy(inner, {
      get: (target, key, receiver) => {
        const value: unknown = Reflect.get(target, key, receiver);
        if (typeof value !== 'function') return value;

        return (...args: unknown[]) =>
          this.call(String(key), () => value.apply(target, args), args);
      },
    });
  }

  /** Holds every call until `release()`, so a test can act while a write is in flight. */
  hold(): void {
    this.gate = new Promise((resolve) => {
      this.openGate = resolve;
    });
  }

  release(): void {
    this.openGate?.();
    this.gate = null;
  }

  /** Waits until no call is running and the writer has reacted to the last one. */
  async settle(): Promise<void> {
    // Held calls cannot finish: only let the writer react to what it started.
    if (this.gate !== null) return new Promise((resolve) => setImmediate(resolve));

    do {
      await Promise.allSettled([...this.inFlight]);
      await new Promise((resolve) => setImmediate(resolve));
    } while (this.inFlight.size > 0);
  }

  writes(method: string): number[][] {
    return this.calls.filter((c) => c.method === method).map((c) => c.seqs);
  }

  private call(method: string, run: () => Promise<unknown>, args: unknown[]): Promise<unknown> {
    const rows = Array.isArray(args[0]) ? (args[0] as { seq?: number }[]) : [];
    this.calls.push({ method, seqs: rows.flatMap((r) => (r.seq === undefined ? [] : [r.seq])) });
    const mode = this.mode;
    const gate = this.gate;
    const promise = (async () => {
      if (gate !== null) await gate;
      if (mode === 'down') throw new Error('connection refused');

      const result = await run();
      if (mode === 'writeThenFail') throw new Error('connection reset after commit');
      return result;
    })();
    this.inFlight.add(promise);
    void promise.then(
      () => this.inFlight.delete(promise),
      () => this.inFlight.delete(promise),
    );
    return promise;
  }
}

interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

let inner: PgliteStore;
let base = 0;

beforeAll(async () => {
  inner = new PgliteStore({ logger: pino({ level: 'silent' }) });
  await inner.open();
});

afterAll(async () => {
  await inner.close();
});

describe('TransitionWriter', () => {
  let flaky: FlakyStore;
  let scheduler: ManualScheduler;
  let lines: LogLine[];
  let logger: Logger;
  let server: string;

  // Every test gets its own seq range and server name on the one shared database.
  const t = (n: number, overrides: Partial<Transition> = {}): Transition => ({
    seq: base + n,
    server,
    from: 'closed',
    to: 'open',
    reason: 'probe_timeout',
    at: 1_700_000_000_000 + n,
    detail: { n },
    ...overrides,
  });
  const relative = (seqs: number[]): number[] => seqs.map((seq) => seq - base);
  const stored = async (): Promise<number[]> =>
    relative((await inner.history({ server })).map((row) => row.seq));
  const writer = (options: Partial<TransitionWriterOptions> = {}): TransitionWriter =>
    new TransitionWriter(flaky.store, {
      maxPendingWrites: 100,
      logger,
      scheduler,
      flushIntervalMs: 50,
      retryBaseMs: 500,
      retryCapMs: 4_000,
      ...options,
    });

  beforeEach(() => {
    base += 1_000;
    server = `writer-${base}`;
    flaky = new FlakyStore(inner);
    scheduler = new ManualScheduler(() => flaky.settle());
    lines = [];
    logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  });

  it('never calls the store inside enqueue', () => {
    const w = writer();
    w.enqueue(t(1));

    expect(flaky.calls).toEqual([]);
    expect(w.pending).toBe(1);
  });

  it('writes a burst as one batch once the flush interval passes', async () => {
    const w = writer();
    [1, 2, 3].forEach((n) => w.enqueue(t(n)));

    await scheduler.advance(49);
    expect(flaky.calls).toEqual([]);

    await scheduler.advance(1);
    expect(flaky.writes('appendTransitions').map(relative)).toEqual([[1, 2, 3]]);
    expect(await stored()).toEqual([1, 2, 3]);
    expect(w.pending).toBe(0);
  });

  it('splits a backlog into batches of batchSize in seq order', async () => {
    const w = writer({ batchSize: 2 });
    [1, 2, 3, 4, 5].forEach((n) => w.enqueue(t(n)));
    await scheduler.advance(50);

    expect(flaky.writes('appendTransitions').map(relative)).toEqual([[1, 2], [3, 4], [5]]);
  });

  it('stores a seq enqueued twice only once', async () => {
    const w = writer();
    w.enqueue(t(1));
    await w.flush();
    w.enqueue(t(1, { reason: 'connected' }));
    await w.flush();

    const rows = await inner.history({ server });
    expect(rows.map((row) => row.reason)).toEqual(['probe_timeout']);
  });

  it('keeps a failed batch and retries it after the backoff delay', async () => {
    const w = writer();
    flaky.mode = 'down';
    [1, 2].forEach((n) => w.enqueue(t(n)));
    await scheduler.advance(50);
    expect(w.pending).toBe(2);

    flaky.mode = 'up';
    await scheduler.advance(499);
    expect(flaky.writes('appendTransitions')).toHaveLength(1);

    await scheduler.advance(1);
    expect(await stored()).toEqual([1, 2]);
    expect(w.pending).toBe(0);
  });

  it('doubles the retry delay after each failure, up to the cap', async () => {
    const w = writer();
    flaky.mode = 'down';
    w.enqueue(t(1));
    await scheduler.advance(50);

    const attemptsAt: number[] = [];
    const start = scheduler.time;
    for (let ms = 0; ms < 12_000; ms += 100) {
      const before = flaky.calls.length;
      await scheduler.advance(100);
      if (flaky.calls.length > before) attemptsAt.push(scheduler.time - start);
    }

    // Retries 500, 1000, 2000, 4000 (cap), 4000 ms apart.
    expect(attemptsAt).toEqual([500, 1_500, 3_500, 7_500, 11_500]);
  });

  it('retries a batch whose reply was lost without storing a row twice', async () => {
    const w = writer();
    flaky.mode = 'writeThenFail';
    [1, 2].forEach((n) => w.enqueue(t(n)));
    await scheduler.advance(50);
    expect(w.pending).toBe(2);

    flaky.mode = 'up';
    await scheduler.advance(500);
    expect(await stored()).toEqual([1, 2]);
    expect(w.pending).toBe(0);
  });

  it('folds the oldest transitions past maxPendingWrites into one exact gap', async () => {
    const w = writer({ maxPendingWrites: 3 });
    flaky.mode = 'down';
    [1, 2, 3, 4, 5, 6, 7, 8].forEach((n) => w.enqueue(t(n)));

    expect(w.pending).toBe(3);
    expect(w.gap).toEqual({
      firstSeq: base + 1,
      lastSeq: base + 5,
      count: 5,
      at: scheduler.time,
    });
  });

  it('writes the gap and the held rows once the store is back', async () => {
    const w = writer({ maxPendingWrites: 3 });
    flaky.mode = 'down';
    [1, 2, 3, 4, 5, 6].forEach((n) => w.enqueue(t(n)));
    const gapAt = scheduler.time;
    await scheduler.advance(50);

    flaky.mode = 'up';
    await scheduler.advance(500);

    const gaps = (await inner.gaps()).filter((g) => g.firstSeq > base && g.firstSeq < base + 1000);
    expect(gaps).toEqual([{ firstSeq: base + 1, lastSeq: base + 3, count: 3, at: gapAt }]);
    expect(await stored()).toEqual([4, 5, 6]);
    expect(w.gap).toBeNull();
  });

  it('folds only rows after a write in flight, keeping the gap contiguous', async () => {
    const w = writer({ maxPendingWrites: 3, batchSize: 2 });
    [1, 2].forEach((n) => w.enqueue(t(n)));
    flaky.hold();
    await scheduler.advance(50);
    [3, 4, 5, 6].forEach((n) => w.enqueue(t(n)));

    expect(w.gap).toMatchObject({ firstSeq: base + 3, lastSeq: base + 5, count: 3 });

    flaky.release();
    await flaky.settle();
    expect(await stored()).toEqual([1, 2, 6]);
  });

  it('writes rows older than the gap before it when their write failed in flight', async () => {
    const w = writer({ maxPendingWrites: 3, batchSize: 2 });
    [1, 2].forEach((n) => w.enqueue(t(n)));
    flaky.mode = 'down';
    flaky.hold();
    await scheduler.advance(50);
    [3, 4, 5, 6].forEach((n) => w.enqueue(t(n)));
    flaky.release();
    await flaky.settle();

    flaky.mode = 'up';
    await scheduler.advance(500);

    const order = flaky.calls.slice(1).map((c) => `${c.method}:${relative(c.seqs)}`);
    expect(order).toEqual(['appendTransitions:1,2', 'putGap:', 'appendTransitions:6']);
    expect(await stored()).toEqual([1, 2, 6]);
  });

  it('logs a warning when it starts folding into a gap', () => {
    const w = writer({ maxPendingWrites: 1 });
    flaky.mode = 'down';
    [1, 2, 3].forEach((n) => w.enqueue(t(n)));

    const warnings = lines.filter((line) => line.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ firstSeq: base + 1, maxPendingWrites: 1 });
  });

  it('writes the latest state per server in the same flush, after the transitions', async () => {
    const w = writer();
    w.enqueue(t(1));
    w.putState(state(server, { attempt: 1 }));
    w.putState(state(server, { attempt: 2 }));
    await scheduler.advance(50);

    expect(flaky.calls.map((c) => c.method)).toEqual(['appendTransitions', 'putServerStates']);
    const mine = (await inner.serverStates()).filter((s) => s.server === server);
    expect(mine.map((s) => s.attempt)).toEqual([2]);
  });

  it('writes everything held on flush without waiting for a timer', async () => {
    const w = writer();
    [1, 2].forEach((n) => w.enqueue(t(n)));
    await w.flush();

    expect(await stored()).toEqual([1, 2]);
  });

  it('rejects flush with STORE_UNAVAILABLE while the store is down, keeping the rows', async () => {
    const w = writer();
    flaky.mode = 'down';
    w.enqueue(t(1));

    await expect(w.flush()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect(w.pending).toBe(1);
  });

  it('flushes what is held on close and leaves no timer behind', async () => {
    const w = writer();
    w.enqueue(t(1));
    w.putState(state(server));
    await w.close();

    expect(await stored()).toEqual([1]);
    expect((await inner.serverStates()).map((s) => s.server)).toContain(server);
    expect(scheduler.scheduled).toBe(0);
  });

  it('logs what it could not write at close at error level', async () => {
    const w = writer();
    flaky.mode = 'down';
    [1, 2].forEach((n) => w.enqueue(t(n)));
    await w.close();

    const errors = lines.filter((line) => line.level === 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ pending: 2 });
    expect(scheduler.scheduled).toBe(0);
  });

  it('refuses rows after close with a warning', async () => {
    const w = writer();
    await w.close();
    w.enqueue(t(1));

    expect(w.pending).toBe(0);
    expect(lines.some((line) => line.level === 40 && line.seq === base + 1)).toBe(true);
  });
});

function state(server: string, overrides: Partial<ServerStateRecord> = {}): ServerStateRecord {
  return {
    server,
    state: 'open',
    reason: 'probe_timeout',
    since: 1_700_000_000_000,
    retryAt: 1_700_000_001_000,
    attempt: 0,
    stickyOpen: false,
    disabled: false,
    detail: {},
    ...overrides,
  };
}
