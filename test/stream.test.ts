import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';

import type { Settings } from '../src/config/settings.js';
import { hashToken } from '../src/http/auth.js';
import type { AppOptions } from '../src/http/app.js';
import { FakeSupervisor } from './helpers/fake-supervisor.js';
import { FrameClient, startStack, type Stack } from './helpers/http-stack.js';

let api: FakeSupervisor;
let stack: Stack;
const clients: FrameClient[] = [];

async function setup(
  settings: Partial<Settings> = {},
  options: Partial<AppOptions> = {},
): Promise<void> {
  api = new FakeSupervisor({ settings });
  api.addServer('alpha');
  api.addServer('beta');
  stack = await startStack(api, options);
}

async function connect(query = '', protocols?: string[], options = {}): Promise<FrameClient> {
  const client = new FrameClient(`${stack.wsUrl}${query}`, protocols, options);
  clients.push(client);
  await client.opened();

  return client;
}

afterEach(async () => {
  await stack.close();
  for (const client of clients.splice(0)) client.ws.terminate();
});

describe('stream frames', () => {
  it('sends hello, then a snapshot, then transitions in seq order', async () => {
    await setup();
    api.emit('alpha', 'closed', 'connected');
    const client = await connect();

    const [hello, snapshot] = await client.take(2);
    api.emit('beta', 'closed', 'connected');
    api.emit('alpha', 'open', 'process_exited', { exitCode: 1 });
    const live = await client.take(2);

    expect(hello).toEqual({ type: 'hello', protocol: 'mcp-supervisor.v1', seq: 1 });
    expect(snapshot).toMatchObject({ type: 'snapshot', seq: 1 });
    expect(live.map((f) => [f.type, f.seq])).toEqual([
      ['transition', 2],
      ['transition', 3],
    ]);
  });

  it('shows snapshot servers with ISO times', async () => {
    await setup();
    const client = await connect();

    const [, snapshot] = await client.take(2);
    const servers = snapshot?.servers as Array<Record<string, unknown>>;

    expect(servers.map((s) => s.name)).toEqual(['alpha', 'beta']);
    expect(servers[0]?.since).toBe('2024-01-01T00:00:00.000Z');
  });

  it('sends a transition frame with every field and an ISO time', async () => {
    await setup();
    const client = await connect();
    await client.take(2);

    api.emit('alpha', 'closed', 'connected', { message: 'up' });

    expect(await client.next()).toEqual({
      type: 'transition',
      seq: 1,
      server: 'alpha',
      from: 'connecting',
      to: 'closed',
      reason: 'connected',
      at: '2024-01-01T00:00:01.000Z',
      detail: { message: 'up' },
    });
  });

  it('sends the same frame text to every subscriber', async () => {
    await setup();
    const texts: string[] = [];
    const first = await connect();
    const second = await connect();
    for (const client of [first, second]) {
      client.ws.on('message', (data) => texts.push(String(data)));
    }
    await first.take(2);
    await second.take(2);
    texts.length = 0;

    api.emit('alpha', 'closed', 'connected');
    await Promise.all([first.next(), second.next()]);

    expect(texts).toHaveLength(2);
    expect(texts[0]).toBe(texts[1]);
  });

  it('selects the mcp-supervisor.v1 subprotocol', async () => {
    await setup();
    const client = await connect();

    expect(client.ws.protocol).toBe('mcp-supervisor.v1');
  });
});

