import { MIN_TOKEN_LENGTH, TOKEN_HASH_PREFIX } from '../config/users.js';
import { SupervisorError } from '../errors.js';
import {
  createAuthenticator,
  hashToken,
  USER_ROLES,
  type Authenticator,
  type HttpUser,
  type UserRole,
} from '../http/auth.js';
import type { Logger } from '../log.js';
import type { Store, UserRecord } from '../store/store.js';

/** A user as the API shows it: never its token, nor the token's hash. */
export interface UserView {
  name: string;
  role: UserRole;
  servers: string[] | null;
  tags: string[] | null;
  /** `config`: from the config file, read-only through the API; `api`: added through it. */
  source: 'config' | 'api';
  /** Epoch ms of the last change; null for config users. */
  updatedAt: number | null;
}

/** The user surface behind `GET /api/users`, `PUT` and `DELETE /api/users/:user`. */
export interface UserAdminApi {
  list(): UserView[];
  /**
   * Adds or replaces an API user from `{role, token, servers?, tags?}`. The token (clear, at
   * least 16 characters, or `sha256:<hex>`) is hashed before it is stored; it may be left out
   * when replacing a user, which keeps the old one. Throws INVALID_REQUEST naming the field,
   * CONFLICT for a config user, a token in use or a change that leaves no admin.
   */
  put(name: string, body: unknown, actor?: string): Promise<{ user: UserView; created: boolean }>;
  /** Deletes an API user. Throws NOT_FOUND, CONFLICT for a config user or the last admin. */
  remove(name: string, actor?: string): Promise<void>;
}

export interface UserDirectoryOptions {
  store: Store | null;
  /** The config file's users (tokens hashed): they win a name clash and are read-only here. */
  configUsers: readonly HttpUser[];
  /** The `Supervisor` service logger. */
  logger: Logger;
  /** The API listens beyond loopback, so it may never be left without users. */
  requireUsers?: boolean;
  /** Epoch ms (default `Date.now`). */
  now?: () => number;
}

/** Called with the name of a user that changed or went away. */
export type UserChangeListener = (name: string) => void;

const NAME_PATTERN = /^[\w.@-]{1,64}$/;
const HEX_HASH = /^[0-9a-f]{64}$/i;
const BODY_KEYS = new Set(['role', 'token', 'servers', 'tags']);

/**
 * Everyone who may use the API and the stream: the config file's users merged with those
 * added through the API (persisted in the store's `users` table). Every change takes effect
 * at once: {@link UserDirectory.authenticate} always checks against the current set.
 */
export class UserDirectory implements UserAdminApi {
  private readonly options: UserDirectoryOptions;
  private readonly now: () => number;
  private readonly config: ReadonlyMap<string, HttpUser>;
  private readonly api = new Map<string, UserRecord>();
  private readonly listeners = new Set<UserChangeListener>();
  private check: Authenticator;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: UserDirectoryOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
    this.config = new Map(options.configUsers.map((u) => [u.name, u]));
    this.check = createAuthenticator(options.configUsers);
  }

  /** Checks a bearer token against the current users (open when there are none). */
  readonly authenticate: Authenticator = (token) => this.check(token);

  /** Reads the stored users; one shadowed by, or sharing a token with, a config user is skipped. */
  async load(): Promise<HttpUser[]> {
    const rows = this.options.store ? await this.options.store.users() : [];
    const configHashes = new Set([...this.config.values()].map((u) => u.tokenHash.toLowerCase()));

    for (const row of rows) {
      if (this.config.has(row.name)) {
        this.options.logger.warn({ user: row.name }, 'stored user shadowed by the config file');
        continue;
      }

      if (configHashes.has(bareHash(row.tokenHash))) {
        this.options.logger.warn({ user: row.name }, 'stored user has a config user token');
        continue;
      }

      this.api.set(row.name, row);
    }

    this.rebuild();
    return this.users();
  }

  /** Every user, config users first, with hashed tokens. */
  users(): HttpUser[] {
    return [...this.config.values(), ...[...this.api.values()].map(toHttpUser)];
  }

  list(): UserView[] {
    const fromConfig = [...this.config.values()].map((u): UserView => {
      const role = u.role ?? 'admin';
      return { name: u.name, role, ...rule(u), source: 'config', updatedAt: null };
    });
    const fromApi = [...this.api.values()].map(viewOf);

    return [...fromConfig, ...fromApi];
  }

  /** Tells `listener` of every user that changed or went away; returns the unsubscribe. */
  onChange(listener: UserChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  put(name: string, body: unknown, actor?: string): Promise<{ user: UserView; created: boolean }> {
    return this.serial(async () => {
      this.refuseConfig(name);

      const previous = this.api.get(name);
      const record = parseUserBody(name, body, previous, this.now());
      this.refuseSharedToken(name, record.tokenHash);
      this.refuseNoAdmin(name, record);

      await this.options.store?.putUser(record);
      this.api.set(name, record);
      this.changed(name);
      this.options.logger.info({ user: name, role: record.role, by: actor }, 'user put');

      return { user: viewOf(record), created: previous === undefined };
    });
  }

  remove(name: string, actor?: string): Promise<void> {
    return this.serial(async () => {
      this.refuseConfig(name);
      if (!this.api.has(name)) {
        throw new SupervisorError('NOT_FOUND', `no user named ${name}`, { user: name });
      }

      this.refuseNoAdmin(name, null);

      await this.options.store?.deleteUser(name);
      this.api.delete(name);
      this.changed(name);
      this.options.logger.info({ user: name, by: actor }, 'user deleted');
    });
  }

  private changed(name: string): void {
    this.rebuild();

    for (const listener of this.listeners) {
      try {
        listener(name);
      } catch (err) {
        this.options.logger.error({ err, user: name }, 'user change listener failed');
      }
    }
  }

  private rebuild(): void {
    this.check = createAuthenticator(this.users());
  }

  private refuseConfig(name: string): void {
    if (!this.config.has(name)) return;

    throw new SupervisorError(
      'CONFLICT',
      `user ${name} comes from the config file and is read-only through the API`,
      { user: name },
    );
  }

  private refuseSharedToken(name: string, tokenHash: string): void {
    const hash = bareHash(tokenHash);
    const owner = this.users().find((u) => u.name !== name && u.tokenHash.toLowerCase() === hash);
    if (!owner) return;

    throw new SupervisorError('CONFLICT', 'this token belongs to another user', {
      user: name,
      field: 'token',
    });
  }

  /**
   * Users, if any, must keep an admin (or nobody could manage them through the API again);
   * beyond loopback there must be users at all, or the API would be open to the network.
   */
  private refuseNoAdmin(name: string, next: UserRecord | null): void {
    const after = this.users().filter((u) => u.name !== name);
    if (next) after.push(toHttpUser(next));

    if (after.length === 0) {
      if (!this.options.requireUsers) return;

      throw new SupervisorError(
        'CONFLICT',
        'the API listens beyond loopback and may not be left without users',
        { user: name },
      );
    }

    const before = this.users();
    if (after.some(isAdmin)) return;
    // A set that had no admin to begin with (config viewers only) loses nothing.
    if (before.length > 0 && !before.some(isAdmin)) return;

    throw new SupervisorError('CONFLICT', 'this would leave no admin user', { user: name });
  }

  private serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

/**
 * Validates a `PUT /api/users/:user` body into the record to store. Every refusal is an
 * INVALID_REQUEST with the offending `field`; no message ever carries the token.
 */
export function parseUserBody(
  name: string,
  body: unknown,
  previous: UserRecord | undefined,
  now: number,
): UserRecord {
  if (!NAME_PATTERN.test(name)) {
    throw invalid('name', 'a user name is 1-64 of [A-Za-z0-9_.@-]');
  }

  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw invalid('body', 'a user must be a JSON object with role and token');
  }

  const fields = body as Record<string, unknown>;
  const unknown = Object.keys(fields).find((key) => !BODY_KEYS.has(key));
  if (unknown !== undefined) throw invalid(unknown, `unknown field "${unknown}"`);

  const role = USER_ROLES.find((r) => r === fields.role);
  if (!role) throw invalid('role', `role must be one of ${USER_ROLES.join(', ')}`);

  const tokenHash = readToken(fields.token, previous);
  const servers = readNames(fields.servers, 'servers');
  const tags = readNames(fields.tags, 'tags');

  if (role === 'admin' && (servers !== null || tags !== null)) {
    const field = servers !== null ? 'servers' : 'tags';
    throw invalid(field, 'an admin sees every server: servers and tags are for viewers');
  }

  return { name, role, tokenHash, servers, tags, updatedAt: now };
}

