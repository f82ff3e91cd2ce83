import postgres from 'postgres';

import { SupervisorError, isSupervisorError } from '../errors.js';
import type { Logger } from '../log.js';
import type { SqlDriver, SqlSession } from './driver.js';
import { LOCK_NAMESPACE, OWNER_LOCK_ID, migrate } from './migrations.js';
import {
  PostgresSettingsListener,
  type SettingsFeed,
  type SettingsSubscription,
} from './settings-listener.js';
import { SqlStore } from './sql-store.js';

type Sql = postgres.Sql;
type Params = postgres.ParameterOrJSON<never>[];

export interface PostgresStoreOptions {
  /** `postgres://user:pass@host:port/db`; never logged as given (it may carry a password). */
  databaseUrl: string;
  logger: Logger;
  /** Connections in the query pool. Default 4. */
  max?: number;
  /** Give up opening a connection after this long (ms). Default 10000. */
  connectTimeoutMs?: number;
  /** Close pool connections idle this long (ms); 0 keeps them. Default 60000. */
  idleTimeoutMs?: number;
  /** Longest wait (ms) between attempts to take a lost owner lock again. Default 5000. */
  lockRetryMaxMs?: number;
}

/** First wait (ms) before taking a lost owner lock again; doubles per failed attempt. */
const LOCK_RETRY_FIRST_MS = 250;

const APPLICATION_NAME = 'mcp-supervisor';

/**
 * The PostgreSQL adapter on postgres.js. The owner holds a session advisory lock on a
 * connection of its own for its whole life; queries go through a separate small pool.
 */
export class PostgresStore extends SqlStore {
  readonly kind = 'postgres';
  private readonly options: PostgresStoreOptions;
  private readonly log: Logger;
  private pool: Sql | null = null;
  private lockSql: Sql | null = null;
  /**
   * Whether our lock session holds the owner lock. While it does not (after `open()`), every
   * write is refused with STORE_LOCKED: another supervisor may own the database meanwhile.
   */
  private lockHeld = false;
  /** Who held the owner lock at our last failed attempt to take it, for the refusal. */
  private holder: LockHolder | null = null;

  constructor(options: PostgresStoreOptions) {
    super();
    this.options = options;
    this.log = options.logger;
  }

  async open(): Promise<void> {
    if (this.pool !== null) return;

    try {
      this.lockSql = this.connect({ max: 1, idleTimeoutMs: 0, forLock: true });
      await this.takeOwnerLock(this.lockSql);
      this.lockHeld = true;
      this.pool = this.connect({
        max: this.options.max ?? 4,
        idleTimeoutMs: this.options.idleTimeoutMs ?? 60_000,
        forLock: false,
      });
      const applied = await migrate(postgresDriver(this.pool));
      this.attach(postgresDriver(this.pool));
      this.log.info(
        { kind: this.kind, database: databaseLabel(this.options), applied },
        'store opened',
      );
    } catch (err) {
      await this.close();
      if (isSupervisorError(err)) throw err;

      throw new SupervisorError('STORE_UNAVAILABLE', 'cannot open the PostgreSQL store', {
        database: databaseLabel(this.options),
        cause: err instanceof Error ? err.message : String(err),
      });
    }
  }

  async close(): Promise<void> {
    this.lockHeld = false;
    this.attach(null);
    const pool = this.pool;
    const lockSql = this.lockSql;
    this.pool = null;
    this.lockSql = null;

    await pool?.end({ timeout: 5 });
    // Ending the session releases its advisory lock.
    await lockSql?.end({ timeout: 5 });
  }

  async listenSettings(feed: SettingsFeed): Promise<SettingsSubscription> {
    const listener = new PostgresSettingsListener({
      databaseUrl: this.options.databaseUrl,
      logger: this.log,
      feed,
    });
    await listener.start();
    return listener;
  }

  private connect(config: { max: number; idleTimeoutMs: number; forLock: boolean }): Sql {
    const connectTimeoutMs = this.options.connectTimeoutMs ?? 10_000;
    return postgres(this.options.databaseUrl, {
      max: config.max,
      // postgres.js counts these in seconds; 0 / null switch them off.
      connect_timeout: Math.max(1, Math.ceil(connectTimeoutMs / 1000)),
      idle_timeout: config.idleTimeoutMs > 0 ? Math.ceil(config.idleTimeoutMs / 1000) : 0,
      // The lock session must never be recycled: losing it would give the database away.
      ...(config.forLock ? { max_lifetime: null } : {}),
      connection: { application_name: APPLICATION_NAME },
      onnotice: (notice) => this.log.debug({ notice: { ...notice } }, 'postgres notice'),
      onclose: config.forLock ? () => this.onLockSessionClosed() : undefined,
    });
  }

