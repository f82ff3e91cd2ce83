import type { Transition } from '../../machines/vocabulary.js';
import { SupervisorError } from '../errors.js';
import type { Logger } from '../log.js';
import type { GapRecord, ServerStateRecord, Store } from './store.js';

/** The writer's sense of time; tests hand in one they move by hand. */
export interface WriterScheduler {
  /** Epoch ms. */
  now(): number;
  /** Calls `fn` once after `ms`; the returned function cancels it. */
  setTimeout(fn: () => void, ms: number): () => void;
}

/** Wall-clock time and Node timers, unref'd so a quiet writer never keeps the process up. */
export const systemScheduler: WriterScheduler = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const timer = setTimeout(fn, ms);
    timer.unref();
    return () => clearTimeout(timer);
  },
};

export interface TransitionWriterOptions {
  /** Transitions held while the database is away; past it the oldest fold into a gap. */
  maxPendingWrites: number;
  logger: Logger;
  /** How long a new write waits so that a burst goes out as one batch (ms). Default 50. */
  flushIntervalMs?: number;
  /** Transitions per INSERT. Default 1000. */
  batchSize?: number;
  /** First retry delay after a failed write (ms); doubles per failure. Default 500. */
  retryBaseMs?: number;
  /** Longest retry delay (ms). Default 2000: writes resume within seconds of the database. */
  retryCapMs?: number;
  scheduler?: WriterScheduler;
}

/**
 * Batches transitions and server states off the hot path into the store. `enqueue` never
 * waits for the database. Writes go out in `seq` order, one at a time; a failed write keeps its
 * rows and is retried with backoff. Past `maxPendingWrites` held rows, the oldest are folded
 * into one gap record (first seq, last seq, count), written once the database is back.
 *
 * Expects `seq` to grow with each transition, as the supervisor emits them.
 */
export class TransitionWriter {
  private readonly store: Store;
  private readonly log: Logger;
  private maxPending: number;
  private readonly flushIntervalMs: number;
  private readonly batchSize: number;
  private readonly retryBaseMs: number;
  private readonly retryCapMs: number;
  private readonly scheduler: WriterScheduler;

  private readonly held = new HeldQueue();
  private readonly states = new Map<string, ServerStateRecord>();
  /** Servers whose state row is to be deleted (removed servers), after the puts. */
  private readonly deletes = new Set<string>();
  private currentGap: GapRecord | null = null;
  /** Held transitions older than the current gap; the next fold takes the one after them. */
  private beforeGap = 0;
  /** Held transitions at the front that a write in flight is storing right now. */
  private inFlight = 0;

  private running: Promise<void> | null = null;
  private cancelTimer: (() => void) | null = null;
  private failures = 0;
  private closed = false;

  constructor(store: Store, options: TransitionWriterOptions) {
    this.store = store;
    this.log = options.logger;
    this.maxPending = Math.max(0, options.maxPendingWrites);
    this.flushIntervalMs = options.flushIntervalMs ?? 50;
    this.batchSize = Math.max(1, options.batchSize ?? 1000);
    this.retryBaseMs = options.retryBaseMs ?? 500;
    this.retryCapMs = options.retryCapMs ?? 2_000;
    this.scheduler = options.scheduler ?? systemScheduler;
  }

  /** Transitions held in memory, not yet stored. */
  get pending(): number {
    return this.held.length;
  }

  /** The gap not yet written, or null. */
  get gap(): GapRecord | null {
    return this.currentGap === null ? null : { ...this.currentGap };
  }

  /** The bound on held transitions now in force. */
  get maxPendingWrites(): number {
    return this.maxPending;
  }

  /** A new bound (the `store.maxPendingWrites` setting changed); folds at once when lower. */
  setMaxPendingWrites(value: number): void {
    this.maxPending = Math.max(0, value);
    while (this.held.length > this.maxPending) this.foldOldest();
  }

  /** The transitions held and not yet written, oldest first (for reads that must see them). */
  heldTransitions(): Transition[] {
    return this.held.peek(this.held.length);
  }

  /** Queues a transition. Synchronous and cheap: it only schedules the write. */
  enqueue(transition: Transition): void {
    if (this.refuseAfterClose({ seq: transition.seq, server: transition.server })) return;

    this.held.push(transition);
    while (this.held.length > this.maxPending) this.foldOldest();

    this.wake();
  }

  /** Queues a server's state row; the latest per server wins, written with the next flush. */
  putState(record: ServerStateRecord): void {
    if (this.refuseAfterClose({ server: record.server })) return;

    this.deletes.delete(record.server);
    this.states.set(record.server, record);
    this.wake();
  }

  /** Queues the deletion of a removed server's state row, after any put queued before it. */
  deleteState(server: string): void {
    if (this.refuseAfterClose({ server })) return;

    this.states.delete(server);
    this.deletes.add(server);
    this.wake();
  }

  /**
   * Writes everything held now, without waiting for a timer. Rejects with STORE_UNAVAILABLE
   * when a write fails; what was held stays held and retries continue.
   */
  async flush(): Promise<void> {
    while (this.hasWork() || this.running !== null) {
      try {
        await this.run();
      } catch (err) {
        throw new SupervisorError('STORE_UNAVAILABLE', 'held transitions could not be written', {
          pending: this.pending,
          gap: this.gap,
          cause: err instanceof Error ? err.message : String(err),
        });
      }
    }
  }

  /**
   * Flushes and stops. Never throws: what could not be written is logged at error level with
   * its count and gap, and later `enqueue` or `putState` calls are refused with a warning.
   */
  async close(): Promise<void> {
    if (this.closed) return;

    this.closed = true;
    try {
      await this.flush();
    } catch (err) {
      this.log.error(
        { err, pending: this.pending, gap: this.gap, states: this.states.size },
        'store writer closed with unwritten transitions',
      );
    } finally {
      this.stopTimer();
    }
  }

