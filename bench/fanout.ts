/**
 * Fan-out: many WebSocket subscribers on loopback and a burst of transitions, through our
 * StreamServer against a raw `ws` broadcast loop of the same frame texts, in the same run,
 * permessage-deflate off on both. Reports delivery latency p50/p99 and CPU per delivered
 * frame; the ratio is our CPU per frame over the raw loop's.
 */
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';

import { WebSocket, WebSocketServer } from 'ws';

import { encodeFrame, transitionFrame } from '../src/broadcast/frames.js';
import { StreamServer } from '../src/broadcast/stream.js';
import { startHttpServer } from '../src/http/server.js';
import { createApp } from '../src/http/app.js';
import { silentLogger } from '../src/log.js';
import { FakeSupervisor } from '../test/helpers/fake-supervisor.js';
import type { BenchResult } from './report.js';

export interface FanoutBenchOptions {
  /** Connected subscribers. Default 1000. */
  subscribers?: number;
  /** Transitions per burst. Default 50. */
  burst?: number;
  /** Interleaved measuring rounds; medians are reported. Default 3. */
  rounds?: number;
}

/** Our stream may cost this much more than a bare broadcast loop (DESIGN target). */
const MAX_RATIO = 1.3;

interface Round {
  latenciesMs: number[];
  cpuMicros: number;
  delivered: number;
}

interface Side {
  url: string;
  /** Sends one burst; stamps each frame's seq with its send time. */
  burst(count: number, sentAt: Map<number, number>): void;
  close(): Promise<void>;
}

/** Runs the fan-out bench; `npm run bench` calls it as `{ name: 'fanout', run: benchFanout }`. */
export async function benchFanout(options: FanoutBenchOptions = {}): Promise<BenchResult> {
  const subscribers = options.subscribers ?? 1000;
  const burst = options.burst ?? 50;
  const rounds = options.rounds ?? 3;
  const ours = await oursSide();
  const raw = await rawSide();
  const results = { ours: [] as Round[], raw: [] as Round[] };

  try {
    const oursClients = await connectAll(ours.url, subscribers, true);
    const rawClients = await connectAll(raw.url, subscribers, false);

    await measure(ours, oursClients, burst);
    await measure(raw, rawClients, burst);
    for (let i = 0; i < rounds; i += 1) {
      results.ours.push(await measure(ours, oursClients, burst));
      results.raw.push(await measure(raw, rawClients, burst));
    }

    for (const ws of [...oursClients, ...rawClients]) ws.terminate();
  } finally {
    await ours.close();
    await raw.close();
  }

  return report(results, subscribers, burst);
}

function report(results: { ours: Round[]; raw: Round[] }, subscribers: number, burst: number) {
  const expected = subscribers * burst;
  const cpu = (r: Round[]): number => median(r.map((x) => x.cpuMicros / x.delivered));
  const pct = (r: Round[], q: number): number => median(r.map((x) => percentile(x.latenciesMs, q)));
  const complete = [...results.ours, ...results.raw].every((r) => r.delivered === expected);
  const ratio = cpu(results.ours) / cpu(results.raw);

  return {
    name: `fanout: ${subscribers} subscribers, bursts of ${burst} transitions`,
    rows: [
      { label: 'stream p50 latency', value: pct(results.ours, 0.5), unit: 'ms' },
      { label: 'stream p99 latency', value: pct(results.ours, 0.99), unit: 'ms' },
      { label: 'raw ws p50 latency', value: pct(results.raw, 0.5), unit: 'ms' },
      { label: 'raw ws p99 latency', value: pct(results.raw, 0.99), unit: 'ms' },
      { label: 'stream CPU per frame', value: cpu(results.ours), unit: 'µs' },
      { label: 'raw ws CPU per frame', value: cpu(results.raw), unit: 'µs' },
      { label: 'every frame delivered', value: complete ? 1 : 0, unit: '(1 = yes)' },
    ],
    ratio,
    target: `ratio <= ${MAX_RATIO}, every frame delivered`,
    pass: complete && ratio <= MAX_RATIO,
  } satisfies BenchResult;
}

