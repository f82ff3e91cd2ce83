/**
 * How the stream behaves under pressure and abuse: a peer that stopped reading, a peer that
 * stopped answering pings, the cache frame rate, and arbitrary client frames.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';

import {
  CLIENT_FRAME_TYPES,
  parseClientFrame,
  SERVER_FRAME_TYPES,
} from '../src/broadcast/frames.js';
import { StreamServer } from '../src/broadcast/stream.js';
import type { Settings } from '../src/config/settings.js';
import { ERROR_CODES } from '../src/errors.js';
import { createApp } from '../src/http/app.js';
import { startHttpServer } from '../src/http/server.js';
import { FakeSupervisor } from './helpers/fake-supervisor.js';
import { FrameClient, type Frame } from './helpers/http-stack.js';
import { captureLogger } from './mcp.harness.js';

interface World {
  api: FakeSupervisor;
  stream: StreamServer;
  port: number;
  lines: Record<string, unknown>[];
  close(): Promise<void>;
}

let world: World | undefined;
const clients: FrameClient[] = [];
const sockets: Socket[] = [];

async function start(settings: Partial<Settings> = {}): Promise<World> {
  const { logger, lines } = captureLogger();
  const api = new FakeSupervisor({ settings });
  api.addServer('alpha');
  const stream = new StreamServer({ api, logger });
  const http = await startHttpServer({
    app: createApp(api, { logger }),
    host: '127.0.0.1',
    port: 0,
    logger,
    onUpgrade: (req, socket, head) => stream.handleUpgrade(req, socket, head),
  });

  world = {
    api,
    stream,
    port: http.port,
    lines,
    close: async () => {
      await stream.close();
      await http.close();
    },
  };
  return world;
}

async function client(options: { autoPong?: boolean } = {}): Promise<FrameClient> {
  const made = new FrameClient(`ws://127.0.0.1:${world?.port ?? 0}/ws`, undefined, options);
  clients.push(made);
  await made.opened();
  await made.take(2);

  return made;
}

/** A peer that completes the handshake and then never reads another byte. */
function stalledPeer(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    sockets.push(socket);
    socket.once('error', reject);
    socket.once('data', (chunk: Buffer) => {
      if (!chunk.toString('latin1').startsWith('HTTP/1.1 101')) reject(new Error('no upgrade'));
      socket.pause();
      resolve(socket);
    });
    socket.write(
      'GET /ws HTTP/1.1\r\n' +
        `Host: 127.0.0.1:${port}\r\n` +
        'Upgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n` +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mcp-supervisor.v1\r\n\r\n',
    );
  });
}

/** Every frame a client got until the pong answering a ping sent now. */
async function untilPong(peer: FrameClient): Promise<Frame[]> {
  peer.send({ type: 'ping' });
  const out: Frame[] = [];
  for (;;) {
    const frame = await peer.next();
    if (frame.type === 'pong') return out;
    out.push(frame);
  }
}

function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

afterEach(async () => {
  for (const made of clients.splice(0)) made.ws.terminate();
  for (const socket of sockets.splice(0)) socket.destroy();
  await world?.close();
  world = undefined;
  vi.useRealTimers();
});

describe('a peer that stopped reading', () => {
  async function floodUntilLagging(w: World): Promise<number> {
    const bulk = 'x'.repeat(16_384);
    for (let i = 0; i < 4_000 && !w.lines.some((l) => l.msg === 'subscriber lagging'); i += 1) {
      w.api.emit('alpha', 'closed', 'connected', { bulk });
      await tick();
    }

    const line = w.lines.find((l) => l.msg === 'subscriber lagging');
    expect(line).toBeDefined();
    return line?.time as number;
  }

  it('is terminated within 1 s of lagging and its buffered bytes are freed', async () => {
    const w = await start({ 'stream.maxBufferedBytes': 65_536 });
    await stalledPeer(w.port);
    await client();

    const laggedAt = await floodUntilLagging(w);
    while (w.stream.size > 1) await tick();
    const goneAfterMs = Date.now() - laggedAt;

    expect(goneAfterMs).toBeLessThan(1_000);
    expect(w.stream.bufferedBytes).toBeLessThan(65_536);
  });

  it('costs a healthy subscriber beside it no frame', async () => {
    const w = await start({ 'stream.maxBufferedBytes': 65_536 });
    await stalledPeer(w.port);
    const healthy = await client();

    await floodUntilLagging(w);
    for (let i = 0; i < 5; i += 1) w.api.emit('alpha', 'open', 'probe_failed');
    const frames = await untilPong(healthy);
    const seqs = frames.filter((f) => f.type === 'transition').map((f) => f.seq);

    expect(seqs).toEqual(w.api.transitions.map((t) => t.seq));
    expect(healthy.ws.readyState).toBe(healthy.ws.OPEN);
  });
});

