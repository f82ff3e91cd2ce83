import { WebSocket } from 'ws';

import { CLOSE_CODES, encodeFrame, type ServerFrame } from './frames.js';

/** How long a lagging or shut-down peer gets to finish the close handshake, in ms. */
export const CLOSE_GRACE_MS = 2_000;

/** A transition frame serialized once, waiting while its subscriber replays history. */
interface Pending {
  seq: number;
  text: string;
}

/**
 * One connected stream client: its filter, its keep-alive flag and its send budget. While a
 * resume reads history, live transitions queue here so the client still sees them in order.
 */
export class Subscriber {
  /** Answered the last keep-alive ping. */
  alive = true;
  /** Server names this client watches; null watches every server. */
  servers: Set<string> | null;
  private replaying = false;
  private queue: Pending[] = [];
  private gone = false;

  constructor(
    readonly ws: WebSocket,
    servers: string[] | null,
    private readonly maxBufferedBytes: number,
    private readonly onLagging: (subscriber: Subscriber) => number,
  ) {
    this.servers = servers ? new Set(servers) : null;
    ws.once('close', () => {
      this.gone = true;
    });
  }

  /** Whether the connection has closed or is being closed by us. */
  get closed(): boolean {
    return this.gone || this.ws.readyState !== WebSocket.OPEN;
  }

  get isReplaying(): boolean {
    return this.replaying;
  }

  watches(server: string): boolean {
    return this.servers === null || this.servers.has(server);
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

  /** A live transition: sent now, or queued while a replay is running. */
  deliver(server: string, seq: number, text: string): void {
    if (!this.watches(server)) return;

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
  close(code: number, reason: string): void {
    if (this.gone) return;

    this.ws.close(code, reason);
    const timer = setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS);
    timer.unref();
    this.ws.once('close', () => clearTimeout(timer));
  }

  private lag(): void {
    const seq = this.onLagging(this);

    // The lagging frame goes past the budget on purpose: it is the last thing this peer gets.
    this.ws.send(encodeFrame({ type: 'lagging', seq }));
    this.queue = [];
    this.close(CLOSE_CODES.lagging, 'lagging');
  }
}