async function oursSide(): Promise<Side> {
  const logger = silentLogger();
  const api = new FakeSupervisor();
  api.addServer('bench');
  const stream = new StreamServer({ api, logger });
  const http = await startHttpServer({
    app: createApp(api, { logger }),
    host: '127.0.0.1',
    port: 0,
    logger,
    onUpgrade: (req, socket, head) => stream.handleUpgrade(req, socket, head),
  });

  return {
    url: `ws://127.0.0.1:${http.port}/ws`,
    burst: (count, sentAt) => {
      for (let i = 0; i < count; i += 1) {
        sentAt.set(api.seq() + 1, performance.now());
        api.emit('bench', i % 2 === 0 ? 'open' : 'closed', 'probe_failed');
      }
    },
    close: async () => {
      await stream.close();
      await http.close();
    },
  };
}

async function rawSide(): Promise<Side> {
  const server: Server = createServer();
  const wss = new WebSocketServer({ server, perMessageDeflate: false });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const clients = new Set<WebSocket>();
  let seq = 0;

  wss.on('connection', (ws) => {
    clients.add(ws);
    ws.on('close', () => clients.delete(ws));
  });

  return {
    url: `ws://127.0.0.1:${port}`,
    burst: (count, sentAt) => {
      for (let i = 0; i < count; i += 1) {
        seq += 1;
        sentAt.set(seq, performance.now());
        const text = encodeFrame(transitionFrame(sampleTransition(seq, i)));
        for (const ws of clients) ws.send(text);
      }
    },
    close: async () => {
      for (const ws of clients) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The same shape of transition the fake supervisor emits. */
function sampleTransition(seq: number, i: number) {
  return {
    seq,
    server: 'bench',
    from: i % 2 === 0 ? ('closed' as const) : ('open' as const),
    to: i % 2 === 0 ? ('open' as const) : ('closed' as const),
    reason: 'probe_failed' as const,
    at: Date.UTC(2024, 0, 1) + seq * 1000,
    detail: {},
  };
}

async function connectAll(url: string, count: number, stream: boolean): Promise<WebSocket[]> {
  const out: WebSocket[] = [];
  const batch = 100;

  for (let i = 0; i < count; i += batch) {
    const opened = Array.from({ length: Math.min(batch, count - i) }, () => {
      const ws = new WebSocket(url, stream ? ['mcp-supervisor.v1'] : [], {
        perMessageDeflate: false,
      });
      out.push(ws);
      return firstFrames(ws, stream ? 2 : 0);
    });
    await Promise.all(opened);
  }

  return out;
}

/** Resolves once the socket is open and has received `count` frames (hello, snapshot). */
function firstFrames(ws: WebSocket, count: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = 0;
    ws.once('error', reject);
    ws.once('open', () => {
      if (count === 0) resolve();
    });
    const onMessage = (): void => {
      seen += 1;
      if (seen === count) {
        ws.off('message', onMessage);
        resolve();
      }
    };
    if (count > 0) ws.on('message', onMessage);
  });
}

async function measure(side: Side, clients: WebSocket[], burst: number): Promise<Round> {
  const sentAt = new Map<number, number>();
  const latenciesMs: number[] = [];
  const expected = clients.length * burst;
  let delivered = 0;

  const done = new Promise<void>((resolve) => {
    const onMessage = (data: WebSocket.RawData): void => {
      const frame = JSON.parse(String(data)) as { seq: number };
      latenciesMs.push(performance.now() - (sentAt.get(frame.seq) ?? 0));
      delivered += 1;
      if (delivered === expected) resolve();
    };
    for (const ws of clients) ws.on('message', onMessage);
  });

  const before = process.cpuUsage();
  side.burst(burst, sentAt);
  await done;
  const used = process.cpuUsage(before);

  for (const ws of clients) ws.removeAllListeners('message');
  return { latenciesMs, cpuMicros: used.user + used.system, delivered };
}

function percentile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}
