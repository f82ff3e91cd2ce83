import { serviceLogger, type Logger } from '../log.js';
import { PgliteStore } from './pglite.js';
import { PostgresStore } from './postgres.js';
import type { Store } from './store.js';

/** Where the store lives: PGlite in memory, PGlite in a data directory, or PostgreSQL. */
export type StoreSpec = 'memory' | { dataDir: string } | { databaseUrl: string };

/**
 * Creates the adapter a spec names and opens it: locked (one owner per database) and migrated.
 * Throws STORE_LOCKED when another supervisor owns it, STORE_UNAVAILABLE when unreachable.
 *
 * @param logger the root logger; the store logs through its `Store` child.
 */
export async function openStore(spec: StoreSpec, logger: Logger): Promise<Store> {
  const log = serviceLogger(logger, 'Store');
  const store =
    spec === 'memory'
      ? new PgliteStore({ logger: log })
      : 'databaseUrl' in spec
        ? new PostgresStore({ databaseUrl: spec.databaseUrl, logger: log })
        : new PgliteStore({ dataDir: spec.dataDir, logger: log });

  await store.open();
  return store;
}
