/**
 * Who is asking. The one seam where tokens are checked, shared by the HTTP API and the
 * WebSocket stream. Without users configured everything is open: the supervisor then binds
 * loopback only (see DESIGN.md "Security defaults").
 */
import { createHash, timingSafeEqual } from 'node:crypto';

import { ANONYMOUS, Principal, type UserRole } from './principal.js';

export {
  ANONYMOUS,
  Principal,
  USER_ROLES,
  type UserRole,
  type VisibilityRule,
} from './principal.js';

/**
 * A user of the API and the stream. Tokens are kept hashed: `tokenHash` is the SHA-256 hex of
 * the token; the clear token is never held.
 */
export interface HttpUser {
  name: string;
  tokenHash: string;
  /** Default `admin` (users given before roles existed keep full rights). */
  role?: UserRole;
  /** A viewer sees these servers by name (and those matching `tags`); neither: all servers. */
  servers?: readonly string[];
  /** A viewer sees the servers carrying any of these tags (and those named in `servers`). */
  tags?: readonly string[];
}

/** The outcome of checking a request's token. */
export type AuthResult =
  { ok: true; user: string | undefined; principal: Principal } | { ok: false };

/** Checks a bearer token (undefined when the request carried none). */
export type Authenticator = (token: string | undefined) => AuthResult;

/** SHA-256 hex of a token, the form {@link HttpUser.tokenHash} holds. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** The authenticator for a set of users; open (an anonymous admin) when there are none. */
export function createAuthenticator(users: readonly HttpUser[] | undefined): Authenticator {
  if (!users || users.length === 0) {
    return () => ({ ok: true, user: undefined, principal: ANONYMOUS });
  }

  const known = users.map((user) => ({
    hash: Buffer.from(user.tokenHash.toLowerCase()),
    principal: new Principal(user.name, user.role ?? 'admin', user),
  }));

  return (token) => {
    if (!token) return { ok: false };

    const given = Buffer.from(hashToken(token));
    // Every hash is compared, so the time taken does not tell which user nearly matched.
    let match: Principal | undefined;
    for (const candidate of known) {
      const same = candidate.hash.length === given.length && timingSafeEqual(candidate.hash, given);
      if (same) match = candidate.principal;
    }

    return match ? { ok: true, user: match.user, principal: match } : { ok: false };
  };
}

/** The token of an `Authorization: Bearer <token>` header value. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return match?.[1];
}
