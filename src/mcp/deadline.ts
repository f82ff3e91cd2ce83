/** Rejects when the signal fires, so a step that ignores signals cannot outlive its deadline. */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  // The loser of the race still settles later; it must not become an unhandled rejection.
  promise.catch(() => undefined);
  if (signal.aborted) return Promise.reject(new Error('aborted'));

  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Resolves when the promise settles or after `timeoutMs` (ms), whichever is first. */
export function withTimeout(promise: Promise<void>, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    timer.unref();
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    promise.then(done, done);
  });
}
