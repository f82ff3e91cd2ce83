import {
  SETTING_KEYS,
  isSettingKey,
  mergeSettings,
  parseSettings,
  type SettingKey,
  type SettingProblem,
  type Settings,
} from '../config/settings.js';
import { SupervisorError } from '../errors.js';
import type { Logger } from '../log.js';
import type { SettingsSubscription } from '../store/settings-listener.js';
import type { Store } from '../store/store.js';

/** Receives the new effective settings and the keys that changed. */
export type SettingsApplier = (settings: Settings, changed: SettingKey[]) => void;

export interface SettingsServiceOptions {
  /** Where the settings table lives; `null` keeps the table layer in memory. */
  store: Store | null;
  /** The config file's `supervisor` block, validated. */
  fileSettings: Partial<Settings>;
  /** The `Store` service logger. */
  logger: Logger;
}

/**
 * The global effective settings: defaults < the config file's block < the settings table.
 * (Per-server and per-tool layers go on top in the supervisor.) Changes arrive from
 * `PUT /api/settings`, from a config reload, and on PostgreSQL from NOTIFY, including plain SQL
 * writes. Every change reloads the whole table and applies only what differs, so a change that
 * arrives twice (by the API and by NOTIFY, or again after a reconnect) is applied once.
 */
export class SettingsService {
  private readonly store: Store | null;
  private readonly log: Logger;
  private fileLayer: Partial<Settings>;
  private tableLayer: Partial<Settings> = {};
  private current: Settings;
  private applier: SettingsApplier | null = null;
  private subscription: SettingsSubscription | null = null;
  private reloading: Promise<void> | null = null;
  private reloadAgain = false;
  private closed = false;

  constructor(options: SettingsServiceOptions) {
    this.store = options.store;
    this.log = options.logger;
    this.fileLayer = options.fileSettings;
    this.current = mergeSettings(this.fileLayer);
  }

  /** The effective global settings now. */
  effective(): Settings {
    return { ...this.current };
  }

  /** Reads the settings table once, before anything runs; nothing is applied. */
  async load(): Promise<Settings> {
    if (this.store) this.tableLayer = this.acceptStored(await this.store.settings());

    this.current = mergeSettings(this.fileLayer, this.tableLayer);
    return this.effective();
  }

  /** From now on, changes go to `applier`; on PostgreSQL the NOTIFY listener starts. */
  async start(applier: SettingsApplier): Promise<void> {
    this.applier = applier;
    if (!this.store?.listenSettings) return;

    this.subscription = await this.store.listenSettings({
      changed: () => this.requestReload(),
      subscribed: () => this.requestReload(),
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const subscription = this.subscription;
    this.subscription = null;
    await subscription?.close();
    await this.reloading?.catch(() => undefined);
  }

  /**
   * Writes settings to the table (a `null` value removes the key, back to the layers below)
   * and applies them. All or nothing: a bad value throws INVALID_SETTING naming its key and
   * why, and nothing is written.
   */
  async put(values: unknown): Promise<Settings> {
    const { set, cleared } = this.validatePut(values);

    if (this.store) {
      await this.store.putSettings({
        ...set,
        ...Object.fromEntries(cleared.map((k) => [k, null])),
      });
      await this.reload();
      return this.effective();
    }

    const next: Partial<Settings> = { ...this.tableLayer, ...set };
    for (const key of cleared) delete next[key];
    this.tableLayer = next;
    this.recompute();
    return this.effective();
  }

  /** A new config file's block (config reload): applied over the defaults, under the table. */
  setFileSettings(values: Partial<Settings>): void {
    this.fileLayer = values;
    this.recompute();
  }

  /** Reads the whole table again and applies what differs. Concurrent calls share one run. */
  reload(): Promise<void> {
    if (this.reloading) {
      this.reloadAgain = true;
      return this.reloading;
    }

    this.reloading = this.reloadLoop().finally(() => {
      this.reloading = null;
    });
    return this.reloading;
  }

  private requestReload(): void {
    this.reload().catch((err: unknown) => {
      // The listener will report the connection back and a full reload follows.
      this.log.warn({ err }, 'settings reload failed');
    });
  }

  private async reloadLoop(): Promise<void> {
    do {
      this.reloadAgain = false;
      if (this.closed || !this.store) return;

      this.tableLayer = this.acceptStored(await this.store.settings());
      this.recompute();
    } while (this.reloadAgain);
  }

  private recompute(): void {
    const next = mergeSettings(this.fileLayer, this.tableLayer);
    const changed = SETTING_KEYS.filter((key) => next[key] !== this.current[key]);
    if (changed.length === 0) return;

    this.current = next;
    this.log.info({ changed: Object.fromEntries(changed.map((k) => [k, next[k]])) }, 'settings');
    this.applier?.(this.effective(), changed);
  }

  private validatePut(values: unknown): { set: Partial<Settings>; cleared: SettingKey[] } {
    if (values === null || typeof values !== 'object' || Array.isArray(values)) {
      throw invalid([{ key: '', message: 'settings must be an object of key to value' }]);
    }

    const cleared: SettingKey[] = [];
    const given: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(values)) {
      if (value !== null) given[key] = value;
      else if (isSettingKey(key)) cleared.push(key);
      else throw invalid([{ key, message: 'unknown setting' }]);
    }

    const parsed = parseSettings(given);
    if (parsed.problems.length > 0) throw invalid(parsed.problems);

    const table: Partial<Settings> = { ...this.tableLayer, ...parsed.values };
    for (const key of cleared) delete table[key];

    const relations = parseSettings(mergeSettings(this.fileLayer, table)).problems;
    if (relations.length > 0) throw invalid(relations);

    return { set: parsed.values, cleared };
  }

  /**
   * The table's rows that pass validation. A bad row (written by SQL) is logged and the value
   * this service held for that key is kept; a row set that breaks a rule between settings
   * (`backoff.baseMs` over `backoff.capMs`) keeps the whole previous layer.
   */
  private acceptStored(raw: Record<string, unknown>): Partial<Settings> {
    const layer: Record<string, unknown> = {};

    for (const [key, value] of Object.entries(raw)) {
      const one = parseSettings({ [key]: value });
      const problem = one.problems[0];

      if (!problem) {
        Object.assign(layer, one.values);
        continue;
      }

      this.log.warn({ key, problem: problem.message }, 'stored setting refused');
      if (isSettingKey(key) && key in this.tableLayer) layer[key] = this.tableLayer[key];
    }

    const relations = parseSettings(mergeSettings(this.fileLayer, layer)).problems;
    if (relations.length === 0) return layer as Partial<Settings>;

    this.log.warn({ problems: relations }, 'stored settings refused');
    return this.tableLayer;
  }
}

function invalid(problems: SettingProblem[]): SupervisorError {
  const first = problems[0] ?? { key: '', message: 'invalid settings' };
  const where = first.key === '' ? 'settings' : `setting ${first.key}`;

  return new SupervisorError('INVALID_SETTING', `${where}: ${first.message}`, {
    key: first.key,
    reason: first.message,
    problems,
  });
}
