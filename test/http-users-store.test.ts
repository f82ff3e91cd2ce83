/**
 * Users kept in the store and managed through `/api/users`: on a real supervisor with real
 * stdio fixture servers, against a real PGlite data directory and a real PostgreSQL database.
 * A viewer added through the API sees only its servers over HTTP and the stream, at once and
 * after a restart; the token is stored as its hash only; a config user wins a name clash.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { hashToken, type HttpUser } from '../src/http/auth.js';
import { silentLogger } from '../src/log.js';
import type { StoreSpec } from '../src/store/open.js';
import { PgliteStore } from '../src/store/pglite.js';
import { PostgresStore } from '../src/store/postgres.js';
import type { Store } from '../src/store/store.js';
import { createSupervisor, type Supervisor } from '../src/supervisor/create.js';
import { UserDirectory } from '../src/supervisor/user-directory.js';
import { TransitionLog } from './helpers/fleet.js';
import { FrameClient } from './helpers/http-stack.js';
import { canReachPostgres, createTestDatabase } from './helpers/postgres.js';
import { captureLogger, fixture } from './mcp.harness.js';

const ADMIN_TOKEN = 'store-admin-token-0123456';
const VIEWER_TOKEN = 'store-viewer-token-0123456';
const CONFIG_USERS: HttpUser[] = [
  { name: 'root', role: 'admin', tokenHash: hashToken(ADMIN_TOKEN) },
];
const flaky = { command: process.execPath, args: [fixture('flaky.mjs')] };
const SERVERS = { alpha: { ...flaky, tags: ['blue'] }, beta: { ...flaky, tags: ['red'] } };
const logger = silentLogger();

/** A database of one kind: the spec a supervisor opens, and a store to look inside it. */
interface Target {
  spec: StoreSpec;
  store(): Store;
  dispose(): Promise<void>;
}

async function pgliteTarget(): Promise<Target> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'mcps-users-'));

  return {
    spec: { dataDir },
    store: () => new PgliteStore({ dataDir, logger }),
    dispose: () => rm(dataDir, { recursive: true, force: true }),
  };
}

async function postgresTarget(): Promise<Target> {
  const db = await createTestDatabase();

  return {
    spec: { databaseUrl: db.url },
    store: () => new PostgresStore({ databaseUrl: db.url, logger }),
    dispose: () => db.drop(),
  };
}

const reachable = await canReachPostgres();
const TARGETS: Array<[string, () => Promise<Target>]> = [['PGlite', pgliteTarget]];
if (reachable) TARGETS.push(['PostgreSQL', postgresTarget]);
else if (process.env.CI === 'true') {
  describe('users on PostgreSQL', () => {
    it('reaches PostgreSQL (required under CI)', () => {
      throw new Error('PostgreSQL is unreachable');
    });
  });
}

const clients: FrameClient[] = [];

afterEach(() => {
  for (const client of clients.splice(0)) client.ws.terminate();
});

