import { SupervisorError } from '../errors.js';
import { parseSettings, type Settings } from '../config/settings.js';
import type { ServerEntry } from '../config/types.js';
import type { Logger } from '../log.js';
import type { GapRecord, Store } from '../store/store.js';
import type { TransitionWriter } from '../store/writer.js';
import type { ServerRegistry } from './registry.js';
import type { SettingsService } from './settings-service.js';
import type { SupervisorCore } from './supervisor.js';

/** The write path's books, for `GET /api/store`. */
export interface StoreStatus {
  kind: 'memory' | 'pglite' | 'postgres';
  /** Transitions held in memory, not yet written. */
  pending: number;
  /** The bound on `pending` (`store.maxPendingWrites`). */
  maxPendingWrites: number;
  /** Transitions folded past the bound and not yet recorded, or null. */
  gap: GapRecord | null;
}

/** What a config reload did: names of servers added, restarted and stopped. */
export interface ConfigChange {
  added: string[];
  changed: string[];
  removed: string[];
}

/** The admin surface behind `PUT /api/settings`, `PUT`/`DELETE /api/servers/:name`. */
export interface AdminApi {
  /** Writes settings (`null` clears a key); throws INVALID_SETTING and changes nothing. */
  putSettings(values: unknown): Promise<Settings>;
  /** Adds or replaces an API server; `created` is false when it replaced one. */
  putServer(name: string, entry: Record<string, unknown>, user?: string): Promise<boolean>;
  deleteServer(name: string, user?: string): Promise<void>;
  storeStatus(): StoreStatus;
}

/** Settings the API may read but never write. */
const API_LOCKED_SETTINGS = ['api.allowStdioServers'] as const;

export interface SupervisorAdminOptions {
  core: SupervisorCore;
  registry: ServerRegistry;
  settings: SettingsService;
  store: Store | null;
  writer: TransitionWriter | null;
  /** The `Supervisor` service logger. */
  logger: Logger;
}

/**
 * Ties the registry and the settings service to the running supervisor. Registry changes and
 * config reloads run one at a time, so two requests on one name never interleave.
 */
export class SupervisorAdmin implements AdminApi {
  private readonly options: SupervisorAdminOptions;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: SupervisorAdminOptions) {
    this.options = options;
  }

  putSettings(values: unknown): Promise<Settings> {
    // Letting the API turn on commands for the API would make every API user a shell user.
    const named = Object.keys(parseSettings(values).values);
    const locked = API_LOCKED_SETTINGS.find((key) => named.includes(key));
    if (locked) {
      const message = `${locked} can be set only in the config file or the settings table`;
      return Promise.reject(new SupervisorError('FORBIDDEN', message, { key: locked }));
    }

    return this.options.settings.put(values);
  }

  putServer(name: string, raw: Record<string, unknown>, user?: string): Promise<boolean> {
    return this.serial(async () => {
      const allowStdio = this.options.settings.effective()['api.allowStdioServers'];
      const { entry, previous } = await this.options.registry.put(name, raw, allowStdio);

      if (previous) await this.options.core.replaceEntry(entry, user);
      else this.options.core.addEntry(entry);

      this.options.logger.info({ server: name, user, replaced: Boolean(previous) }, 'server put');
      return !previous;
    });
  }

  deleteServer(name: string, user?: string): Promise<void> {
    return this.serial(async () => {
      await this.options.registry.remove(name);
      await this.options.core.removeServer(name, 'removed', user);
      this.options.logger.info({ server: name, user }, 'server deleted');
    });
  }

  /**
   * Applies a reloaded, validated config: servers whose entries changed restart with reason
   * `config_changed`, new ones start, dropped ones stop with reason `removed`, and the file's
   * settings block becomes the layer under the settings table.
   */
  applyConfig(servers: ServerEntry[], settings: Partial<Settings>): Promise<ConfigChange> {
    return this.serial(async () => {
      const diff = this.options.registry.replaceConfig(servers);
      const core = this.options.core;

      for (const name of diff.removed) await core.removeServer(name, 'removed');
      for (const entry of diff.changed) await core.replaceEntry(entry);
      for (const entry of diff.added) core.addEntry(entry);
      this.options.settings.setFileSettings(settings);

      return {
        added: diff.added.map((e) => e.name),
        changed: diff.changed.map((e) => e.name),
        removed: diff.removed,
      };
    });
  }

  storeStatus(): StoreStatus {
    const writer = this.options.writer;

    return {
      kind: this.options.store?.kind ?? 'memory',
      pending: writer?.pending ?? 0,
      maxPendingWrites:
        writer?.maxPendingWrites ?? this.options.settings.effective()['store.maxPendingWrites'],
      gap: writer?.gap ?? null,
    };
  }

  private serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
