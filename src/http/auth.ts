/**
 * Who is asking. The one seam where tokens are checked, shared by the HTTP API and the
 * WebSocket stream. Without users configured everything is open: the supervisor then binds
 * loopback only (see DESIGN.md "Security defaults").
 */
import { createHash, timingSafeEqual } from 'node:crypto';

/** A user of the API. Tokens are kept hashed: `tokenHash` is the SHA-256 hex of the token. */
export interface HttpUser {
  name: string;
  tokenHash: string;
}

/** The outcome of checking a request's token. */
export type AuthResult = { ok: true; user: string | undefined } | { ok: false };

/** Checks a bearer token (undefined when the request carried none). */
export type Authenticator = (token: string | undefined) => AuthResult;

/** SHA-256 hex of a token, the form {@link HttpUser.tokenHash} holds. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** The authenticator for a set of users; open (anonymous) when there are none. */
export function createAuthenticator(users: readonly HttpUser[] | undefined): Authenticator {
  if (!users || users.length === 0) {
    return () => ({ ok: true, user: undefined });
  }

  const hashes = users.map((user) => ({ name: user.name, hash: Buffer.from(user.tokenHash) }));

  return (token) => {
    if (!token) return { ok: false };

    const given = Buffer.from(hashToken(token));
    const match = hashes.find(
      (u) => u.hash.length === given.length && timingSafeEqual(u.hash, given),
    );

    return match ? { ok: true, user: match.name } : { ok: false };
  };
}

/** The token of an `Authorization: Bearer <token>` header value. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return match?.[1];
}