  protected override assertWritable(): void {
    if (this.lockHeld) return;

    throw new SupervisorError(
      'STORE_LOCKED',
      `this supervisor does not hold the owner lock of database ${databaseLabel(this.options)} ` +
        'now; writes resume once it is taken again',
      { database: databaseLabel(this.options), backendPid: this.holder?.pid ?? null },
    );
  }

  private async takeOwnerLock(sql: Sql): Promise<void> {
    const rows = await sql.unsafe<{ locked: boolean }[]>(
      `SELECT pg_try_advisory_lock(${LOCK_NAMESPACE}, ${OWNER_LOCK_ID}) AS locked`,
    );
    if (rows[0]?.locked === true) return;

    const holders = await sql.unsafe<LockHolder[]>(
      `SELECT a.pid, a.client_addr::text AS client
       FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
       WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1 AND l.objid = $2
         AND l.objsubid = 2 AND l.database = (SELECT oid FROM pg_database
                                              WHERE datname = current_database())`,
      [LOCK_NAMESPACE, OWNER_LOCK_ID],
    );
    const holder = holders[0];
    this.holder = holder ?? null;
    const who = holder
      ? `backend pid ${holder.pid}${holder.client ? ` from ${holder.client}` : ''}`
      : 'another session';
    throw new SupervisorError(
      'STORE_LOCKED',
      `database ${databaseLabel(this.options)} is owned by another supervisor (${who}); ` +
        'stop it or use another database',
      {
        database: databaseLabel(this.options),
        backendPid: holder?.pid ?? null,
        client: holder?.client ?? null,
      },
    );
  }

  private onLockSessionClosed(): void {
    if (!this.lockHeld) return;

    this.lockHeld = false;

    this.log.error(
      { database: databaseLabel(this.options), writes: 'refused until the lock is taken again' },
      'store lock session lost',
    );
    this.retakeLock(LOCK_RETRY_FIRST_MS);
  }

  /**
   * Tries to take the owner lock again, with backoff, for as long as this store is open: a
   * supervisor that took the database meanwhile may stop, and then we own it again.
   */
  private retakeLock(delayMs: number): void {
    const sql = this.lockSql;
    const timer = setTimeout(() => {
      if (sql === null || this.lockSql !== sql || this.lockHeld) return;

      this.takeOwnerLock(sql).then(
        () => {
          if (this.lockSql !== sql) return;

          this.lockHeld = true;
          this.holder = null;
          this.log.info({ database: databaseLabel(this.options) }, 'store lock taken again');
        },
        (err: unknown) => {
          if (this.lockSql !== sql) return;

          const nextMs = Math.min(this.options.lockRetryMaxMs ?? 5_000, delayMs * 2);
          if (isSupervisorError(err) && err.code === 'STORE_LOCKED') {
            const { backendPid, client } = err.fields;
            this.log.error(
              { database: databaseLabel(this.options), backendPid, client, retryInMs: nextMs },
              'store lock held by another supervisor',
            );
          } else {
            this.log.warn({ err, retryInMs: nextMs }, 'store lock not taken again');
          }

          this.retakeLock(nextMs);
        },
      );
    }, delayMs);
    timer.unref();
  }
}

/** The session holding the owner lock, as pg_stat_activity names it. */
interface LockHolder {
  pid: number;
  client: string | null;
}

/** The shared SQL surface over a postgres.js pool (migrations and tools run through it). */
export function postgresDriver(sql: Sql): SqlDriver {
  return {
    ...postgresSession(sql),
    async transaction<T>(fn: (tx: SqlSession) => Promise<T>): Promise<T> {
      let result: T | undefined;
      await sql.begin(async (tx) => {
        result = await fn(postgresSession(tx));
      });
      return result as T;
    },
  };
}

function postgresSession(sql: Sql | postgres.TransactionSql): SqlSession {
  return {
    async query<Row extends object>(text: string, params?: readonly unknown[]): Promise<Row[]> {
      const rows = await sql.unsafe(text, (params ?? []) as Params);
      return [...rows] as unknown as Row[];
    },
    async exec(text: string): Promise<void> {
      await sql.unsafe(text).simple();
    },
  };
}

/** `host:port/db` without credentials, for messages and log lines. */
function databaseLabel(options: PostgresStoreOptions): string {
  try {
    const url = new URL(options.databaseUrl);
    return `${url.hostname}:${url.port || '5432'}${url.pathname}`;
  } catch {
    return 'the configured database';
  }
}
