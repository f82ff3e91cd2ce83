import type { ServerState, Transition } from '../../machines/vocabulary.js';
import type { SettingsFeed, SettingsSubscription } from './settings-listener.js';

/** The last known state of one server, kept so a restart can resume where it left off. */
export interface ServerStateRecord {
  server: string;
  state: ServerState;
  reason: string;
  /** Epoch ms of the last transition. */
  since: number;
  /** For `open`: when the next attempt is due (epoch ms). */
  retryAt: number | null;
  /** Backoff attempt counter. */
  attempt: number;
  /** An operator opened the breaker: no timer until `close` or `reset`. */
  stickyOpen: boolean;
  /** An operator disabled the server. */
  disabled: boolean;
  detail: Record<string, unknown>;
}

/** A process group a stdio server runs in, recorded so a crashed supervisor's are reaped. */
export interface ProcessGroupRecord {
  server: string;
  pgid: number;
  /** The supervisor process that spawned it. */
  ownerPid: number;
  /** Epoch ms. */
  startedAt: number;
  command: string;
}

/** Transitions that could not be held while the database was away. */
export interface GapRecord {
  firstSeq: number;
  lastSeq: number;
  count: number;
  /** Epoch ms when the gap was recorded. */
  at: number;
}

/** A registry entry added through the API: the raw entry as given, secrets included. */
export interface RegistryRecord {
  name: string;
  entry: Record<string, unknown>;
  updatedAt: number;
}

/** A user added through the API (or by SQL); the token only ever as its hash. */
export interface UserRecord {
  name: string;
  role: 'admin' | 'viewer';
  /** `sha256:` and the 64 lowercase hex digits of the token's SHA-256. */
  tokenHash: string;
  /** A viewer's visible server names; null when not given. */
  servers: string[] | null;
  /** A viewer's visible tags; null when not given. */
  tags: string[] | null;
  /** Epoch ms. */
  updatedAt: number;
}

export interface HistoryQuery {
  server?: string;
  /** Only transitions with `seq > after`. */
  after?: number;
  limit?: number;
}

/**
 * Persistence behind one interface, two adapters (PGlite, postgres.js) on the same SQL
 * migrations. Methods are plain reads and writes; batching lives in the writer in front.
 */
export interface Store {
  readonly kind: 'pglite' | 'postgres';
  /** Opens, locks (one owner per database) and migrates. Throws STORE_LOCKED when owned. */
  open(): Promise<void>;
  close(): Promise<void>;

  /** Idempotent on `seq`: a transition already stored is skipped. */
  appendTransitions(rows: Transition[]): Promise<void>;
  history(query: HistoryQuery): Promise<Transition[]>;
  maxSeq(): Promise<number>;
  /** Deletes transitions older than `before` (epoch ms); returns how many. */
  pruneHistory(before: number): Promise<number>;

  putServerStates(rows: ServerStateRecord[]): Promise<void>;
  serverStates(): Promise<ServerStateRecord[]>;
  deleteServerState(server: string): Promise<void>;

  putProcessGroup(row: ProcessGroupRecord): Promise<void>;
  deleteProcessGroup(pgid: number): Promise<void>;
  processGroups(): Promise<ProcessGroupRecord[]>;

  putGap(gap: GapRecord): Promise<void>;
  gaps(): Promise<GapRecord[]>;

  settings(): Promise<Record<string, unknown>>;
  /** Upserts each key; a key whose value is `null` is removed (back to its default). */
  putSettings(values: Record<string, unknown>): Promise<void>;

  registry(): Promise<RegistryRecord[]>;
  putRegistry(row: RegistryRecord): Promise<void>;
  deleteRegistry(name: string): Promise<void>;

  /** Every stored user, by name. */
  users(): Promise<UserRecord[]>;
  /** Inserts or replaces the user `row.name`; a token hash held by another user is refused. */
  putUser(row: UserRecord): Promise<void>;
  deleteUser(name: string): Promise<void>;

  /**
   * Listens for settings written by anyone (a plain SQL `UPDATE` included): PostgreSQL only,
   * through NOTIFY. Absent on PGlite, whose only writer is this process.
   */
  listenSettings?(feed: SettingsFeed): Promise<SettingsSubscription>;
}
