import type { ServerState, Transition, TransitionDetail } from '../../machines/vocabulary.js';
import { SupervisorError } from '../errors.js';
import type { SqlDriver } from './driver.js';
import type {
  GapRecord,
  HistoryQuery,
  ProcessGroupRecord,
  RegistryRecord,
  ServerStateRecord,
  Store,
  UserRecord,
} from './store.js';

/** Epoch ms as a SQL expression over a timestamptz column. */
const epochMs = (column: string): string => `(extract(epoch FROM ${column}) * 1000)::float8`;

/** A parameter that arrives as JSON text; `::text` first so no driver re-encodes our string. */
const json = (n: number): string => `$${n}::text::jsonb`;

/** Epoch ms parameter as a timestamptz. */
const timestamp = (n: number): string => `to_timestamp($${n}::float8 / 1000)`;

interface TransitionRow {
  seq: string | number;
  server: string;
  from_state: string | null;
  to_state: string;
  reason: string;
  at: number;
  detail: TransitionDetail;
}

interface ServerStateRow {
  server: string;
  state: string;
  reason: string;
  since: number;
  retry_at: number | null;
  attempt: number;
  sticky_open: boolean;
  disabled: boolean;
  detail: Record<string, unknown>;
}

interface ProcessGroupRow {
  server: string;
  pgid: number;
  owner_pid: number;
  started_at: number;
  command: string;
}

interface UserRow {
  name: string;
  role: UserRecord['role'];
  token_hash: string;
  servers: string[] | null;
  tags: string[] | null;
  updated_at: number;
}

interface GapRow {
  first_seq: string | number;
  last_seq: string | number;
  count: string | number;
  at: number;
}

/**
 * Every read and write of the {@link Store} interface, written once in SQL both adapters run.
 * Subclasses own the connection: they open it, lock the database, migrate, and hand the
 * driver over with {@link SqlStore.attach}.
 */
export abstract class SqlStore implements Store {
  abstract readonly kind: 'pglite' | 'postgres';
  private driver: SqlDriver | null = null;

  abstract open(): Promise<void>;
  abstract close(): Promise<void>;

  async appendTransitions(rows: Transition[]): Promise<void> {
    if (rows.length === 0) return;

    const payload = rows.map((t) => ({
      seq: t.seq,
      server: t.server,
      from_state: t.from,
      to_state: t.to,
      reason: t.reason,
      at: t.at,
      detail: t.detail ?? {},
    }));
    await this.writable().query(
      `INSERT INTO transitions (seq, server, from_state, to_state, reason, at, detail)
       SELECT x.seq, x.server, x.from_state, x.to_state, x.reason,
              to_timestamp(x.at / 1000), x.detail
       FROM jsonb_to_recordset(${json(1)}) AS x(
         seq bigint, server text, from_state text, to_state text, reason text,
         at float8, detail jsonb)
       ORDER BY x.seq
       ON CONFLICT (seq) DO NOTHING`,
      [JSON.stringify(payload)],
    );
  }

  async history(query: HistoryQuery): Promise<Transition[]> {
    const rows = await this.db().query<TransitionRow>(
      `SELECT seq, server, from_state, to_state, reason, ${epochMs('at')} AS at, detail
       FROM transitions
       WHERE ($1::text IS NULL OR server = $1::text) AND seq > $2::bigint
       ORDER BY seq
       LIMIT $3::bigint`,
      [query.server ?? null, query.after ?? 0, query.limit ?? null],
    );
    return rows.map(toTransition);
  }

  async maxSeq(): Promise<number> {
    const rows = await this.db().query<{ max: string | number }>(
      'SELECT coalesce(max(seq), 0) AS max FROM transitions',
    );
    return Number(rows[0]?.max ?? 0);
  }

  async pruneHistory(before: number): Promise<number> {
    const rows = await this.writable().query<{ n: number }>(
      `WITH gone AS (DELETE FROM transitions WHERE at < ${timestamp(1)} RETURNING 1)
       SELECT count(*)::integer AS n FROM gone`,
      [before],
    );
    return Number(rows[0]?.n ?? 0);
  }

