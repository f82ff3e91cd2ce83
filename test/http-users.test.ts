import { describe, expect, it } from 'vitest';

import { parseUsers } from '../src/config/users.js';
import { createAuthenticator, hashToken } from '../src/http/auth.js';

const TOKEN = 'a-long-enough-token-123';
const HASHED = `sha256:${hashToken(TOKEN)}`;

describe('supervisor.users', () => {
  it('reads a hashed token, a role and a visibility rule', () => {
    const { users, problems } = parseUsers([
      { name: 'dash', role: 'viewer', token: HASHED, servers: ['a'], tags: ['prod'] },
    ]);

    expect(problems).toEqual([]);
    expect(users).toEqual([
      { name: 'dash', role: 'viewer', tokenHash: hashToken(TOKEN), servers: ['a'], tags: ['prod'] },
    ]);
  });

  it('hashes a ${VAR} token at once and keeps no clear copy', () => {
    const { users } = parseUsers([{ name: 'ops', role: 'admin', token: '${OPS_TOKEN}' }], {
      env: { OPS_TOKEN: TOKEN },
    });

    expect(users[0]?.tokenHash).toBe(hashToken(TOKEN));
    expect(JSON.stringify(users)).not.toContain(TOKEN);
  });

  it('refuses a token in clear without echoing it', () => {
    const { users, problems } = parseUsers([{ name: 'ops', role: 'admin', token: TOKEN }]);

    expect(users).toEqual([]);
    expect(problems[0]).toMatchObject({ severity: 'error', path: 'supervisor.users[0].token' });
    expect(JSON.stringify(problems)).not.toContain(TOKEN);
  });

  it('refuses a ${VAR} token shorter than 16 characters', () => {
    const { problems } = parseUsers([{ name: 'ops', role: 'admin', token: '${T}' }], {
      env: { T: 'short' },
    });

    expect(problems[0]?.message).toMatch(/at least 16/);
    expect(JSON.stringify(problems)).not.toContain('short"');
  });

  it('names an unset variable by its path', () => {
    const { problems } = parseUsers([{ name: 'ops', role: 'admin', token: '${NOPE}' }], {
      env: {},
    });

    expect(problems[0]).toMatchObject({ path: 'supervisor.users[0].token' });
    expect(problems[0]?.message).toContain('NOPE');
  });

  it('refuses an unknown role', () => {
    const { problems } = parseUsers([{ name: 'ops', role: 'root', token: HASHED }]);

    expect(problems[0]).toMatchObject({ path: 'supervisor.users[0].role', severity: 'error' });
  });

  it('refuses two users with one name, and two users with one token', () => {
    const other = `sha256:${hashToken('another-token-123456')}`;
    const { users, problems } = parseUsers([
      { name: 'a', role: 'admin', token: HASHED },
      { name: 'a', role: 'admin', token: other },
      { name: 'b', role: 'viewer', token: HASHED },
    ]);

    expect(users.map((u) => u.name)).toEqual(['a']);
    expect(problems.map((p) => p.path)).toEqual([
      'supervisor.users[1].name',
      'supervisor.users[2].token',
    ]);
  });

  it('warns that an admin visibility rule is ignored', () => {
    const { users, problems } = parseUsers([
      { name: 'a', role: 'admin', token: HASHED, servers: ['x'] },
    ]);

    expect(users[0]).not.toHaveProperty('servers');
    expect(problems[0]?.severity).toBe('warning');
  });
});

describe('principals', () => {
  const check = createAuthenticator([
    { name: 'v', role: 'viewer', tokenHash: hashToken(TOKEN), servers: ['a'], tags: ['t'] },
  ]);

  it('lets a viewer see servers by name or by tag, nothing else', () => {
    const result = check(TOKEN);
    if (!result.ok) throw new Error('token refused');

    expect(result.principal.sees('a')).toBe(true);
    expect(result.principal.sees('b', ['t'])).toBe(true);
    expect(result.principal.sees('b', ['u'])).toBe(false);
    expect(result.principal.isAdmin).toBe(false);
  });

  it('makes a user given without a role an admin', () => {
    const result = createAuthenticator([{ name: 'old', tokenHash: hashToken(TOKEN) }])(TOKEN);

    expect(result.ok && result.principal.isAdmin && result.principal.seesAll).toBe(true);
  });
});
