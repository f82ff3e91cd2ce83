import { WebSocket } from 'ws';

import type { Principal } from '../http/principal.js';
import { CLOSE_CODES, encodeFrame, type ServerFrame } from './frames.js';

/** How long a shut-down peer gets to finish the close handshake, in ms. */
export const CLOSE_GRACE_MS = 2_000;

/**
 * How long a lagging peer gets to finish the close handshake, in ms: a peer that stopped
 * reading never will, and its unsent frames hold memory until the socket is destroyed.
 */
export const LAGGING_GRACE_MS = 250;

/** A transition frame serialized once, waiting while its subscriber replays history. */
interface Pending {
  seq: number;
  text: string;
}

/** The servers a client asked for (`servers=` and `tags=`, or `subscribe`); null: all. */
export interface Narrowing {
  servers: ReadonlySet<string> | null;
  tags: ReadonlySet<string> | null;
}

/** Every server. */
export const EVERYTHING: Narrowing = { servers: null, tags: null };

/**
 * One connected stream client: who it is, its filter, its keep-alive flag and its send
 * budget. While a resume reads history, live transitions queue here so the client still sees
 * them in order.
 */
export class Subscriber {
  /** Answered the last keep-alive ping. */
  alive = true;
  /** What the client asked to watch, within what its principal may see. */
  narrowing: Narrowing;
  private replaying = false;
  private queue: Pending[] = [];
  private gone = false;
  private lagged = false;

  constructor(
    readonly ws: WebSocket,
    readonly principal: Principal,
    narrowing: Narrowing,
    private readonly maxBufferedBytes: number,
    private readonly onLagging: (subscriber: Subscriber) => number,
  ) {
    this.narrowing = narrowing;
    ws.once('close', () => {
      this.gone = true;
      this.queue = [];
    });
  }

  /** Whether the connection has closed or is being closed by us. */
  get closed(): boolean {
    return this.gone || this.lagged || this.ws.readyState !== WebSocket.OPEN;
  }

  get isReplaying(): boolean {
    return this.replaying;
  }

  /** Whether this client asked for the server (its principal's rule is checked apart). */
  wants(server: string, tags: readonly string[]): boolean {
    const { servers, tags: wanted } = this.narrowing;
    if (servers === null && wanted === null) return true;
    if (servers?.has(server)) return true;

    return wanted !== null && tags.some((tag) => wanted.has(tag));
  }

  /** Whether this client may see and asked for the server. */
  watches(server: string, tags: readonly string[]): boolean {
    return this.principal.sees(server, tags) && this.wants(server, tags);
  }

  /** Sends one frame, unless the peer is over its send budget. */
  send(frame: ServerFrame): void {
    this.sendText(encodeFrame(frame));
  }

  /** Sends an already serialized frame, unless the peer is over its send budget. */
  sendText(text: string): void {
    if (this.closed) return;

    if (this.ws.bufferedAmount > this.maxBufferedBytes) {
      this.lag();
      return;
    }

    this.ws.send(text);
  }

  /** A live transition the caller checked this client watches: sent now, or queued. */
  deliver(seq: number, text: string): void {
    if (this.replaying) this.queue.push({ seq, text });
    else this.sendText(text);
  }

  /** Queues live transitions from now until {@link endReplay}. */
  beginReplay(): void {
    this.replaying = true;
  }

  /** Sends the queued live transitions after `coveredSeq` (older ones the replay covered). */
  endReplay(coveredSeq: number): void {
    const queued = this.queue;
    this.queue = [];
    this.replaying = false;

    for (const pending of queued) {
      if (pending.seq > coveredSeq) this.sendText(pending.text);
    }
  }

  /** Closes the connection, and terminates it if the close handshake does not finish. */
  close(code: number, reason: string, graceMs = CLOSE_GRACE_MS): void {
    if (this.gone) return;

    this.ws.close(code, reason);
    const timer = setTimeout(() => this.ws.terminate(), graceMs);
    timer.unref();
    this.ws.once('close', () => clearTimeout(timer));
  }

  private lag(): void {
    const seq = this.onLagging(this);

    // The lagging frame goes past the budget on purpose: it is the last thing this peer gets.
    this.ws.send(encodeFrame({ type: 'lagging', seq }));
    this.lagged = true;
    this.queue = [];
    this.close(CLOSE_CODES.lagging, 'lagging', LAGGING_GRACE_MS);
  }
}
