/**
 * The `users` of the config's `supervisor` block: who may use the API and the stream, with a
 * role and a visibility rule. Tokens are given hashed (`sha256:<hex>`) or as a `${VAR}`
 * reference resolved from the environment and hashed at once: no clear token is kept, and no
 * message ever carries one.
 *
 * ```jsonc
 * "users": [
 *   { "name": "ops", "role": "admin", "token": "sha256:9f86d0…" },
 *   { "name": "dash", "role": "viewer", "token": "${DASH_TOKEN}", "tags": ["prod"] }
 * ]
 * ```
 */
import { hashToken, USER_ROLES, type HttpUser, type UserRole } from '../http/auth.js';
import { interpolate } from './interpolate.js';
import { joinPath, type ConfigProblem } from './problems.js';

/** A token given through `${VAR}` must be at least this long (characters). */
export const MIN_TOKEN_LENGTH = 16;

/** The prefix of a hashed token in the config. */
export const TOKEN_HASH_PREFIX = 'sha256:';

/** Users read from a config, and every finding about them. */
export interface ParsedUsers {
  users: HttpUser[];
  problems: ConfigProblem[];
}

export interface ParseUsersOptions {
  /** Where `${VAR}` tokens resolve from (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** The JSON path of the users array (default `supervisor.users`). */
  path?: string;
}

const USER_KEYS = new Set(['name', 'role', 'token', 'servers', 'tags']);
const HEX_HASH = /^[0-9a-f]{64}$/i;
const WHOLE_REFERENCE = /^\$\{[^}]+\}$/;

/** Validates `supervisor.users`; only users without errors are returned. */
export function parseUsers(raw: unknown, options: ParseUsersOptions = {}): ParsedUsers {
  const base = options.path ?? 'supervisor.users';
  const env = options.env ?? process.env;
  const problems: ConfigProblem[] = [];

  if (raw === undefined || raw === null) return { users: [], problems };
  if (!Array.isArray(raw)) {
    return { users: [], problems: [error(base, 'users must be an array')] };
  }

  const users: HttpUser[] = [];
  const names = new Set<string>();
  const hashes = new Map<string, string>();

  raw.forEach((item, index) => {
    const at = `${base}[${index}]`;
    const user = parseUser(item, at, env, problems);
    if (!user) return;

    if (names.has(user.name)) {
      problems.push(error(joinPath(at, 'name'), `user ${user.name} is given twice`));
      return;
    }

    const owner = hashes.get(user.tokenHash);
    if (owner !== undefined) {
      problems.push(error(joinPath(at, 'token'), `user ${user.name} has the token of ${owner}`));
      return;
    }

    names.add(user.name);
    hashes.set(user.tokenHash, user.name);
    users.push(user);
  });

  return { users, problems };
}

function parseUser(
  item: unknown,
  at: string,
  env: NodeJS.ProcessEnv,
  problems: ConfigProblem[],
): HttpUser | undefined {
  if (item === null || typeof item !== 'object' || Array.isArray(item)) {
    problems.push(error(at, 'a user must be an object with name, role and token'));
    return undefined;
  }

  const fields = item as Record<string, unknown>;
  const before = problems.length;

  for (const key of Object.keys(fields)) {
    if (!USER_KEYS.has(key)) problems.push(warning(joinPath(at, key), `unknown key "${key}"`));
  }

  const name = readName(fields.name, at, problems);
  const role = readRole(fields.role, at, problems);
  const tokenHash = readToken(fields.token, joinPath(at, 'token'), env, problems);
  const servers = readNames(fields.servers, joinPath(at, 'servers'), problems);
  const tags = readNames(fields.tags, joinPath(at, 'tags'), problems);

  if (role === 'admin' && (servers || tags)) {
    problems.push(warning(at, 'an admin sees every server: servers and tags are ignored'));
  }

  const failed = problems.slice(before).some((p) => p.severity === 'error');
  if (failed || !name || !role || !tokenHash) return undefined;

  return {
    name,
    role,
    tokenHash,
    ...(servers && role === 'viewer' ? { servers } : {}),
    ...(tags && role === 'viewer' ? { tags } : {}),
  };
}

function readName(value: unknown, at: string, problems: ConfigProblem[]): string | undefined {
  if (typeof value === 'string' && /^[\w.@-]{1,64}$/.test(value)) return value;

  problems.push(error(joinPath(at, 'name'), 'name must be 1-64 of [A-Za-z0-9_.@-]'));
  return undefined;
}

function readRole(value: unknown, at: string, problems: ConfigProblem[]): UserRole | undefined {
  const role = USER_ROLES.find((r) => r === value);
  if (role) return role;

  problems.push(error(joinPath(at, 'role'), `role must be one of ${USER_ROLES.join(', ')}`));
  return undefined;
}

/** The SHA-256 hex of the token; messages name the form, never the value. */
function readToken(
  value: unknown,
  at: string,
  env: NodeJS.ProcessEnv,
  problems: ConfigProblem[],
): string | undefined {
  if (typeof value !== 'string' || value === '') {
    problems.push(error(at, 'token is required: sha256:<hex> or ${VAR}'));
    return undefined;
  }

  if (value.startsWith(TOKEN_HASH_PREFIX)) {
    const hex = value.slice(TOKEN_HASH_PREFIX.length);
    if (HEX_HASH.test(hex)) return hex.toLowerCase();

    problems.push(error(at, 'a hashed token is sha256: and 64 hex digits'));
    return undefined;
  }

  if (!WHOLE_REFERENCE.test(value)) {
    problems.push(
      error(at, 'a token in clear is refused: give sha256:<hex> or ${VAR} from the environment'),
    );
    return undefined;
  }

  const resolved = interpolate(value, at, { env });
  if (resolved.problems.length > 0) {
    problems.push(...resolved.problems);
    return undefined;
  }

  if (resolved.value.length < MIN_TOKEN_LENGTH) {
    problems.push(error(at, `a token must have at least ${MIN_TOKEN_LENGTH} characters`));
    return undefined;
  }

  return hashToken(resolved.value);
}

function readNames(value: unknown, at: string, problems: ConfigProblem[]): string[] | undefined {
  if (value === undefined) return undefined;

  if (Array.isArray(value) && value.every((v): v is string => typeof v === 'string')) {
    return [...new Set(value)];
  }

  problems.push(error(at, 'must be an array of strings'));
  return undefined;
}

function error(path: string, message: string): ConfigProblem {
  return { severity: 'error', path, message };
}

function warning(path: string, message: string): ConfigProblem {
  return { severity: 'warning', path, message };
}
