/** History retention: transitions older than `store.historyRetentionMs` are deleted. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Transition } from '../machines/vocabulary.js';
import { silentLogger } from '../src/log.js';
import { PgliteStore } from '../src/store/pglite.js';
import { HistoryPruner } from '../src/store/retention.js';
import type { WriterScheduler } from '../src/store/writer.js';

const DAY_MS = 86_400_000;
const NOW = 1_800_000_000_000;

/** A scheduler whose timers run only when the test says so. */
class ManualScheduler implements WriterScheduler {
  timers: Array<{ fn: () => void; ms: number }> = [];
  now = (): number => NOW;
  setTimeout(fn: () => void, ms: number): () => void {
    const timer = { fn, ms };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((t) => t !== timer);
    };
  }
}

describe('HistoryPruner', () => {
  const store = new PgliteStore({ logger: silentLogger() });

  beforeAll(async () => {
    await store.open();
    await store.appendTransitions([row(1, NOW - 10 * DAY_MS), row(2, NOW - DAY_MS), row(3, NOW)]);
  });

  afterAll(async () => {
    await store.close();
  });

  it('deletes what is older than the retention at start and schedules the next run', async () => {
    const scheduler = new ManualScheduler();
    let retentionMs = 5 * DAY_MS;
    const pruner = new HistoryPruner({
      store,
      retentionMs: () => retentionMs,
      logger: silentLogger(),
      intervalMs: 60_000,
      scheduler,
    });

    expect(await pruner.start()).toBe(1);
    expect((await store.history({})).map((t) => t.seq)).toEqual([2, 3]);
    expect(scheduler.timers.map((t) => t.ms)).toEqual([60_000]);

    retentionMs = DAY_MS / 2;
    expect(await pruner.prune()).toBe(1);
    expect((await store.history({})).map((t) => t.seq)).toEqual([3]);
    await pruner.stop();
    expect(scheduler.timers).toEqual([]);
  });
});

function row(seq: number, at: number): Transition {
  return {
    seq,
    server: 's',
    from: 'connecting',
    to: 'closed',
    reason: 'connected',
    at,
    detail: {},
  };
}