/** The stored `sha256:<hex>` form of a token given clear or already hashed. */
function readToken(value: unknown, previous: UserRecord | undefined): string {
  if (value === undefined && previous) return previous.tokenHash;

  if (typeof value !== 'string' || value === '') {
    throw invalid('token', `token is required: at least ${MIN_TOKEN_LENGTH} characters`);
  }

  if (value.startsWith(TOKEN_HASH_PREFIX)) {
    const hex = value.slice(TOKEN_HASH_PREFIX.length);
    if (!HEX_HASH.test(hex)) throw invalid('token', 'a hashed token is sha256: and 64 hex digits');

    return `${TOKEN_HASH_PREFIX}${hex.toLowerCase()}`;
  }

  // A bearer token is one run of non-space characters: any other could never be presented.
  if (/\s/.test(value)) throw invalid('token', 'a token may not contain whitespace');
  if (value.length < MIN_TOKEN_LENGTH) {
    throw invalid('token', `a token must have at least ${MIN_TOKEN_LENGTH} characters`);
  }

  return `${TOKEN_HASH_PREFIX}${hashToken(value)}`;
}

function readNames(value: unknown, field: string): string[] | null {
  if (value === undefined || value === null) return null;

  if (Array.isArray(value) && value.every((v): v is string => typeof v === 'string')) {
    return [...new Set(value)];
  }

  throw invalid(field, `${field} must be an array of strings`);
}

function invalid(field: string, message: string): SupervisorError {
  return new SupervisorError('INVALID_REQUEST', message, { field });
}

function isAdmin(user: HttpUser): boolean {
  return (user.role ?? 'admin') === 'admin';
}

function bareHash(stored: string): string {
  const hex = stored.startsWith(TOKEN_HASH_PREFIX)
    ? stored.slice(TOKEN_HASH_PREFIX.length)
    : stored;
  return hex.toLowerCase();
}

function toHttpUser(record: UserRecord): HttpUser {
  return {
    name: record.name,
    role: record.role,
    tokenHash: bareHash(record.tokenHash),
    ...(record.servers ? { servers: record.servers } : {}),
    ...(record.tags ? { tags: record.tags } : {}),
  };
}

function viewOf(record: UserRecord): UserView {
  return {
    name: record.name,
    role: record.role,
    servers: record.servers,
    tags: record.tags,
    source: 'api',
    updatedAt: record.updatedAt,
  };
}

function rule(user: HttpUser): Pick<UserView, 'servers' | 'tags'> {
  return {
    servers: user.servers ? [...user.servers] : null,
    tags: user.tags ? [...user.tags] : null,
  };
}