  private foldOldest(): void {
    const at = this.currentGap === null ? this.inFlight : this.beforeGap;
    const victim = this.held.removeAt(at);

    if (this.currentGap === null) {
      this.currentGap = { firstSeq: victim.seq, lastSeq: victim.seq, count: 1, at: this.now() };
      this.beforeGap = at;
      this.log.warn(
        { firstSeq: victim.seq, maxPendingWrites: this.maxPending },
        'store behind: folding oldest held transitions into a gap',
      );
      return;
    }

    // A fresh object per change: a gap write in flight can tell whether it grew meanwhile.
    const gap = this.currentGap;
    this.currentGap = { ...gap, lastSeq: victim.seq, count: gap.count + 1 };
  }

  private hasWork(): boolean {
    return (
      this.held.length > 0 ||
      this.currentGap !== null ||
      this.states.size > 0 ||
      this.deletes.size > 0
    );
  }

  private wake(): void {
    if (this.closed || this.running !== null || this.cancelTimer !== null) return;

    this.schedule(this.flushIntervalMs);
  }

  private schedule(ms: number): void {
    this.stopTimer();
    this.cancelTimer = this.scheduler.setTimeout(() => {
      this.cancelTimer = null;
      // A failure is handled (logged, retry scheduled) inside run().
      this.run().catch(() => undefined);
    }, ms);
  }

  private stopTimer(): void {
    this.cancelTimer?.();
    this.cancelTimer = null;
  }

  /** One drain at a time; callers arriving meanwhile share it. */
  private run(): Promise<void> {
    if (this.running !== null) return this.running;

    this.stopTimer();
    this.running = this.drain().then(
      () => {
        this.running = null;
        this.drained();
      },
      (err: unknown) => {
        this.running = null;
        this.failed(err);
        throw err;
      },
    );
    return this.running;
  }

  private async drain(): Promise<void> {
    while (this.hasWork()) await this.writeStep();
  }

  /** Writes the next thing due: rows older than the gap, the gap, newer rows, then states. */
  private async writeStep(): Promise<void> {
    if (this.currentGap !== null && this.beforeGap === 0) {
      await this.writeGap(this.currentGap);
      return;
    }

    if (this.held.length > 0) {
      await this.writeBatch();
      return;
    }

    await this.writeStates();
  }

  private async writeBatch(): Promise<void> {
    const limit =
      this.currentGap === null ? this.batchSize : Math.min(this.batchSize, this.beforeGap);
    const batch = this.held.peek(limit);
    this.inFlight = batch.length;
    try {
      await this.store.appendTransitions([...batch].sort((a, b) => a.seq - b.seq));
    } finally {
      this.inFlight = 0;
    }

    this.held.dropFront(batch.length);
    if (this.currentGap !== null) this.beforeGap -= batch.length;
  }

  private async writeGap(gap: GapRecord): Promise<void> {
    await this.store.putGap(gap);

    this.log.warn({ ...gap }, 'transition gap recorded');
    if (this.currentGap === gap) this.currentGap = null;
  }

  private async writeStates(): Promise<void> {
    if (this.states.size === 0) {
      await this.writeDeletes();
      return;
    }

    const rows = [...this.states.values()];
    this.states.clear();
    try {
      await this.store.putServerStates(rows);
    } catch (err) {
      // Rows queued while this write was out are newer: they stay, the failed ones fill in.
      for (const row of rows) {
        if (!this.states.has(row.server)) this.states.set(row.server, row);
      }
      throw err;
    }
  }

  private async writeDeletes(): Promise<void> {
    const [server] = this.deletes;
    if (server === undefined) return;

    await this.store.deleteServerState(server);
    this.deletes.delete(server);
  }

  private drained(): void {
    if (this.failures > 0) {
      this.log.info({ failedAttempts: this.failures }, 'store writes resumed');
    }

    this.failures = 0;
    if (this.hasWork()) this.wake();
  }

  private failed(err: unknown): void {
    this.failures += 1;
    const retryInMs = Math.min(this.retryCapMs, this.retryBaseMs * 2 ** (this.failures - 1));
    this.log.warn(
      { err, attempt: this.failures, pending: this.pending, gap: this.gap, retryInMs },
      'store write failed',
    );
    if (!this.closed) this.schedule(retryInMs);
  }

  private refuseAfterClose(fields: Record<string, unknown>): boolean {
    if (!this.closed) return false;

    this.log.warn(fields, 'store writer closed: row not written');
    return true;
  }

  private now(): number {
    return this.scheduler.now();
  }
}

/**
 * A FIFO of held transitions with cheap removal at the front and near it (folding takes the
 * oldest not being written, at most one batch from the front).
 */
class HeldQueue {
  private items: Transition[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: Transition): void {
    this.items.push(item);
  }

  peek(count: number): Transition[] {
    return this.items.slice(this.head, this.head + count);
  }

  dropFront(count: number): void {
    this.head += count;
    this.compact();
  }

  /** Removes the item `offset` places from the front, moving the ones before it up by one. */
  removeAt(offset: number): Transition {
    const index = this.head + offset;
    const item = this.items[index];
    for (let i = index; i > this.head; i--) this.items[i] = this.items[i - 1];

    this.head += 1;
    this.compact();
    return item;
  }

  private compact(): void {
    if (this.head < 1024 || this.head * 2 < this.items.length) return;

    this.items = this.items.slice(this.head);
    this.head = 0;
  }
}
