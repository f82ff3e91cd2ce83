/**
 * Starts the real HTTP server and stream on 127.0.0.1:0 around a FakeSupervisor, and a few
 * clients for the tests: raw HTTP requests with any headers, and a frame-queue WebSocket.
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';

import { WebSocket, type ClientOptions } from 'ws';

import { StreamServer } from '../../src/broadcast/stream.js';
import { createApp, type AppOptions } from '../../src/http/app.js';
import { startHttpServer } from '../../src/http/server.js';
import { silentLogger } from '../../src/log.js';
import type { FakeSupervisor } from './fake-supervisor.js';

export interface Stack {
  url: string;
  port: number;
  wsUrl: string;
  stream: StreamServer;
  close(): Promise<void>;
}

export async function startStack(
  api: FakeSupervisor,
  options: Partial<AppOptions> = {},
): Promise<Stack> {
  const logger = silentLogger();
  const app = createApp(api, { logger, ...options });
  const stream = new StreamServer({
    api,
    logger,
    users: options.users,
    allowedHosts: options.allowedHosts,
  });
  const http = await startHttpServer({
    app,
    host: '127.0.0.1',
    port: 0,
    logger,
    onUpgrade: (req, socket, head) => stream.handleUpgrade(req, socket, head),
  });

  return {
    url: http.url,
    port: http.port,
    wsUrl: `ws://127.0.0.1:${http.port}/ws`,
    stream,
    close: async () => {
      await stream.close();
      await http.close();
    },
  };
}

export interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One HTTP request with exactly the headers given (fetch would not let us set Host). */
export function rawRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: options.method ?? 'GET', headers: options.headers });

    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
    });
    req.end(options.body);
  });
}

export type Frame = { type: string } & Record<string, unknown>;

/** A WebSocket client that queues every frame so a test can await them one by one. */
export class FrameClient {
  readonly ws: WebSocket;
  private readonly frames: Frame[] = [];
  private waiters: Array<(frame: Frame) => void> = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(
    url: string,
    protocols: string[] = ['mcp-supervisor.v1'],
    options: ClientOptions = {},
  ) {
    this.ws = new WebSocket(url, protocols, options);
    this.ws.on('message', (data) => this.push(JSON.parse(String(data)) as Frame));
    this.ws.on('error', () => undefined);
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
  }

  /** Resolves once the handshake is done. */
  opened(): Promise<void> {
    if (this.ws.readyState === WebSocket.OPEN) return Promise.resolve();

    return new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
  }

  /** The next frame. */
  next(): Promise<Frame> {
    const frame = this.frames.shift();
    if (frame) return Promise.resolve(frame);

    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** The next `count` frames. */
  async take(count: number): Promise<Frame[]> {
    const out: Frame[] = [];
    for (let i = 0; i < count; i += 1) out.push(await this.next());

    return out;
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** Frames received and not yet taken. */
  get pending(): number {
    return this.frames.length;
  }

  private push(frame: Frame): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(frame);
    else this.frames.push(frame);
  }
}
