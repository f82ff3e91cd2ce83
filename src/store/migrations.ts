import type { SqlDriver } from './driver.js';

/** One schema step. Versions only ever grow; a shipped migration is never edited. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** The channel the settings trigger notifies on; the payload is the changed key. */
export const SETTINGS_CHANNEL = 'mcp_supervisor_settings';

/**
 * The first half of every advisory lock key we take (the two-int form), so our locks are easy
 * to find in `pg_locks` and never collide with an application's single-bigint keys.
 */
export const LOCK_NAMESPACE = 0x6d637370;

/** Second half of the key held by the supervisor that owns the database. */
export const OWNER_LOCK_ID = 1;

/** Second half of the key that serializes migrations. */
export const MIGRATION_LOCK_ID = 2;

/** The schema, in order. Shared by the PGlite and the PostgreSQL adapter. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
      CREATE TABLE transitions (
        seq bigint PRIMARY KEY,
        server text NOT NULL,
        from_state text,
        to_state text NOT NULL,
        reason text NOT NULL,
        at timestamptz NOT NULL,
        detail jsonb NOT NULL DEFAULT '{}'::jsonb
      );
      CREATE INDEX transitions_server_seq ON transitions (server, seq);
      CREATE INDEX transitions_at ON transitions (at);

      CREATE TABLE server_states (
        server text PRIMARY KEY,
        state text NOT NULL,
        reason text NOT NULL,
        since timestamptz NOT NULL,
        retry_at timestamptz,
        attempt integer NOT NULL DEFAULT 0,
        sticky_open boolean NOT NULL DEFAULT false,
        disabled boolean NOT NULL DEFAULT false,
        detail jsonb NOT NULL DEFAULT '{}'::jsonb
      );

      CREATE TABLE process_groups (
        pgid integer PRIMARY KEY,
        server text NOT NULL,
        owner_pid integer NOT NULL,
        started_at timestamptz NOT NULL,
        command text NOT NULL
      );

      CREATE TABLE gaps (
        first_seq bigint PRIMARY KEY,
        last_seq bigint NOT NULL,
        count bigint NOT NULL,
        at timestamptz NOT NULL
      );

      CREATE TABLE settings (
        key text PRIMARY KEY,
        value jsonb NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
      );

      CREATE TABLE registry (
        name text PRIMARY KEY,
        entry jsonb NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 2,
    name: 'settings change notification',
    sql: `
      CREATE FUNCTION mcp_supervisor_settings_notify() RETURNS trigger
      LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify(
          '${SETTINGS_CHANNEL}',
          CASE TG_OP WHEN 'DELETE' THEN OLD.key ELSE NEW.key END
        );
        RETURN NULL;
      END
      $$;

      CREATE TRIGGER settings_notify
      AFTER INSERT OR UPDATE OR DELETE ON settings
      FOR EACH ROW EXECUTE FUNCTION mcp_supervisor_settings_notify();
    `,
  },
  {
    version: 3,
    name: 'users',
    // The checks keep a clear token or an unknown role out even when written by plain SQL.
    sql: `
      CREATE TABLE users (
        name text PRIMARY KEY,
        role text NOT NULL CHECK (role IN ('admin', 'viewer')),
        token_hash text NOT NULL UNIQUE CHECK (token_hash ~ '^sha256:[0-9a-f]{64}$'),
        servers jsonb,
        tags jsonb,
        updated_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
];

/**
 * Applies the migrations not yet recorded in `schema_migrations`, all in one transaction.
 * Running it again is harmless. Concurrent runs (two processes on one PostgreSQL database)
 * queue on a transaction-scoped advisory lock, so each step is applied exactly once.
 *
 * @returns the versions applied by this call, oldest first.
 */
export async function migrate(
  db: SqlDriver,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<number[]> {
  return db.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(${LOCK_NAMESPACE}, ${MIGRATION_LOCK_ID})`);
    await tx.exec(`
      CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )
    `);

    const rows = await tx.query<{ version: number }>('SELECT version FROM schema_migrations');
    const done = new Set(rows.map((row) => Number(row.version)));
    const applied: number[] = [];

    for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
      if (done.has(migration.version)) continue;

      await tx.exec(migration.sql);
      await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
        migration.version,
        migration.name,
      ]);
      applied.push(migration.version);
    }

    return applied;
  });
}
