import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';

import type { Logger } from '../log.js';
import { hasErrors, loadConfigFile, type ConfigProblem } from './load.js';
import type { Settings } from './settings.js';
import type { ServerEntry } from './types.js';

/** What applying a validated config changed, by server name. */
export interface AppliedChange {
  added: string[];
  changed: string[];
  removed: string[];
}

/** The outcome of one reload. */
export type ReloadOutcome =
  | { ok: true; change: AppliedChange; problems: ConfigProblem[] }
  | { ok: false; problems: ConfigProblem[] };

export interface ConfigReloaderOptions {
  /** The config file the supervisor was started with. */
  file: string;
  /** Applies a config that validated (the supervisor admin's `applyConfig`). */
  apply(servers: ServerEntry[], settings: Partial<Settings>): Promise<AppliedChange>;
  /** The `Main` service logger. */
  logger: Logger;
  env?: NodeJS.ProcessEnv;
  /** Quiet time after a file event before reading, so an editor's save lands whole (ms). */
  debounceMs?: number;
}

/**
 * Reloads the config file on demand (SIGHUP) and when it changes on disk. A file with errors is
 * refused with every error logged, and the running fleet is left as it is; a valid one goes to
 * `apply`, which restarts only the servers whose entries changed.
 */
export class ConfigReloader {
  private readonly options: ConfigReloaderOptions;
  private readonly log: Logger;
  private watcher: FSWatcher | null = null;
  private debounce: NodeJS.Timeout | null = null;
  private running: Promise<ReloadOutcome> | null = null;
  private again = false;

  constructor(options: ConfigReloaderOptions) {
    this.options = options;
    this.log = options.logger;
  }

  /**
   * Watches the file's directory (editors often replace a file by renaming, which a watch on
   * the file itself would not survive) for events naming the file.
   */
  watch(): void {
    if (this.watcher) return;

    const file = path.resolve(this.options.file);
    const base = path.basename(file);
    this.watcher = watch(path.dirname(file), { persistent: false }, (_event, name) => {
      if (name === null || name.toString() === base) this.schedule();
    });
    this.watcher.on('error', (err) => this.log.warn({ err }, 'config watch failed'));
  }

  close(): void {
    this.watcher?.close();
    this.watcher = null;
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = null;
  }

  /** Reads, validates and applies the file now. Calls during a reload run once more after it. */
  reload(): Promise<ReloadOutcome> {
    if (this.running) {
      this.again = true;
      return this.running;
    }

    this.running = this.reloadOnce().finally(() => {
      this.running = null;
      if (!this.again) return;

      this.again = false;
      this.reload().catch(() => undefined);
    });
    return this.running;
  }

  private schedule(): void {
    if (this.debounce) clearTimeout(this.debounce);

    this.debounce = setTimeout(() => {
      this.debounce = null;
      // A failure is logged inside; nothing else is waiting for this run.
      this.reload().catch(() => undefined);
    }, this.options.debounceMs ?? 100);
    this.debounce.unref();
  }

  private async reloadOnce(): Promise<ReloadOutcome> {
    const { file } = this.options;
    const loaded = await loadConfigFile(file, { env: this.options.env ?? process.env });

    for (const problem of loaded.problems) {
      const fields = { path: problem.path, problem: problem.message };
      if (problem.severity === 'error') this.log.error(fields, 'config error');
      else this.log.warn(fields, 'config warning');
    }

    if (hasErrors(loaded.problems)) {
      this.log.error({ config: file }, 'config reload refused: the running fleet is unchanged');
      return { ok: false, problems: loaded.problems };
    }

    try {
      const change = await this.options.apply(loaded.servers, loaded.settings);
      this.log.info({ config: file, ...change }, 'config reloaded');
      return { ok: true, change, problems: loaded.problems };
    } catch (err) {
      this.log.error({ err, config: file }, 'config reload failed');
      throw err;
    }
  }
}
