/**
 * The access matrix, generated from the route list and the frame-type list: every route is
 * tried by every kind of caller, every frame type is produced for a server a viewer may see
 * and one it may not. A route or a frame type without a case here fails the first tests.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { OPERATOR_EVENTS } from '../machines/vocabulary.js';
import { SERVER_FRAME_TYPES } from '../src/broadcast/frames.js';
import type { Settings } from '../src/config/settings.js';
import { createApp } from '../src/http/app.js';
import { hashToken, type HttpUser } from '../src/http/auth.js';
import { ROUTES, type RouteSpec } from '../src/http/routes.js';
import { silentLogger } from '../src/log.js';
import type { SupervisorApi } from '../src/supervisor/types.js';
import { UserDirectory, type UserAdminApi } from '../src/supervisor/user-directory.js';
import { FakeSupervisor } from './helpers/fake-supervisor.js';
import {
  FrameClient,
  rawRequest,
  startStack,
  type Frame,
  type Stack,
} from './helpers/http-stack.js';

const ADMIN_TOKEN = 'admin-token-0123456789';
const VIEWER_TOKEN = 'viewer-token-0123456789';
const USERS: HttpUser[] = [
  { name: 'root', role: 'admin', tokenHash: hashToken(ADMIN_TOKEN) },
  {
    name: 'watcher',
    role: 'viewer',
    tokenHash: hashToken(VIEWER_TOKEN),
    servers: ['alpha'],
    tags: ['blue'],
  },
];
/** alpha is visible by name, gamma by tag, beta not at all. */
const HIDDEN = 'beta';

interface Sample {
  method: string;
  path: string;
  body?: unknown;
}

/** One request per route; `server` fills `:name` (or the server filter of a list route). */
const SAMPLES: Record<string, (server: string) => Sample> = {
  'GET /healthz': () => ({ method: 'GET', path: '/healthz' }),
  'GET /api/servers': () => ({ method: 'GET', path: '/api/servers' }),
  'GET /api/servers/:name': (s) => ({ method: 'GET', path: `/api/servers/${s}` }),
  'PUT /api/servers/:name': (s) => ({
    method: 'PUT',
    path: `/api/servers/${s}`,
    body: { url: 'http://127.0.0.1:9/mcp' },
  }),
  'DELETE /api/servers/:name': (s) => ({ method: 'DELETE', path: `/api/servers/${s}` }),
  'POST /api/servers/:name/tools/:tool': (s) => ({
    method: 'POST',
    path: `/api/servers/${s}/tools/echo`,
    body: {},
  }),
  ...Object.fromEntries(
    OPERATOR_EVENTS.map((event) => [
      `POST /api/servers/:name/${event}`,
      (s: string): Sample => ({ method: 'POST', path: `/api/servers/${s}/${event}` }),
    ]),
  ),
  'GET /api/transitions': (s) => ({ method: 'GET', path: `/api/transitions?server=${s}` }),
  'GET /api/cache': () => ({ method: 'GET', path: '/api/cache' }),
  'DELETE /api/cache': (s) => ({ method: 'DELETE', path: `/api/cache?server=${s}` }),
  'GET /api/settings': () => ({ method: 'GET', path: '/api/settings' }),
  'GET /api/store': () => ({ method: 'GET', path: '/api/store' }),
  'PUT /api/settings': () => ({
    method: 'PUT',
    path: '/api/settings',
    body: { 'health.intervalMs': 60_000 },
  }),
  'GET /api/users': () => ({ method: 'GET', path: '/api/users' }),
  'PUT /api/users/:user': () => ({
    method: 'PUT',
    path: '/api/users/newcomer',
    body: { role: 'viewer', token: 'matrix-newcomer-token-0123' },
  }),
  'DELETE /api/users/:user': () => ({ method: 'DELETE', path: '/api/users/newcomer' }),
};

let api: FakeSupervisor;
let stack: Stack;

function fleet(settings: Partial<Settings> = {}): FakeSupervisor {
  const fake = new FakeSupervisor({ settings });
  fake.addServer('alpha');
  fake.addServer('beta', { tags: ['crimson'], stderrTail: 'beta says hi' });
  fake.addServer('gamma', { tags: ['blue'] });
  fake.emit('alpha', 'closed', 'connected');
  fake.emit('beta', 'closed', 'connected');
  fake.emit('gamma', 'closed', 'connected');

  return fake;
}

async function ask(sample: Sample, token?: string) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;

  return rawRequest(`${stack.url}${sample.path}`, {
    method: sample.method,
    headers,
    ...(sample.body === undefined ? {} : { body: JSON.stringify(sample.body) }),
  });
}

function keyOf(route: RouteSpec): string {
  return `${route.method} ${route.path}`;
}

