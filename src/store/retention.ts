import type { Logger } from '../log.js';
import type { Store } from './store.js';
import { systemScheduler, type WriterScheduler } from './writer.js';

export interface HistoryPrunerOptions {
  store: Store;
  /** The current `store.historyRetentionMs`, read at each run so a new setting applies. */
  retentionMs: () => number;
  logger: Logger;
  /** Time between runs (ms). Default 3600000 (an hour). */
  intervalMs?: number;
  scheduler?: WriterScheduler;
}

/**
 * Deletes transitions older than `store.historyRetentionMs`: once at start, then every
 * `intervalMs`. A failed run (the database away) is logged and the next one tries again.
 */
export class HistoryPruner {
  private readonly options: HistoryPrunerOptions;
  private readonly scheduler: WriterScheduler;
  private cancel: (() => void) | null = null;
  private running: Promise<number> | null = null;
  private stopped = false;

  constructor(options: HistoryPrunerOptions) {
    this.options = options;
    this.scheduler = options.scheduler ?? systemScheduler;
  }

  /** Runs once now and schedules the next runs. */
  start(): Promise<number> {
    return this.runAndSchedule();
  }

  /** Deletes what is past retention now; returns how many transitions went. */
  async prune(): Promise<number> {
    const before = this.scheduler.now() - this.options.retentionMs();
    const deleted = await this.options.store.pruneHistory(before);

    if (deleted > 0) {
      this.options.logger.info({ deleted, before: new Date(before).toISOString() }, 'pruned');
    }

    return deleted;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.cancel?.();
    this.cancel = null;
    await this.running?.catch(() => 0);
  }

  private async runAndSchedule(): Promise<number> {
    this.running = this.prune().catch((err: unknown) => {
      this.options.logger.warn({ err }, 'history pruning failed');
      return 0;
    });
    const deleted = await this.running;
    this.running = null;

    if (!this.stopped) {
      this.cancel = this.scheduler.setTimeout(() => {
        this.cancel = null;
        void this.runAndSchedule();
      }, this.options.intervalMs ?? 3_600_000);
    }

    return deleted;
  }
}