describe('resume', () => {
  async function withHistory(): Promise<void> {
    await setup();
    api.emit('alpha', 'closed', 'connected');
    api.emit('beta', 'closed', 'connected');
    api.emit('alpha', 'open', 'process_exited');
    api.emit('alpha', 'halfOpen', 'backoff_elapsed');
  }

  it('replays from memory exactly the transitions after `after`', async () => {
    await withHistory();
    const client = await connect('?after=2');

    const frames = await client.take(3);
    api.emit('alpha', 'closed', 'trial_succeeded');
    const live = await client.next();

    expect(frames.map((f) => [f.type, f.seq])).toEqual([
      ['hello', 4],
      ['transition', 3],
      ['transition', 4],
    ]);
    expect(live.seq).toBe(5);
    expect(api.historyCalls).toBe(0);
  });

  it('replays from history when memory no longer reaches', async () => {
    await withHistory();
    api.memoryFloor = 3;
    const client = await connect('?after=1');

    const frames = await client.take(4);

    expect(frames.map((f) => f.seq)).toEqual([4, 2, 3, 4]);
    expect(frames.slice(1).every((f) => f.type === 'transition')).toBe(true);
    expect(api.historyCalls).toBe(1);
  });

  it('keeps transitions that arrive during a history read in order after the replay', async () => {
    await withHistory();
    api.memoryFloor = 3;
    api.beforeHistory = async () => {
      api.emit('beta', 'open', 'connection_lost');
      api.emit('beta', 'halfOpen', 'backoff_elapsed');
    };
    const client = await connect('?after=2');

    const frames = await client.take(5);

    expect(frames.map((f) => f.seq)).toEqual([4, 3, 4, 5, 6]);
  });

  it('sends a reset snapshot when history has a hole', async () => {
    await withHistory();
    api.memoryFloor = 3;
    api.lostFromHistory.add(3);
    const client = await connect('?after=1');

    const [hello, snapshot] = await client.take(2);
    api.emit('alpha', 'closed', 'trial_succeeded');

    expect(hello?.type).toBe('hello');
    expect(snapshot).toMatchObject({ type: 'snapshot', seq: 4, reset: true });
    expect((await client.next()).seq).toBe(5);
  });

  it('sends a reset snapshot for an `after` beyond the current seq', async () => {
    await withHistory();
    const client = await connect('?after=99');

    const [, snapshot] = await client.take(2);

    expect(snapshot).toMatchObject({ type: 'snapshot', seq: 4, reset: true });
  });

  it('replays on a resume frame from an open connection', async () => {
    await withHistory();
    const client = await connect();
    await client.take(2);

    client.send({ type: 'resume', after: 3 });

    expect(await client.next()).toMatchObject({ type: 'transition', seq: 4 });
  });
});

describe('narrowing', () => {
  it('sends only the servers named in servers=', async () => {
    await setup();
    const client = await connect('?servers=beta');

    const [, snapshot] = await client.take(2);
    api.emit('alpha', 'closed', 'connected');
    api.emit('beta', 'closed', 'connected');
    const next = await client.next();

    expect((snapshot?.servers as Array<{ name: string }>).map((s) => s.name)).toEqual(['beta']);
    expect(next).toMatchObject({ server: 'beta', seq: 2 });
  });

  it('narrows replays to the watched servers', async () => {
    await setup();
    api.emit('alpha', 'closed', 'connected');
    api.emit('beta', 'closed', 'connected');
    const client = await connect('?after=0&servers=beta');

    const [, replayed] = await client.take(2);

    expect(replayed).toMatchObject({ server: 'beta', seq: 2 });
  });

  it('answers subscribe with a snapshot of the new selection', async () => {
    await setup();
    const client = await connect();
    await client.take(2);

    client.send({ type: 'subscribe', servers: ['alpha'] });
    const snapshot = await client.next();
    api.emit('beta', 'closed', 'connected');
    api.emit('alpha', 'closed', 'connected');

    expect((snapshot.servers as Array<{ name: string }>).map((s) => s.name)).toEqual(['alpha']);
    expect(await client.next()).toMatchObject({ server: 'alpha', seq: 2 });
  });
});

