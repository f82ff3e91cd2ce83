/**
 * A database of its own for one benchmark run on the PostgreSQL at `MCPS_BENCH_DATABASE_URL`,
 * dropped after.
 */
import { randomBytes } from 'node:crypto';

import postgres from 'postgres';

export const ADMIN_URL =
  process.env.MCPS_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export async function withDatabase<T>(run: (url: string) => Promise<T>): Promise<T> {
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  const name = `mcps_bench_${randomBytes(6).toString('hex')}`;
  await admin.unsafe(`CREATE DATABASE ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;

  try {
    return await run(url.href);
  } finally {
    await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}