function request(
  supervisor: Supervisor,
  method: string,
  route: string,
  token: string,
  body?: unknown,
): Promise<Response> {
  return fetch(`${supervisor.url ?? ''}${route}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

async function serverNames(supervisor: Supervisor, token: string): Promise<string[]> {
  const res = await request(supervisor, 'GET', '/api/servers', token);
  const body = (await res.json()) as { servers: Array<{ name: string }> };

  return body.servers.map((s) => s.name);
}

async function watch(supervisor: Supervisor, token: string): Promise<FrameClient> {
  const url = `${(supervisor.url ?? '').replace('http://', 'ws://')}/ws`;
  const client = new FrameClient(url, ['mcp-supervisor.v1', `bearer.${token}`]);
  clients.push(client);
  await client.opened();

  return client;
}

async function boot(
  spec: StoreSpec,
  options: Parameters<typeof createSupervisor>[0] = {},
): Promise<Supervisor> {
  const supervisor = await createSupervisor({
    servers: SERVERS,
    settings: { 'shutdown.graceMs': 300, 'health.intervalMs': 600_000 },
    store: spec,
    http: { port: 0, users: CONFIG_USERS },
    logger,
    ...options,
  });
  const log = new TransitionLog(supervisor);
  await log.reach('alpha', 'closed');
  await log.reach('beta', 'closed');

  return supervisor;
}

describe.each(TARGETS)('users in the store: %s', (_label, makeTarget) => {
  let target: Target;
  let supervisor: Supervisor;

  beforeAll(async () => {
    target = await makeTarget();
    supervisor = await boot(target.spec);
    const put = await request(supervisor, 'PUT', '/api/users/vic', ADMIN_TOKEN, {
      role: 'viewer',
      token: VIEWER_TOKEN,
      tags: ['blue'],
    });
    expect(put.status).toBe(201);
  });

  afterAll(async () => {
    await supervisor?.stop();
    await target?.dispose();
  });

  it('lets a viewer added through the API read only its visible servers', async () => {
    const hidden = await request(supervisor, 'GET', '/api/servers/beta', VIEWER_TOKEN);

    expect(await serverNames(supervisor, VIEWER_TOKEN)).toEqual(['alpha']);
    expect(hidden.status).toBe(404);
    expect(await serverNames(supervisor, ADMIN_TOKEN)).toEqual(['alpha', 'beta']);
  });

  it('streams to a viewer added through the API only its visible servers', async () => {
    const client = await watch(supervisor, VIEWER_TOKEN);
    const [hello, snapshot] = await client.take(2);

    expect(hello?.type).toBe('hello');
    expect((snapshot?.servers as Array<{ name: string }>).map((s) => s.name)).toEqual(['alpha']);
  });

  it('refuses a viewer added through the API at the admin routes', async () => {
    const res = await request(supervisor, 'GET', '/api/users', VIEWER_TOKEN);

    expect(res.status).toBe(403);
  });

  it('lists users with their source, never a token or its hash', async () => {
    const res = await request(supervisor, 'GET', '/api/users', ADMIN_TOKEN);
    const text = await res.text();

    expect(JSON.parse(text)).toEqual({
      users: [
        {
          name: 'root',
          role: 'admin',
          servers: null,
          tags: null,
          source: 'config',
          updatedAt: null,
        },
        expect.objectContaining({ name: 'vic', role: 'viewer', tags: ['blue'], source: 'api' }),
      ],
    });
    expect(text).not.toContain(VIEWER_TOKEN);
    expect(text).not.toContain(hashToken(VIEWER_TOKEN));
  });

  it('applies a changed visibility rule to the next request', async () => {
    const changed = await request(supervisor, 'PUT', '/api/users/eve', ADMIN_TOKEN, {
      role: 'viewer',
      token: 'store-eve-token-0123456789',
      servers: ['alpha'],
    });
    await request(supervisor, 'PUT', '/api/users/eve', ADMIN_TOKEN, {
      role: 'viewer',
      servers: ['beta'],
    });

    expect(changed.status).toBe(201);
    expect(await serverNames(supervisor, 'store-eve-token-0123456789')).toEqual(['beta']);
  });

  it('closes the stream of a deleted user with 1008 and refuses its token at once', async () => {
    const token = 'store-gone-token-0123456789';
    await request(supervisor, 'PUT', '/api/users/gone', ADMIN_TOKEN, { role: 'viewer', token });
    const client = await watch(supervisor, token);
    await client.take(2);

    const deleted = await request(supervisor, 'DELETE', '/api/users/gone', ADMIN_TOKEN);
    const after = await request(supervisor, 'GET', '/api/servers', token);

    expect(deleted.status).toBe(200);
    expect((await client.closed).code).toBe(1008);
    expect(after.status).toBe(401);
  });

  it('stores the token only as sha256:<hex>, and keeps users across a restart', async () => {
    await supervisor.stop();
    const store = target.store();
    await store.open();
    const rows = await store.users().finally(() => store.close());
    supervisor = await boot(target.spec);

    expect(rows.find((u) => u.name === 'vic')?.tokenHash).toBe(`sha256:${hashToken(VIEWER_TOKEN)}`);
    expect(JSON.stringify(rows)).not.toContain(VIEWER_TOKEN);
    expect(await serverNames(supervisor, VIEWER_TOKEN)).toEqual(['alpha']);
  });

  it('binds beyond loopback on stored users alone', async () => {
    await supervisor.stop();
    supervisor = await boot(target.spec, { http: { host: '0.0.0.0', port: 0 } });

    expect(supervisor.url).toMatch(/^http:\/\/0\.0\.0\.0:\d+$/);
  });

  it('lets a config user win over a stored user of its name, warning with the name', async () => {
    await supervisor.stop();
    const store = target.store();
    await store.open();
    await store
      .putUser({
        name: 'root',
        role: 'viewer',
        tokenHash: `sha256:${hashToken('store-shadow-token-0123')}`,
        servers: null,
        tags: null,
        updatedAt: Date.now(),
      })
      .finally(() => store.close());
    const captured = captureLogger();
    supervisor = await boot(target.spec, { logger: captured.logger });

    const stored = await request(supervisor, 'GET', '/api/servers', 'store-shadow-token-0123');
    const config = await request(supervisor, 'GET', '/api/users', ADMIN_TOKEN);

    expect(stored.status).toBe(401);
    expect(config.status).toBe(200);
    expect(captured.lines).toContainEqual(
      expect.objectContaining({
        level: 40,
        user: 'root',
        msg: 'stored user shadowed by the config file',
      }),
    );
  });
});

describe('PUT /api/users/:user', () => {
  let supervisor: Supervisor;

  beforeAll(async () => {
    supervisor = await createSupervisor({ http: { port: 0, users: CONFIG_USERS }, logger });
  });

  afterAll(async () => {
    await supervisor?.stop();
  });

  async function refusal(
    name: string,
    body: unknown,
  ): Promise<{ status: number; error: Record<string, unknown> }> {
    const res = await request(supervisor, 'PUT', `/api/users/${name}`, ADMIN_TOKEN, body);
    const answer = (await res.json()) as { error: Record<string, unknown> };

    return { status: res.status, error: answer.error };
  }

  it('refuses an unknown role with 400 naming the field role', async () => {
    const answer = await refusal('r1', { role: 'root', token: 'a-long-enough-token-0123' });

    expect(answer).toMatchObject({
      status: 400,
      error: { code: 'INVALID_REQUEST', field: 'role' },
    });
  });

  it('refuses a short token with 400 naming the field token, without echoing it', async () => {
    const answer = await refusal('t1', { role: 'viewer', token: 'short-secret' });

    expect(answer).toMatchObject({
      status: 400,
      error: { code: 'INVALID_REQUEST', field: 'token' },
    });
    expect(JSON.stringify(answer)).not.toContain('short-secret');
  });

  it('refuses a new user without a token with 400 naming the field token', async () => {
    const answer = await refusal('t2', { role: 'viewer' });

    expect(answer).toMatchObject({ status: 400, error: { field: 'token' } });
  });

  it('refuses a malformed sha256 token with 400 naming the field token', async () => {
    const answer = await refusal('t3', { role: 'viewer', token: 'sha256:abc' });

    expect(answer).toMatchObject({ status: 400, error: { field: 'token' } });
  });

  it('refuses visibility lists that are not arrays of strings, naming the field', async () => {
    const answer = await refusal('v1', { role: 'viewer', token: 'v1-token-0123456789', tags: 'x' });

    expect(answer).toMatchObject({ status: 400, error: { field: 'tags' } });
  });

  it('refuses an unknown field with 400 naming it', async () => {
    const answer = await refusal('u1', { role: 'viewer', token: 'u1-token-0123456789', x: 1 });

    expect(answer).toMatchObject({ status: 400, error: { field: 'x' } });
  });

  it('refuses changing a config user with 409 CONFLICT', async () => {
    const answer = await refusal('root', { role: 'admin', token: 'root-token-0123456789' });

    expect(answer).toMatchObject({ status: 409, error: { code: 'CONFLICT', user: 'root' } });
  });

  it('refuses the token of another user with 409 CONFLICT on the field token', async () => {
    const answer = await refusal('dup', { role: 'viewer', token: ADMIN_TOKEN });

    expect(answer).toMatchObject({ status: 409, error: { code: 'CONFLICT', field: 'token' } });
  });

  it('accepts a token given already hashed and authenticates its clear form', async () => {
    const token = 'prehashed-token-0123456789';
    const put = await request(supervisor, 'PUT', '/api/users/pre', ADMIN_TOKEN, {
      role: 'viewer',
      token: `sha256:${hashToken(token).toUpperCase()}`,
    });

    expect(put.status).toBe(201);
    expect((await request(supervisor, 'GET', '/api/servers', token)).status).toBe(200);
  });

  it('answers 404 NOT_FOUND for deleting a user that does not exist', async () => {
    const res = await request(supervisor, 'DELETE', '/api/users/nobody', ADMIN_TOKEN);

    expect(res.status).toBe(404);
  });
});

describe('users on an API without config users', () => {
  let supervisor: Supervisor;

  beforeAll(async () => {
    supervisor = await createSupervisor({ http: { port: 0 }, logger });
  });

  afterAll(async () => {
    await supervisor?.stop();
  });

  it('refuses a first user that is a viewer, which would leave no admin', async () => {
    const res = await request(supervisor, 'PUT', '/api/users/v', '', {
      role: 'viewer',
      token: 'first-viewer-token-0123',
    });

    expect(res.status).toBe(409);
    expect((await request(supervisor, 'GET', '/api/users', '')).status).toBe(200);
  });

  it('closes the open API once a first admin is added', async () => {
    const anonymous = await watch(supervisor, 'no-token-at-all');
    await anonymous.take(2);
    const put = await request(supervisor, 'PUT', '/api/users/first', '', {
      role: 'admin',
      token: 'first-admin-token-0123',
    });

    expect(put.status).toBe(201);
    expect((await anonymous.closed).code).toBe(1008);
    expect((await request(supervisor, 'GET', '/api/servers', '')).status).toBe(401);
    expect(
      (await request(supervisor, 'GET', '/api/servers', 'first-admin-token-0123')).status,
    ).toBe(200);
  });
});

describe('users beyond loopback', () => {
  it('refuses deleting the last user, which would open the API to the network', async () => {
    const directory = new UserDirectory({
      store: null,
      configUsers: [],
      logger,
      requireUsers: true,
    });
    await directory.put('only', { role: 'admin', token: 'only-admin-token-0123' });

    await expect(directory.remove('only')).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(directory.list().map((u) => u.name)).toEqual(['only']);
  });

  it('allows deleting the last user on loopback, leaving the API open', async () => {
    const directory = new UserDirectory({ store: null, configUsers: [], logger });
    await directory.put('only', { role: 'admin', token: 'only-admin-token-0123' });
    await directory.remove('only');

    expect(directory.authenticate(undefined).ok).toBe(true);
  });
});
