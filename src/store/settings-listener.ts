import postgres from 'postgres';

import type { Logger } from '../log.js';
import { SETTINGS_CHANNEL } from './migrations.js';

/** What a settings listener tells its owner. */
export interface SettingsFeed {
  /** A NOTIFY arrived: the setting named `key` was written. */
  changed(key: string): void;
  /**
   * LISTEN is in place, at start or again after the connection came back. Notifications sent
   * while nobody listened are lost, so the owner reloads everything here.
   */
  subscribed(): void;
}

/**
 * postgres.js calls `onnotify` for every notification on a connection, but its typings leave
 * the option out (its own `listen()` gives up after one failed re-listen, so we cannot use it).
 */
interface ListenOptions extends postgres.Options<Record<string, postgres.PostgresType>> {
  onnotify(channel: string, payload: string): void;
}

/** A running subscription; close it once. */
export interface SettingsSubscription {
  close(): Promise<void>;
}

export interface SettingsListenerOptions {
  /** The same URL the store opened; never logged. */
  databaseUrl: string;
  logger: Logger;
  feed: SettingsFeed;
  /** First delay before listening again after a loss (ms). Default 100. */
  retryBaseMs?: number;
  /** Longest delay between attempts while the database stays away (ms). Default 2000. */
  retryCapMs?: number;
  /** Give up one connection attempt after this long (ms). Default 5000. */
  connectTimeoutMs?: number;
}

/**
 * LISTENs on the settings channel over a connection of its own. postgres.js re-listens once
 * after a loss and gives up silently when that attempt fails, so this class keeps the books:
 * a lost connection is retried with backoff for as long as it takes, and every successful
 * LISTEN is reported through {@link SettingsFeed.subscribed}.
 */
export class PostgresSettingsListener implements SettingsSubscription {
  private readonly options: SettingsListenerOptions;
  private readonly log: Logger;
  private sql: postgres.Sql | null = null;
  private listening = false;
  private closed = false;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | null = null;

  constructor(options: SettingsListenerOptions) {
    this.options = options;
    this.log = options.logger;
  }

  /** Listens; a failure is logged and retried in the background, never thrown. */
  async start(): Promise<void> {
    await this.subscribe();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listening = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;

    const sql = this.sql;
    this.sql = null;
    await sql?.end({ timeout: 1 });
  }

  private async subscribe(): Promise<void> {
    if (this.closed) return;

    this.sql ??= this.connect();
    try {
      await this.sql.unsafe(`LISTEN "${SETTINGS_CHANNEL}"`);
    } catch (err) {
      if (this.closed) return;

      this.failures += 1;
      this.log.warn({ err, attempt: this.failures }, 'settings listener cannot listen');
      this.retry();
      return;
    }

    if (this.closed) return;

    if (this.failures > 0) this.log.info({ attempts: this.failures }, 'settings listener back');
    this.failures = 0;
    this.listening = true;
    this.options.feed.subscribed();
  }

  private connect(): postgres.Sql {
    const timeoutMs = this.options.connectTimeoutMs ?? 5_000;
    const options: ListenOptions = {
      max: 1,
      // postgres.js counts these in seconds; 0 / null switch them off.
      connect_timeout: Math.max(1, Math.ceil(timeoutMs / 1000)),
      idle_timeout: 0,
      max_lifetime: null,
      keep_alive: 10,
      fetch_types: false,
      connection: { application_name: 'mcp-supervisor-listener' },
      onnotice: (notice) => this.log.debug({ notice: { ...notice } }, 'postgres notice'),
      onnotify: (channel, payload) => {
        if (channel === SETTINGS_CHANNEL) this.options.feed.changed(payload);
      },
      onclose: () => this.lost(),
    };

    return postgres(this.options.databaseUrl, options);
  }

  /** The listening connection closed: LISTEN again once it can be reopened. */
  private lost(): void {
    // A close during an attempt is that attempt's failure, handled in subscribe().
    if (!this.listening || this.closed) return;

    this.listening = false;
    this.log.warn('settings listener connection lost');
    this.retry();
  }

  private retry(): void {
    if (this.closed || this.retryTimer) return;

    const base = this.options.retryBaseMs ?? 100;
    const cap = this.options.retryCapMs ?? 2_000;
    const delayMs = Math.min(cap, base * 2 ** Math.max(0, this.failures - 1));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.subscribe();
    }, delayMs);
    this.retryTimer.unref();
  }
}