  async putServerStates(rows: ServerStateRecord[]): Promise<void> {
    if (rows.length === 0) return;

    // One row per server: a later record in the same call wins, as it would one call later.
    const latest = new Map(rows.map((row) => [row.server, row]));
    const payload = [...latest.values()].map((r) => ({
      server: r.server,
      state: r.state,
      reason: r.reason,
      since: r.since,
      retry_at: r.retryAt,
      attempt: r.attempt,
      sticky_open: r.stickyOpen,
      disabled: r.disabled,
      detail: r.detail ?? {},
    }));
    await this.writable().query(
      `INSERT INTO server_states
         (server, state, reason, since, retry_at, attempt, sticky_open, disabled, detail)
       SELECT x.server, x.state, x.reason, to_timestamp(x.since / 1000),
              to_timestamp(x.retry_at / 1000), x.attempt, x.sticky_open, x.disabled, x.detail
       FROM jsonb_to_recordset(${json(1)}) AS x(
         server text, state text, reason text, since float8, retry_at float8,
         attempt integer, sticky_open boolean, disabled boolean, detail jsonb)
       ON CONFLICT (server) DO UPDATE SET
         state = excluded.state, reason = excluded.reason, since = excluded.since,
         retry_at = excluded.retry_at, attempt = excluded.attempt,
         sticky_open = excluded.sticky_open, disabled = excluded.disabled,
         detail = excluded.detail`,
      [JSON.stringify(payload)],
    );
  }

  async serverStates(): Promise<ServerStateRecord[]> {
    const rows = await this.db().query<ServerStateRow>(
      `SELECT server, state, reason, ${epochMs('since')} AS since,
              ${epochMs('retry_at')} AS retry_at, attempt, sticky_open, disabled, detail
       FROM server_states ORDER BY server`,
    );
    return rows.map((row) => ({
      server: row.server,
      state: row.state as ServerState,
      reason: row.reason,
      since: Number(row.since),
      retryAt: row.retry_at === null ? null : Number(row.retry_at),
      attempt: Number(row.attempt),
      stickyOpen: row.sticky_open,
      disabled: row.disabled,
      detail: row.detail,
    }));
  }

  async deleteServerState(server: string): Promise<void> {
    await this.writable().query('DELETE FROM server_states WHERE server = $1', [server]);
  }

  async putProcessGroup(row: ProcessGroupRecord): Promise<void> {
    await this.writable().query(
      `INSERT INTO process_groups (pgid, server, owner_pid, started_at, command)
       VALUES ($1, $2, $3, ${timestamp(4)}, $5)
       ON CONFLICT (pgid) DO UPDATE SET server = excluded.server,
         owner_pid = excluded.owner_pid, started_at = excluded.started_at,
         command = excluded.command`,
      [row.pgid, row.server, row.ownerPid, row.startedAt, row.command],
    );
  }

  async deleteProcessGroup(pgid: number): Promise<void> {
    await this.writable().query('DELETE FROM process_groups WHERE pgid = $1', [pgid]);
  }

  async processGroups(): Promise<ProcessGroupRecord[]> {
    const rows = await this.db().query<ProcessGroupRow>(
      `SELECT pgid, server, owner_pid, ${epochMs('started_at')} AS started_at, command
       FROM process_groups ORDER BY pgid`,
    );
    return rows.map((row) => ({
      server: row.server,
      pgid: Number(row.pgid),
      ownerPid: Number(row.owner_pid),
      startedAt: Number(row.started_at),
      command: row.command,
    }));
  }

  async putGap(gap: GapRecord): Promise<void> {
    // Keyed on first_seq: a gap that grew while its first write was in flight is rewritten.
    await this.writable().query(
      `INSERT INTO gaps (first_seq, last_seq, count, at) VALUES ($1, $2, $3, ${timestamp(4)})
       ON CONFLICT (first_seq) DO UPDATE SET last_seq = excluded.last_seq,
         count = excluded.count, at = excluded.at`,
      [gap.firstSeq, gap.lastSeq, gap.count, gap.at],
    );
  }

  async gaps(): Promise<GapRecord[]> {
    const rows = await this.db().query<GapRow>(
      `SELECT first_seq, last_seq, count, ${epochMs('at')} AS at FROM gaps ORDER BY first_seq`,
    );
    return rows.map((row) => ({
      firstSeq: Number(row.first_seq),
      lastSeq: Number(row.last_seq),
      count: Number(row.count),
      at: Number(row.at),
    }));
  }

  async settings(): Promise<Record<string, unknown>> {
    const rows = await this.db().query<{ key: string; value: unknown }>(
      'SELECT key, value FROM settings ORDER BY key',
    );
    return Object.fromEntries(rows.map((row) => [row.key, row.value]));
  }

