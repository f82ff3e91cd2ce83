import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

import { PGlite, type Transaction } from '@electric-sql/pglite';

import type { Logger } from '../log.js';
import type { SqlDriver, SqlSession } from './driver.js';
import { acquireDirLock, type DirLock } from './lock.js';
import { migrate } from './migrations.js';
import { SqlStore } from './sql-store.js';

/** The folder inside the data directory that holds PGlite's own files. */
export const PGLITE_SUBDIR = 'pgdata';

/**
 * PostgreSQL's 128 MB default buffer cache is resident in this process and is far more than a
 * registry, last states and a transition history need: 16 MB saves about 100 MiB of RSS.
 */
const SHARED_BUFFERS = '16MB';

export interface PgliteStoreOptions {
  /** Where the database lives; without one it lives in memory and is gone on close. */
  dataDir?: string;
  logger: Logger;
}

/**
 * The embedded adapter: PostgreSQL compiled to WebAssembly, in this process. A data directory
 * is owned through a lock file next to PGlite's files (`<dataDir>/supervisor.lock`).
 */
export class PgliteStore extends SqlStore {
  readonly kind = 'pglite';
  private readonly options: PgliteStoreOptions;
  private pg: PGlite | null = null;
  private lock: DirLock | null = null;

  constructor(options: PgliteStoreOptions) {
    super();
    this.options = options;
  }

  async open(): Promise<void> {
    if (this.pg !== null) return;

    const { dataDir, logger } = this.options;
    if (dataDir !== undefined) {
      await mkdir(dataDir, { recursive: true });
      this.lock = await acquireDirLock(dataDir);
    }

    try {
      const pg = new PGlite({
        ...(dataDir === undefined ? {} : { dataDir: join(dataDir, PGLITE_SUBDIR) }),
        startParams: [...PGlite.defaultStartParams, '-c', `shared_buffers=${SHARED_BUFFERS}`],
      });
      await pg.waitReady;
      this.pg = pg;
      const applied = await migrate(pgliteDriver(pg));
      this.attach(pgliteDriver(pg));
      logger.info({ kind: this.kind, dataDir: dataDir ?? null, applied }, 'store opened');
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  async close(): Promise<void> {
    this.attach(null);
    const pg = this.pg;
    const lock = this.lock;
    this.pg = null;
    this.lock = null;

    try {
      if (pg !== null && !pg.closed) await pg.close();
    } finally {
      await lock?.release();
    }
  }
}

/** The shared SQL surface over a PGlite instance (migrations and tools run through it). */
export function pgliteDriver(pg: PGlite): SqlDriver {
  return {
    ...pgliteSession(pg),
    transaction: (fn) => pg.transaction((tx) => fn(pgliteSession(tx))),
  };
}

function pgliteSession(db: PGlite | Transaction): SqlSession {
  return {
    async query<Row extends object>(text: string, params?: readonly unknown[]): Promise<Row[]> {
      const result = await db.query<Row>(text, params === undefined ? undefined : [...params]);
      return result.rows;
    },
    async exec(text: string): Promise<void> {
      await db.exec(text);
    },
  };
}
