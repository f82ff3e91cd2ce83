import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

import { WebSocket, WebSocketServer, type RawData } from 'ws';

import type { Transition } from '../../machines/vocabulary.js';
import {
  bearerToken,
  createAuthenticator,
  type Authenticator,
  type HttpUser,
} from '../http/auth.js';
import type { Principal } from '../http/principal.js';
import { HostGuard } from '../http/hosts.js';
import { refuseUpgrade } from '../http/server.js';
import type { Logger } from '../log.js';
import type { ServerStatus, ServerUpdate, SupervisorApi } from '../supervisor/types.js';
import {
  BEARER_PROTOCOL_PREFIX,
  CLOSE_CODES,
  STREAM_PROTOCOL,
  cacheFrame,
  encodeFrame,
  errorFrame,
  helloFrame,
  parseClientFrame,
  parseSeq,
  parseServerList,
  serverFrame,
  snapshotFrame,
  transitionFrame,
  type ClientFrame,
} from './frames.js';
import { Subscriber, type Narrowing } from './subscriber.js';

/** A resume further back than this many transitions gets a fresh snapshot instead. */
export const MAX_REPLAY = 10_000;

/** `cache` frames go out at most this often, and only when the counters changed (ms). */
export const CACHE_FRAME_INTERVAL_MS = 1_000;

export interface StreamServerOptions {
  api: SupervisorApi;
  /** The `WebSocket` service logger. */
  logger: Logger;
  /** Same users as the HTTP API; none leaves the stream open. */
  users?: readonly HttpUser[];
  /** Checks tokens instead of a fixed `users` list (`UserDirectory.authenticate` fits). */
  authenticate?: Authenticator;
  /** Names `Host` and `Origin` may carry; default: loopback names. */
  allowedHosts?: readonly string[];
}

/**
 * The WebSocket stream on `/ws`: `hello`, a `snapshot`, then every transition in `seq` order,
 * with resume, narrowing, keep-alive pings and a send budget per subscriber. Stream settings
 * are read from the supervisor once, at construction.
 */
export class StreamServer {
  private readonly api: SupervisorApi;
  private readonly log: Logger;
  private readonly wss: WebSocketServer;
  private readonly guard: HostGuard;
  private readonly authenticate: Authenticator;
  private readonly subscribers = new Set<Subscriber>();
  private readonly maxBufferedBytes: number;
  private readonly unsubscribe: () => void;
  private readonly unsubscribeUpdates: () => void;
  private readonly pingTimer: NodeJS.Timeout;
  private readonly cacheTimer: NodeJS.Timeout;
  private tags = new Map<string, readonly string[]>();
  private lastCacheText = '';
  private closing = false;