describe('the route list', () => {
  it('lists every route the app serves', () => {
    // With an admin surface, so the store-backed routes are mounted too.
    const admin = {} as NonNullable<SupervisorApi['admin']>;
    const app = createApp(Object.assign(new FakeSupervisor(), { admin }), {
      logger: silentLogger(),
      userAdmin: {} as UserAdminApi,
    });
    const served = app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method} ${r.path}`);
    const listed = new Set(ROUTES.map(keyOf));

    expect(served.filter((key) => !listed.has(key))).toEqual([]);
  });

  it('has a matrix sample for every listed route', () => {
    const missing = ROUTES.map(keyOf).filter((key) => !(key in SAMPLES));

    expect(missing).toEqual([]);
  });
});

describe.each(ROUTES.map((route) => [keyOf(route), route] as const))('%s', (_key, route) => {
  const sample = SAMPLES[keyOf(route)] ?? (() => ({ method: route.method, path: route.path }));
  const named = route.path.includes(':name');

  beforeEach(async () => {
    api = fleet();
    // With the user routes mounted, so an admin gets a real answer from them.
    const userAdmin = new UserDirectory({
      store: null,
      configUsers: USERS,
      logger: silentLogger(),
    });
    stack = await startStack(api, { users: USERS, userAdmin });
  });

  afterEach(async () => {
    await stack.close();
  });

  it('answers a caller without a token as the route demands', async () => {
    const res = await ask(sample('alpha'));

    expect(res.status).toBe(route.access === 'open' ? 200 : 401);
  });

  it('lets an admin through', async () => {
    const res = await ask(sample('alpha'), ADMIN_TOKEN);

    expect([401, 403]).not.toContain(res.status);
  });

  if (route.access === 'admin') {
    it('refuses a viewer with 403 FORBIDDEN, whatever server it names', async () => {
      const shown = await ask(sample('alpha'), VIEWER_TOKEN);
      const hidden = await ask(sample(HIDDEN), VIEWER_TOKEN);

      expect([shown.status, hidden.status]).toEqual([403, 403]);
      expect(JSON.parse(hidden.body)).toMatchObject({ error: { code: 'FORBIDDEN' } });
      expect(api.controls).toEqual([]);
      expect(api.invalidations).toEqual([]);
    });

    return;
  }

  if (route.access === 'viewer') {
    it('answers a viewer about a server it sees', async () => {
      const byName = await ask(sample('alpha'), VIEWER_TOKEN);
      const byTag = await ask(sample('gamma'), VIEWER_TOKEN);

      expect([byName.status, byTag.status]).toEqual([200, 200]);
    });

    it('never shows a viewer a server outside its rule', async () => {
      const res = await ask(sample(HIDDEN), VIEWER_TOKEN);

      if (named) {
        const nobody = await ask(sample('nobody'), VIEWER_TOKEN);
        expect(res.status).toBe(404);
        expect(res.body).toBe(nobody.body.replaceAll('nobody', HIDDEN));
      } else {
        expect(res.body).not.toContain(HIDDEN);
        expect(res.body).not.toContain('crimson');
      }
    });
  }
});

describe('history for a viewer', () => {
  beforeEach(async () => {
    api = fleet();
    stack = await startStack(api, { users: USERS });
  });

  afterEach(async () => {
    await stack.close();
  });

  it('fills a page with visible transitions past hidden ones', async () => {
    for (let i = 0; i < 5; i += 1) api.emit('beta', 'open', 'probe_failed');
    api.emit('alpha', 'open', 'probe_failed');

    const res = await ask({ method: 'GET', path: '/api/transitions?limit=2' }, VIEWER_TOKEN);
    const body = JSON.parse(res.body) as { transitions: Array<{ server: string; seq: number }> };

    expect(body.transitions.map((t) => [t.server, t.seq])).toEqual([
      ['alpha', 1],
      ['gamma', 3],
    ]);
  });
});

// --- frames ------------------------------------------------------------------------------

interface FrameWorld {
  api: FakeSupervisor;
  admin: FrameClient;
  viewer: FrameClient;
}

/** Frames of a type that a client got, after the first two (hello, snapshot). */
async function drain(client: FrameClient, type: string): Promise<Frame[]> {
  // A ping round trip: every frame sent before the pong has arrived once it has.
  client.send({ type: 'ping' });
  const out: Frame[] = [];
  for (;;) {
    const frame = await client.next();
    if (frame.type === 'pong') return out;
    if (frame.type === type) out.push(frame);
  }
}

/** For each frame type: produce it for a visible and a hidden server, then check the viewer. */
const FRAME_CASES: Record<string, (world: FrameWorld) => Promise<void>> = {
  hello: async ({ viewer }) => {
    const hello = await connectAs(VIEWER_TOKEN);
    const [first] = await hello.take(1);

    expect(first).toMatchObject({ type: 'hello', seq: 3 });
    expect(JSON.stringify(first)).not.toContain(HIDDEN);
    expect(viewer.ws.protocol).toBe('mcp-supervisor.v1');
  },
  snapshot: async ({ viewer }) => {
    viewer.send({ type: 'subscribe', servers: ['alpha', HIDDEN], tags: ['crimson', 'blue'] });
    const snapshot = await viewer.next();
    const names = (snapshot.servers as Array<{ name: string }>).map((s) => s.name);

    expect(names).toEqual(['alpha', 'gamma']);
  },
  transition: async ({ api: fake, admin, viewer }) => {
    fake.emit(HIDDEN, 'open', 'probe_failed');
    fake.emit('gamma', 'open', 'probe_failed');
    const seen = await drain(viewer, 'transition');
    const replay = await connectAs(VIEWER_TOKEN, '?after=0');
    const replayed = await replay.take(4);

    expect(seen.map((f) => [f.server, f.seq])).toEqual([['gamma', 5]]);
    expect((await drain(admin, 'transition')).map((f) => f.seq)).toEqual([4, 5]);
    expect(replayed.slice(1).map((f) => f.server)).toEqual(['alpha', 'gamma', 'gamma']);
  },
  server: async ({ api: fake, admin, viewer }) => {
    fake.update(HIDDEN, { tools: 7 });
    fake.update('alpha', { tools: 2 });
    const seen = await drain(viewer, 'server');

    expect(seen).toEqual([expect.objectContaining({ type: 'server', server: 'alpha', tools: 2 })]);
    expect((await drain(admin, 'server')).map((f) => f.server)).toEqual([HIDDEN, 'alpha']);
  },
  cache: async ({ api: fake, admin, viewer }) => {
    fake.cacheHits = 10;
    vi.advanceTimersByTime(1_000);

    expect(await drain(viewer, 'cache')).toEqual([]);
    expect(await drain(admin, 'cache')).toEqual([
      expect.objectContaining({
        type: 'cache',
        seq: 3,
        stats: expect.objectContaining({ hits: 10 }),
      }),
    ]);
  },
  pong: async ({ viewer }) => {
    viewer.send({ type: 'ping' });

    expect(await viewer.next()).toEqual({ type: 'pong', seq: 3 });
  },
  lagging: async ({ api: fake, admin, viewer }) => {
    const bulk = 'x'.repeat(65_536);
    // In one tick: these in-process clients cannot read meanwhile, so send buffers grow.
    for (let i = 0; i < 200; i += 1) fake.emit(HIDDEN, 'closed', 'connected', { bulk });

    expect((await admin.closed).code).toBe(1013);
    expect((await drain(viewer, 'lagging')).length).toBe(0);
  },
  error: async ({ viewer }) => {
    viewer.send({ type: 'subscribe', servers: [HIDDEN, 42] });
    const error = await viewer.next();

    expect(error).toMatchObject({ type: 'error', code: 'INVALID_REQUEST' });
    expect(JSON.stringify(error)).not.toContain(HIDDEN);
  },
};

const frameClients: FrameClient[] = [];

async function connectAs(token: string, query = ''): Promise<FrameClient> {
  const client = new FrameClient(`${stack.wsUrl}${query}`, [
    'mcp-supervisor.v1',
    `bearer.${token}`,
  ]);
  frameClients.push(client);
  await client.opened();

  return client;
}

describe('the frame list', () => {
  it('has a visibility case for every server frame type', () => {
    expect(Object.keys(FRAME_CASES).sort()).toEqual([...SERVER_FRAME_TYPES].sort());
  });
});

describe.each(SERVER_FRAME_TYPES.map((type) => [type]))('%s frames', (type) => {
  beforeEach(async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    api = fleet({ 'stream.maxBufferedBytes': 4096 });
    stack = await startStack(api, { users: USERS });
  });

  afterEach(async () => {
    for (const client of frameClients.splice(0)) client.ws.terminate();
    await stack.close();
    vi.useRealTimers();
  });

  it('reach a viewer only for servers it sees', async () => {
    const admin = await connectAs(ADMIN_TOKEN);
    const viewer = await connectAs(VIEWER_TOKEN);
    await admin.take(2);
    const [, snapshot] = await viewer.take(2);

    expect((snapshot?.servers as Array<{ name: string }>).map((s) => s.name)).toEqual([
      'alpha',
      'gamma',
    ]);
    await FRAME_CASES[type]?.({ api, admin, viewer });
  });
});
