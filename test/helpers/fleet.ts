/**
 * Helpers for integration tests against a real supervisor: a transition recorder that waits on
 * events (never on time), and a WebSocket client that collects frames.
 */
import { WebSocket } from 'ws';

import type { Transition } from '../../machines/vocabulary.js';
import { isSupervisorError } from '../../src/errors.js';
import type { SupervisorApi } from '../../src/supervisor/types.js';

type Predicate = (t: Transition) => boolean;

/** Records every transition of a supervisor and resolves waits as matching ones arrive. */
export class TransitionLog {
  readonly seen: Transition[] = [];
  private readonly waiters: Array<{ predicate: Predicate; resolve: (t: Transition) => void }> = [];
  readonly unsubscribe: () => void;

  constructor(api: Pick<SupervisorApi, 'subscribe'>) {
    this.unsubscribe = api.subscribe((t) => {
      this.seen.push(t);
      for (const waiter of [...this.waiters]) {
        if (!waiter.predicate(t)) continue;
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve(t);
      }
    });
  }

  /** The first transition after `afterSeq` that matches; waits for it if it has not come yet. */
  next(predicate: Predicate, afterSeq = 0, timeoutMs = 20_000): Promise<Transition> {
    const found = this.seen.find((t) => t.seq > afterSeq && predicate(t));
    if (found) return Promise.resolve(found);

    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`no matching transition within ${timeoutMs} ms: ${this.describe()}`));
      }, timeoutMs);
      this.waiters.push({
        predicate: (t) => t.seq > afterSeq && predicate(t),
        resolve: (t) => {
          clearTimeout(timer);
          resolve(t);
        },
      });
    });
  }

  /** Waits for `server` to reach `to`. */
  reach(
    server: string,
    to: Transition['to'],
    afterSeq = 0,
    timeoutMs?: number,
  ): Promise<Transition> {
    return this.next((t) => t.server === server && t.to === to, afterSeq, timeoutMs);
  }

  get lastSeq(): number {
    return this.seen.at(-1)?.seq ?? 0;
  }

  describe(): string {
    return this.seen.map((t) => `${t.seq}:${t.server}:${t.from}>${t.to}:${t.reason}`).join(' ');
  }
}

/** Waits until every named server has reached `closed` (now or later). */
export async function allClosed(
  api: SupervisorApi,
  log: TransitionLog,
  names: string[],
): Promise<void> {
  await Promise.all(
    names.map((name) =>
      api.server(name)?.state === 'closed' ? Promise.resolve() : log.reach(name, 'closed'),
    ),
  );
}

export interface Frame {
  type: string;
  seq?: number;
  [key: string]: unknown;
}

/** A WebSocket subscriber that keeps every frame it receives. */
export class FrameCollector {
  readonly frames: Frame[] = [];
  readonly socket: WebSocket;
  readonly opened: Promise<void>;
  readonly closed: Promise<number>;
  private readonly waiters: Array<{ predicate: (f: Frame) => boolean; resolve: () => void }> = [];

  constructor(url: string, protocols: string[] = ['mcp-supervisor.v1']) {
    this.socket = new WebSocket(url, protocols);
    this.opened = new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve());
      this.socket.once('error', reject);
    });
    this.closed = new Promise((resolve) => this.socket.once('close', (code) => resolve(code)));
    this.socket.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString('utf8')) as Frame;
      this.frames.push(frame);
      for (const waiter of [...this.waiters]) {
        if (!waiter.predicate(frame)) continue;
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    });
  }

  /** Resolves once a frame matching `predicate` has arrived (now or before). */
  until(predicate: (f: Frame) => boolean, timeoutMs = 20_000): Promise<void> {
    if (this.frames.some(predicate)) return Promise.resolve();

    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('frame did not arrive')), timeoutMs);
      this.waiters.push({
        predicate,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  transitions(): Frame[] {
    return this.frames.filter((f) => f.type === 'transition');
  }

  close(): void {
    this.socket.close();
  }
}

/** The code of the SupervisorError a call fails with, or `resolved` when it does not fail. */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    if (isSupervisorError(error)) return error.code;
    throw error;
  }
}