  constructor(options: StreamServerOptions) {
    const settings = options.api.settings();

    this.api = options.api;
    this.log = options.logger;
    this.guard = new HostGuard(options.allowedHosts);
    this.authenticate = options.authenticate ?? createAuthenticator(options.users);
    this.maxBufferedBytes = settings['stream.maxBufferedBytes'];
    this.wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      maxPayload: settings['stream.maxPayloadBytes'],
      handleProtocols: (protocols) => (protocols.has(STREAM_PROTOCOL) ? STREAM_PROTOCOL : false),
    });
    this.refreshTags();
    this.unsubscribe = this.api.subscribe((transition) => this.broadcast(transition));
    this.unsubscribeUpdates = this.api.onServerUpdate((update) => this.broadcastUpdate(update));
    this.pingTimer = setInterval(() => this.keepAlive(), settings['stream.pingIntervalMs']);
    this.pingTimer.unref();
    this.cacheTimer = setInterval(() => this.broadcastCache(), CACHE_FRAME_INTERVAL_MS);
    this.cacheTimer.unref();
  }

  /** How many clients are connected. */
  get size(): number {
    return this.subscribers.size;
  }

  /** Bytes queued for every connected client together: what slow readers cost in memory. */
  get bufferedBytes(): number {
    let total = 0;
    for (const sub of this.subscribers) total += sub.ws.bufferedAmount;

    return total;
  }

  /** Takes over an HTTP upgrade on `/ws` (hand it to `startHttpServer`'s `onUpgrade`). */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.closing) {
      refuseUpgrade(socket, 503, 'Service Unavailable');
      return;
    }

    const localPort = request.socket.localPort;
    const { host, origin } = request.headers;
    if (!this.guard.allowsHost(host, localPort) || !this.guard.allowsOrigin(origin, localPort)) {
      refuseUpgrade(socket, 403, 'Forbidden');
      return;
    }

    this.wss.handleUpgrade(request, socket, head, (ws) => this.accept(ws, request));
  }

  /**
   * Closes with 1008 every client whose principal `revoked` picks (a user deleted or changed,
   * or anonymous clients once users exist); they must reconnect with a valid token.
   *
   * @returns how many were closed.
   */
  disconnect(revoked: (principal: Principal) => boolean): number {
    let count = 0;
    for (const sub of this.subscribers) {
      if (!revoked(sub.principal)) continue;

      sub.close(CLOSE_CODES.unauthorized, 'credentials changed');
      count += 1;
    }

    return count;
  }

  /** Closes every client with 1001 and waits until they are gone. */
  async close(): Promise<void> {
    if (this.closing) return;

    this.closing = true;
    clearInterval(this.pingTimer);
    clearInterval(this.cacheTimer);
    this.unsubscribe();
    this.unsubscribeUpdates();

    const gone = [...this.subscribers].map((sub) => closed(sub.ws));
    for (const sub of this.subscribers) sub.close(CLOSE_CODES.shutdown, 'shutdown');

    await Promise.all(gone);
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private accept(ws: WebSocket, request: IncomingMessage): void {
    ws.on('error', (err) => this.log.debug({ err }, 'subscriber socket error'));

    const auth = this.authenticate(tokenOf(request, ws));
    if (!auth.ok) {
      ws.close(CLOSE_CODES.unauthorized, 'unauthorized');
      return;
    }

    const query = new URL(request.url ?? '/', 'http://stream').searchParams;
    const sub = new Subscriber(
      ws,
      auth.principal,
      narrowingOf(parseServerList(query.get('servers')), parseServerList(query.get('tags'))),
      this.maxBufferedBytes,
      () => this.lagging(),
    );

    this.subscribers.add(sub);
    ws.on('close', () => this.subscribers.delete(sub));
    ws.on('pong', () => {
      sub.alive = true;
    });
    ws.on('message', (data, isBinary) => this.receive(sub, data, isBinary));
    this.log.debug({ subscribers: this.subscribers.size }, 'subscriber connected');

    sub.send(helloFrame(this.api.seq()));
    this.start(sub, query.get('after'));
  }

  private start(sub: Subscriber, afterParam: string | null): void {
    if (afterParam === null) {
      sub.send(snapshotFrame(this.api.seq(), this.visibleServers(sub), false));
      return;
    }

    const after = parseSeq(afterParam);
    if (after === null) {
      sub.send(errorFrame('INVALID_REQUEST', 'after must be a non-negative integer seq'));
      sub.send(snapshotFrame(this.api.seq(), this.visibleServers(sub), false));
      return;
    }

    this.startResume(sub, after);
  }

  private receive(sub: Subscriber, data: RawData, isBinary: boolean): void {
    if (isBinary) {
      sub.send(errorFrame('INVALID_REQUEST', 'frames must be JSON text'));
      return;
    }

    const frame = parseClientFrame(rawText(data));
    if ('problem' in frame) {
      sub.send(errorFrame('INVALID_REQUEST', frame.problem));
      return;
    }

    this.handle(sub, frame);
  }

  private handle(sub: Subscriber, frame: ClientFrame): void {
    if (frame.type === 'ping') {
      sub.send({ type: 'pong', seq: this.api.seq() });
      return;
    }

    if (sub.isReplaying) {
      sub.send(errorFrame('CONFLICT', 'a resume is still replaying'));
      return;
    }

    if (frame.type === 'resume') {
      this.startResume(sub, frame.after);
      return;
    }

    sub.narrowing = narrowingOf(frame.servers ?? null, frame.tags ?? null);
    sub.send(snapshotFrame(this.api.seq(), this.visibleServers(sub), false));
  }

  private startResume(sub: Subscriber, after: number): void {
    this.resume(sub, after).catch((err: unknown) => {
      this.log.error({ err, after }, 'resume failed');
      sub.close(CLOSE_CODES.shutdown, 'resume failed');
    });
  }

  /** Replays what came after `after`: from memory, else from history, else a reset snapshot. */
  private async resume(sub: Subscriber, after: number): Promise<void> {
    const high = this.api.seq();
    if (after === high) return;

    const recent = after <= high ? this.api.recentTransitions(after) : null;

    if (recent) {
      this.replay(sub, recent, high);
      return;
    }

    sub.beginReplay();

    const rows =
      after <= high && high - after <= MAX_REPLAY ? await this.readHistory(after, high) : null;
    if (sub.closed) return;

    if (rows) {
      this.replay(sub, rows, high);
      sub.endReplay(high);
      return;
    }

    const seq = this.api.seq();
    sub.send(snapshotFrame(seq, this.visibleServers(sub), true));
    sub.endReplay(seq);
  }

  private replay(sub: Subscriber, rows: Transition[], high: number): void {
    for (const transition of rows) {
      if (
        transition.seq <= high &&
        sub.watches(transition.server, this.tagsOf(transition.server))
      ) {
        sub.send(transitionFrame(transition));
      }
    }
  }

  /** Transitions `after + 1 .. high` from history, or null when history has a hole. */
  private async readHistory(after: number, high: number): Promise<Transition[] | null> {
    let rows: Transition[];
    try {
      rows = await this.api.history({ after, limit: high - after });
    } catch (err) {
      this.log.warn({ err, after }, 'resume history unavailable');
      return null;
    }

    const wanted = rows.filter((row) => row.seq <= high);
    const complete =
      wanted.length === high - after && wanted.every((row, i) => row.seq === after + 1 + i);

    return complete ? wanted : null;
  }

  private broadcast(transition: Transition): void {
    if (transition.from === null || !this.tags.has(transition.server)) this.refreshTags();

    const tags = this.tagsOf(transition.server);
    // Serialized once: every subscriber that sees it gets the same string.
    const text = encodeFrame(transitionFrame(transition));
    const visible = this.visibilityOf(transition.server, tags);

    for (const sub of this.subscribers) {
      if (visible(sub.principal) && sub.wants(transition.server, tags)) {
        sub.deliver(transition.seq, text);
      }
    }
  }

  private broadcastUpdate(update: ServerUpdate): void {
    this.tags.set(update.server, update.status.tags);

    const tags = update.status.tags;
    const text = encodeFrame(serverFrame(this.api.seq(), update.status));
    const visible = this.visibilityOf(update.server, tags);

    for (const sub of this.subscribers) {
      if (!sub.isReplaying && visible(sub.principal) && sub.wants(update.server, tags)) {
        sub.sendText(text);
      }
    }
  }

  /** Cache counters, to admins only: they are fleet-wide sums. Skipped when unchanged. */
  private broadcastCache(): void {
    const stats = this.api.cacheStats();
    const key = JSON.stringify(stats);
    if (key === this.lastCacheText) return;

    this.lastCacheText = key;
    const text = encodeFrame(cacheFrame(this.api.seq(), stats));

    for (const sub of this.subscribers) {
      if (sub.principal.isAdmin && !sub.isReplaying) sub.sendText(text);
    }
  }

  /** Whether a principal sees a server, decided once per visibility class. */
  private visibilityOf(server: string, tags: readonly string[]): (p: Principal) => boolean {
    const decided = new Map<string, boolean>();

    return (principal) => {
      if (principal.seesAll) return true;

      const key = principal.visibilityKey;
      let sees = decided.get(key);
      if (sees === undefined) {
        sees = principal.sees(server, tags);
        decided.set(key, sees);
      }

      return sees;
    };
  }

  private refreshTags(): void {
    this.tags = new Map(this.api.servers().map((status) => [status.name, status.tags]));
  }

  private tagsOf(server: string): readonly string[] {
    return this.tags.get(server) ?? [];
  }

  private keepAlive(): void {
    for (const sub of this.subscribers) {
      if (!sub.alive) {
        this.log.info('subscriber missed its pong');
        this.subscribers.delete(sub);
        sub.ws.terminate();
        continue;
      }

      sub.alive = false;
      sub.ws.ping();
    }
  }

  private lagging(): number {
    this.log.warn({ maxBufferedBytes: this.maxBufferedBytes }, 'subscriber lagging');
    return this.api.seq();
  }

  private visibleServers(sub: Subscriber): ServerStatus[] {
    const all = this.api.servers();
    this.tags = new Map(all.map((status) => [status.name, status.tags]));

    return all.filter((status) => sub.watches(status.name, status.tags));
  }
}

function narrowingOf(servers: string[] | null, tags: string[] | null): Narrowing {
  return {
    servers: servers ? new Set(servers) : null,
    tags: tags ? new Set(tags) : null,
  };
}

/** The token a client presented: the Authorization header, or a `bearer.` subprotocol. */
function tokenOf(request: IncomingMessage, ws: WebSocket): string | undefined {
  const fromHeader = bearerToken(request.headers.authorization);
  if (fromHeader) return fromHeader;

  const offered = request.headers['sec-websocket-protocol'] ?? '';
  const bearer = offered
    .split(',')
    .map((p) => p.trim())
    .find((p) => p.startsWith(BEARER_PROTOCOL_PREFIX));

  return bearer && ws.protocol === STREAM_PROTOCOL
    ? bearer.slice(BEARER_PROTOCOL_PREFIX.length)
    : undefined;
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');

  return data.toString('utf8');
}

function closed(ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();

  return new Promise((resolve) => ws.once('close', () => resolve()));
}
