import { SupervisorError, isSupervisorError } from '../errors.js';
import { serviceLogger, type Logger } from '../log.js';
import { PgliteStore } from './pglite.js';
import { PostgresStore } from './postgres.js';
import type { Store } from './store.js';

/** Where the store lives: PGlite in memory, PGlite in a data directory, or PostgreSQL. */
export type StoreSpec = 'memory' | { dataDir: string } | { databaseUrl: string };

export interface OpenStoreOptions {
  /**
   * How long an unreachable PostgreSQL is waited for, retrying with backoff (ms). Default 0:
   * the first failure is final.
   */
  waitMs?: number;
  /** First retry delay (ms), doubling per attempt up to 5000. Default 250. */
  retryBaseMs?: number;
}

const RETRY_CAP_MS = 5_000;

/**
 * Creates the adapter a spec names and opens it: locked (one owner per database) and migrated.
 * Throws STORE_LOCKED when another supervisor owns it, STORE_UNAVAILABLE when unreachable
 * (after `waitMs`, with a message naming host and port).
 *
 * @param logger the root logger; the store logs through its `Store` child.
 */
export async function openStore(
  spec: StoreSpec,
  logger: Logger,
  options: OpenStoreOptions = {},
): Promise<Store> {
  const log = serviceLogger(logger, 'Store');
  if (spec === 'memory' || !('databaseUrl' in spec)) {
    const store = new PgliteStore({ logger: log, ...(spec === 'memory' ? {} : spec) });
    await store.open();
    return store;
  }

  return openPostgres(spec.databaseUrl, log, options);
}

async function openPostgres(
  databaseUrl: string,
  log: Logger,
  options: OpenStoreOptions,
): Promise<Store> {
  const waitMs = Math.max(0, options.waitMs ?? 0);
  const deadline = Date.now() + waitMs;
  let delayMs = options.retryBaseMs ?? 250;

  for (let attempt = 1; ; attempt++) {
    const leftMs = deadline - Date.now();
    const store = new PostgresStore({
      databaseUrl,
      logger: log,
      // An attempt never outlives the wait (a black-holed host would hang 10 s per try).
      connectTimeoutMs: Math.min(10_000, Math.max(1_000, leftMs)),
    });

    try {
      await store.open();
      if (attempt > 1) log.info({ attempts: attempt }, 'database reachable');
      return store;
    } catch (err) {
      if (!isSupervisorError(err) || err.code !== 'STORE_UNAVAILABLE') throw err;
      if (Date.now() + delayMs > deadline) throw unreachable(databaseUrl, waitMs, err);

      log.warn({ attempt, retryInMs: delayMs, cause: err.fields.cause }, 'database unreachable');
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      delayMs = Math.min(RETRY_CAP_MS, delayMs * 2);
    }
  }
}

function unreachable(databaseUrl: string, waitMs: number, err: SupervisorError): SupervisorError {
  const { host, port } = hostPort(databaseUrl);
  const cause = typeof err.fields.cause === 'string' ? ` (${err.fields.cause})` : '';
  const waited = waitMs > 0 ? ` after waiting ${waitMs} ms` : '';

  return new SupervisorError(
    'STORE_UNAVAILABLE',
    `database at ${host}:${port} is unreachable${waited}${cause}`,
    { host, port, waitMs },
  );
}

function hostPort(databaseUrl: string): { host: string; port: number } {
  try {
    const url = new URL(databaseUrl);
    return { host: url.hostname || 'localhost', port: Number(url.port || 5432) };
  } catch {
    return { host: 'unknown', port: 5432 };
  }
}
