import { SupervisorError } from '../errors.js';

type Waiter = { grant: () => void; abandon: () => void };

/**
 * At most `maxConcurrent` calls in flight per server; the excess waits in a queue bounded by
 * `maxQueued` (full: SERVER_BUSY). A caller that aborts while waiting leaves the queue.
 */
export class Bulkhead {
  private inFlight = 0;
  private readonly queue: Waiter[] = [];

  constructor(
    private maxConcurrent: number,
    private maxQueued: number,
  ) {}

  get active(): number {
    return this.inFlight;
  }

  get waiting(): number {
    return this.queue.length;
  }

  resize(maxConcurrent: number, maxQueued: number): void {
    this.maxConcurrent = maxConcurrent;
    this.maxQueued = maxQueued;
    this.drain();
  }

  /** The release function of a free slot, at once, or null when every slot is taken. */
  tryAcquire(): (() => void) | null {
    if (this.inFlight >= this.maxConcurrent || this.queue.length > 0) return null;

    this.inFlight += 1;
    return this.releaser();
  }

  /** Resolves with the release function once a slot is free. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(aborted());

    if (this.inFlight < this.maxConcurrent) {
      this.inFlight += 1;
      return Promise.resolve(this.releaser());
    }

    if (this.queue.length >= this.maxQueued) {
      return Promise.reject(
        new SupervisorError('SERVER_BUSY', 'too many calls in flight; the queue is full', {
          maxConcurrent: this.maxConcurrent,
        }),
      );
    }

    return new Promise((resolve, reject) => {
      const onAbort = (): void => waiter.abandon();
      const waiter: Waiter = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          this.inFlight += 1;
          resolve(this.releaser());
        },
        abandon: () => {
          const index = this.queue.indexOf(waiter);
          if (index >= 0) this.queue.splice(index, 1);
          reject(aborted());
        },
      };

      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(waiter);
    });
  }

  private releaser(): () => void {
    let released = false;

    return () => {
      if (released) return;
      released = true;
      this.inFlight -= 1;
      this.drain();
    };
  }

  private drain(): void {
    while (this.inFlight < this.maxConcurrent && this.queue.length > 0) this.queue.shift()!.grant();
  }
}

function aborted(): SupervisorError {
  return new SupervisorError('CALL_ABORTED', 'the caller aborted the call');
}