  async putSettings(values: Record<string, unknown>): Promise<void> {
    const entries = Object.entries(values).filter(([, value]) => value !== undefined);
    if (entries.length === 0) return;

    // An unchanged value is not rewritten, so listeners are not woken for nothing.
    await this.writable().transaction(async (tx) => {
      await tx.query(
        `INSERT INTO settings (key, value, updated_at)
         SELECT key, value, now() FROM jsonb_each(${json(1)})
         WHERE jsonb_typeof(value) <> 'null'
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
         WHERE settings.value IS DISTINCT FROM excluded.value`,
        [JSON.stringify(Object.fromEntries(entries))],
      );
      const cleared = entries.filter(([, value]) => value === null).map(([key]) => key);
      if (cleared.length === 0) return;

      await tx.query(
        `DELETE FROM settings WHERE key IN (SELECT jsonb_array_elements_text(${json(1)}))`,
        [JSON.stringify(cleared)],
      );
    });
  }

  async registry(): Promise<RegistryRecord[]> {
    const rows = await this.db().query<{ name: string; entry: object; updated_at: number }>(
      `SELECT name, entry, ${epochMs('updated_at')} AS updated_at FROM registry ORDER BY name`,
    );
    return rows.map((row) => ({
      name: row.name,
      entry: row.entry as Record<string, unknown>,
      updatedAt: Number(row.updated_at),
    }));
  }

  async putRegistry(row: RegistryRecord): Promise<void> {
    await this.writable().query(
      `INSERT INTO registry (name, entry, updated_at) VALUES ($1, ${json(2)}, ${timestamp(3)})
       ON CONFLICT (name) DO UPDATE SET entry = excluded.entry, updated_at = excluded.updated_at`,
      [row.name, JSON.stringify(row.entry), row.updatedAt],
    );
  }

  async deleteRegistry(name: string): Promise<void> {
    await this.writable().query('DELETE FROM registry WHERE name = $1', [name]);
  }

  async users(): Promise<UserRecord[]> {
    const rows = await this.db().query<UserRow>(
      `SELECT name, role, token_hash, servers, tags, ${epochMs('updated_at')} AS updated_at
       FROM users ORDER BY name`,
    );
    return rows.map((row) => ({
      name: row.name,
      role: row.role,
      tokenHash: row.token_hash,
      servers: row.servers,
      tags: row.tags,
      updatedAt: Number(row.updated_at),
    }));
  }

  async putUser(row: UserRecord): Promise<void> {
    const names = (list: string[] | null): string | null =>
      list === null ? null : JSON.stringify(list);

    await this.writable().query(
      `INSERT INTO users (name, role, token_hash, servers, tags, updated_at)
       VALUES ($1, $2, $3, ${json(4)}, ${json(5)}, ${timestamp(6)})
       ON CONFLICT (name) DO UPDATE SET role = excluded.role,
         token_hash = excluded.token_hash, servers = excluded.servers, tags = excluded.tags,
         updated_at = excluded.updated_at`,
      [row.name, row.role, row.tokenHash, names(row.servers), names(row.tags), row.updatedAt],
    );
  }

  async deleteUser(name: string): Promise<void> {
    await this.writable().query('DELETE FROM users WHERE name = $1', [name]);
  }

  /** Hands over an opened, locked and migrated driver (or `null` once closed). */
  protected attach(driver: SqlDriver | null): void {
    this.driver = driver;
  }

  /** The open driver; every query before `open()` or after `close()` is refused. */
  protected db(): SqlDriver {
    if (this.driver === null) {
      throw new SupervisorError('STORE_UNAVAILABLE', 'the store is not open', { kind: this.kind });
    }

    return this.driver;
  }

  /** The open driver for a write: {@link SqlStore.assertWritable} decides first. */
  protected writable(): SqlDriver {
    const driver = this.db();
    this.assertWritable();

    return driver;
  }

  /**
   * Throws when this store may not write now (a PostgreSQL owner that lost its lock throws
   * STORE_LOCKED). Every store writes by default.
   */
  protected assertWritable(): void {}
}

function toTransition(row: TransitionRow): Transition {
  return {
    seq: Number(row.seq),
    server: row.server,
    from: row.from_state as ServerState | null,
    to: row.to_state as ServerState,
    reason: row.reason as Transition['reason'],
    at: Number(row.at),
    detail: row.detail,
  };
}
