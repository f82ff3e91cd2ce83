import { fromCallback } from 'xstate';

import { probeFailed, probeOk, type ProberEvent } from './server.events.js';

/** What a probe is given. */
export interface ProbeInput {
  name: string;
}

/** Runs one health probe of a server; rejects when it missed. The signal aborts it. */
export type ProbeFn = (input: ProbeInput, signal: AbortSignal) => Promise<void>;

/**
 * The `prober` actor of `closed`: one long-lived child per stay in `closed` that runs a probe
 * on each `probe.run` and sends `probe.ok` or `probe.failed` back. A probe per invoked actor
 * would create and stop an actor every probe, and stopping any actor scans every timer of the
 * whole actor system. Each run's AbortController is its token: a cancelled or superseded run
 * is aborted and its late result is never sent.
 */
export function proberFrom(probe: ProbeFn) {
  return fromCallback<ProberEvent, ProbeInput>(({ input, receive, sendBack }) => {
    let current: AbortController | null = null;

    const cancel = (): void => {
      current?.abort();
      current = null;
    };

    receive((event) => {
      cancel();
      if (event.type !== 'probe.run') return;

      const token = new AbortController();
      current = token;
      probe(input, token.signal).then(
        () => {
          if (current !== token) return;
          current = null;
          sendBack(probeOk());
        },
        (error: unknown) => {
          if (current !== token) return;
          current = null;
          sendBack(probeFailed(errorMessage(error)));
        },
      );
    });

    return cancel;
  });
}

/** The message of whatever a probe rejected with. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (error && typeof error === 'object' && 'message' in error) return String(error.message);

  return String(error);
}
