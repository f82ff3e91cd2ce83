/**
 * Transition write throughput into the real PostgreSQL: the supervisor's write path (the
 * TransitionWriter batching into PostgresStore) against a raw postgres.js multi-row INSERT of
 * the same rows, both in the same run, each into a fresh database that is dropped after.
 *
 * Needs PostgreSQL at $MCPS_BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test).
 */

import postgres from 'postgres';

import type { Transition } from '../machines/vocabulary.js';
import { silentLogger } from '../src/log.js';
import { postgresDriver, PostgresStore } from '../src/store/postgres.js';
import { migrate } from '../src/store/migrations.js';
import { TransitionWriter } from '../src/store/writer.js';
import { withDatabase } from './database.js';
import type { BenchResult } from './report.js';

const ROWS = 50_000;
const BATCH = 1_000;
const TARGET = 0.8;

/** Runs both measurements and returns the ratio writer / raw (higher is better). */
export async function benchStore(): Promise<BenchResult> {
  const rows = makeRows(ROWS);
  const rawPerSecond = await withDatabase((url) => rawInsert(url, rows));
  const writerPerSecond = await withDatabase((url) => writerInsert(url, rows));
  const ratio = writerPerSecond / rawPerSecond;

  return {
    name: `store: ${ROWS} transitions into PostgreSQL`,
    rows: [
      { label: 'raw postgres.js multi-row insert', value: rawPerSecond, unit: 'rows/s' },
      { label: 'TransitionWriter → PostgresStore', value: writerPerSecond, unit: 'rows/s' },
    ],
    ratio,
    target: `ratio >= ${TARGET}`,
    pass: ratio >= TARGET,
  };
}

async function rawInsert(url: string, rows: Transition[]): Promise<number> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await migrate(postgresDriver(sql));
    const values = rows.map((t) => ({
      seq: t.seq,
      server: t.server,
      from_state: t.from,
      to_state: t.to,
      reason: t.reason,
      at: new Date(t.at),
      detail: sql.json(t.detail as postgres.JSONValue),
    }));

    const startedAt = process.hrtime.bigint();
    for (let i = 0; i < values.length; i += BATCH) {
      await sql`INSERT INTO transitions ${sql(values.slice(i, i + BATCH))}`;
    }
    return perSecond(rows.length, startedAt);
  } finally {
    await sql.end();
  }
}

async function writerInsert(url: string, rows: Transition[]): Promise<number> {
  const store = new PostgresStore({ databaseUrl: url, logger: silentLogger() });
  await store.open();
  try {
    const writer = new TransitionWriter(store, {
      maxPendingWrites: rows.length,
      logger: silentLogger(),
      batchSize: BATCH,
    });

    const startedAt = process.hrtime.bigint();
    for (const row of rows) writer.enqueue(row);
    await writer.flush();
    const rate = perSecond(rows.length, startedAt);

    if ((await store.maxSeq()) !== rows.length) throw new Error('the writer lost rows');
    return rate;
  } finally {
    await store.close();
  }
}

function makeRows(count: number): Transition[] {
  const at = Date.now();
  return Array.from({ length: count }, (_, i) => ({
    seq: i + 1,
    server: `server-${i % 20}`,
    from: i % 2 === 0 ? 'closed' : 'open',
    to: i % 2 === 0 ? 'open' : 'halfOpen',
    reason: i % 2 === 0 ? 'probe_timeout' : 'backoff_elapsed',
    at: at + i,
    detail: { attempt: i % 7, message: 'probe timed out after 5000 ms' },
  }));
}

function perSecond(count: number, startedAt: bigint): number {
  return count / (Number(process.hrtime.bigint() - startedAt) / 1e9);
}