describe('keep-alive', () => {
  it('terminates and removes a peer that misses its pong', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const w = await start({ 'stream.pingIntervalMs': 30_000 });
    const silent = await client({ autoPong: false });
    const pinged = new Promise<void>((resolve) => silent.ws.once('ping', () => resolve()));

    vi.advanceTimersByTime(30_000);
    await pinged;
    vi.advanceTimersByTime(30_000);

    expect((await silent.closed).code).toBe(1006);
    expect(w.stream.size).toBe(0);
  });

  it('keeps a peer that answers every ping', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const w = await start({ 'stream.pingIntervalMs': 30_000 });
    const live = await client();

    for (let i = 0; i < 5; i += 1) {
      const pinged = new Promise<void>((resolve) => live.ws.once('ping', () => resolve()));
      vi.advanceTimersByTime(30_000);
      await pinged;
      // The pong went out before this ping frame, so the server has it once pong comes back.
      await untilPong(live);
    }

    expect(live.ws.readyState).toBe(live.ws.OPEN);
    expect(w.stream.size).toBe(1);
  });

  it('clears its timers on close', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const w = await start();

    expect(vi.getTimerCount()).toBeGreaterThan(0);
    await w.stream.close();

    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('cache frames', () => {
  it('go out at most once a second, and only when the counters changed', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const w = await start();
    const peer = await client();

    vi.advanceTimersByTime(1_000);
    const first = await untilPong(peer);
    w.api.cacheHits = 9;
    vi.advanceTimersByTime(999);
    const early = await untilPong(peer);
    vi.advanceTimersByTime(1);
    const changed = await untilPong(peer);
    vi.advanceTimersByTime(5_000);
    const unchanged = await untilPong(peer);

    expect(first.map((f) => f.type)).toEqual(['cache']);
    expect(early).toEqual([]);
    expect(changed).toEqual([
      { type: 'cache', seq: 0, stats: expect.objectContaining({ hits: 9 }) },
    ]);
    expect(unchanged).toEqual([]);
  });
});

describe('arbitrary client frames', () => {
  const known = new Set<string>(SERVER_FRAME_TYPES);
  const codes = new Set<string>(ERROR_CODES);
  const shaped = fc.record(
    { type: fc.constantFrom(...CLIENT_FRAME_TYPES, 'dance', ''), after: fc.anything() },
    { requiredKeys: ['type'] },
  );
  const anyFrame = fc.oneof(
    fc.string(),
    fc.json(),
    shaped.map((frame) => JSON.stringify(frame) ?? 'null'),
    fc
      .record({ type: fc.constant('subscribe'), servers: fc.anything(), tags: fc.anything() })
      .map((frame) => JSON.stringify(frame) ?? 'null'),
  );

  it('are read without throwing, into a frame or a problem', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json()), (text) => {
        const frame = parseClientFrame(text);
        expect('problem' in frame || CLIENT_FRAME_TYPES.includes(frame.type)).toBe(true);
      }),
    );
  });

  it('never crash the stream or close the connection', async () => {
    const w = await start();
    w.api.emit('alpha', 'closed', 'connected');
    const peer = await client();

    await fc.assert(
      fc.asyncProperty(anyFrame, async (text) => {
        peer.send(text);
        const answers = await untilPong(peer);

        for (const frame of answers) {
          expect(known.has(frame.type)).toBe(true);
          if (frame.type === 'error') expect(codes.has(String(frame.code))).toBe(true);
        }
      }),
      { numRuns: 300 },
    );

    expect(peer.ws.readyState).toBe(peer.ws.OPEN);
    expect(w.stream.size).toBe(1);
  });

  it('answers a binary frame with an error frame', async () => {
    await start();
    const peer = await client();

    peer.ws.send(Buffer.from([0xde, 0xad, 0xbe, 0xef]));

    expect(await peer.next()).toMatchObject({ type: 'error', code: 'INVALID_REQUEST' });
  });
});