describe('client frames', () => {
  it('answers ping with pong and the current seq', async () => {
    await setup();
    api.emit('alpha', 'closed', 'connected');
    const client = await connect();
    await client.take(2);

    client.send({ type: 'ping' });

    expect(await client.next()).toEqual({ type: 'pong', seq: 1 });
  });

  it.each(['not json', '[]', '{"type":"dance"}', '{"type":"resume","after":-1}'])(
    'answers the bad frame %s with an error frame and stays connected',
    async (text) => {
      await setup();
      const client = await connect();
      await client.take(2);

      client.send(text);
      const error = await client.next();
      client.send({ type: 'ping' });

      expect(error).toMatchObject({ type: 'error', code: 'INVALID_REQUEST' });
      expect(await client.next()).toMatchObject({ type: 'pong' });
    },
  );

  it('closes with 1009 on a frame larger than stream.maxPayloadBytes', async () => {
    await setup({ 'stream.maxPayloadBytes': 1024 });
    const client = await connect();
    await client.take(2);

    client.send({ type: 'ping', pad: 'x'.repeat(2048) });

    expect((await client.closed).code).toBe(1009);
  });
});

describe('connection lifecycle', () => {
  it('closes every client with 1001 on close()', async () => {
    await setup();
    const first = await connect();
    const second = await connect();

    await stack.stream.close();

    expect((await first.closed).code).toBe(1001);
    expect((await second.closed).code).toBe(1001);
    expect(api.listenerCount).toBe(0);
  });

  it('terminates a peer that does not answer pings', async () => {
    await setup({ 'stream.pingIntervalMs': 20 });
    const client = await connect('', undefined, { autoPong: false });

    const { code } = await client.closed;

    expect(code).toBe(1006);
    expect(stack.stream.size).toBe(0);
  });

  it('keeps a peer that answers pings', async () => {
    await setup({ 'stream.pingIntervalMs': 20 });
    const client = await connect();
    let pings = 0;
    const thirdPing = new Promise<void>((resolve) => {
      client.ws.on('ping', () => {
        pings += 1;
        if (pings === 3) resolve();
      });
    });

    await thirdPing;

    expect(client.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('sends lagging and closes with 1013 once a peer is over its send budget', async () => {
    await setup({ 'stream.maxBufferedBytes': 1024 });
    const client = await connect();
    await client.take(2);
    const bulk = 'x'.repeat(65_536);

    // Emitted in one tick: the client (same process) cannot read, so the send buffer grows.
    for (let i = 0; i < 400; i += 1) api.emit('alpha', 'closed', 'connected', { bulk });
    const { code } = await client.closed;
    const frames = await client.take(client.pending);
    const last = frames.at(-1);
    const sent = frames.slice(0, -1);

    expect(code).toBe(1013);
    expect(last?.type).toBe('lagging');
    expect(sent.length).toBeLessThan(400);
    expect(sent.map((f) => f.seq)).toEqual(sent.map((_, i) => i + 1));
  });

  it('refuses an upgrade from a foreign Host with 403', async () => {
    await setup();
    const ws = new WebSocket(stack.wsUrl, ['mcp-supervisor.v1'], {
      headers: { host: `evil.example:${stack.port}` },
    });

    const status = await new Promise<number>((resolve) => {
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('error', () => undefined);
    });

    expect(status).toBe(403);
  });

  it('refuses an upgrade on another path with 404', async () => {
    await setup();
    const ws = new WebSocket(`ws://127.0.0.1:${stack.port}/elsewhere`);

    const status = await new Promise<number>((resolve) => {
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('error', () => undefined);
    });

    expect(status).toBe(404);
  });
});

describe('stream auth', () => {
  const token = 'stream-token-0123';
  const users = [{ name: 'ops', tokenHash: hashToken(token) }];

  it('closes with 1008 without a token when users are configured', async () => {
    await setup({}, { users });
    const client = await connect();

    expect((await client.closed).code).toBe(1008);
  });

  it('accepts a bearer.<token> subprotocol and selects mcp-supervisor.v1', async () => {
    await setup({}, { users });
    const client = await connect('', ['mcp-supervisor.v1', `bearer.${token}`]);

    const hello = await client.next();

    expect(client.ws.protocol).toBe('mcp-supervisor.v1');
    expect(hello.type).toBe('hello');
  });

  it('accepts an Authorization header', async () => {
    await setup({}, { users });
    const client = await connect('', undefined, { headers: { authorization: `Bearer ${token}` } });

    expect((await client.next()).type).toBe('hello');
  });
});
