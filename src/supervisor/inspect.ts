/**
 * Live inspection: XState inspection events of the root and every server actor, streamed with
 * @statelyai/inspect's WebSocket inspector to a relay (the Stately inspector reads from it).
 * Every event is scrubbed of the fleet's secret values before it leaves the process.
 */
import { createServer } from 'node:net';

import type { InspectionEvent } from 'xstate';

import { SupervisorError } from '../errors.js';
import type { Redactor } from '../redact.js';

/** A running inspection stream. */
export interface InspectStream {
  /** Hand this to `createActor({ inspect })`. */
  inspect(event: InspectionEvent): void;
  /** Closes the WebSocket; idempotent. */
  stop(): void;
}

/** The default relay address, as `@statelyai/inspect/server` listens. */
export const DEFAULT_INSPECT_URL = 'ws://localhost:8080';

/** Streams inspection events to `url`, every event redacted first. */
export async function openInspectStream(url: string, redactor: Redactor): Promise<InspectStream> {
  const { createWebSocketInspector } = await importInspect();
  const inspector = createWebSocketInspector({
    url,
    // Events reach here already serialized to plain JSON, so a walk sees every string.
    serialize: (event) => redactor.value(event),
  });
  let stopped = false;

  return {
    inspect: (event) => {
      if (!stopped) inspector.inspect.next?.(event);
    },
    stop: () => {
      if (stopped) return;
      stopped = true;
      inspector.stop();
    },
  };
}

/** A local relay between this process and the Stately inspector in a browser. */
export async function startInspectRelay(port: number): Promise<{ url: string; stop(): void }> {
  let server: typeof import('@statelyai/inspect/server');
  try {
    server = await import('@statelyai/inspect/server');
  } catch (error) {
    throw missingPackage(error);
  }

  // The relay listens without an error handler: a taken port would crash the process.
  await assertPortFree(port);
  const relay = server.createInspectorServer({ port, autoOpen: false });
  return { url: `http://localhost:${port}`, stop: () => relay.stop() };
}

async function importInspect(): Promise<typeof import('@statelyai/inspect')> {
  try {
    return await import('@statelyai/inspect');
  } catch (error) {
    throw missingPackage(error);
  }
}

function missingPackage(error: unknown): SupervisorError {
  return new SupervisorError(
    'INVALID_CONFIG',
    'inspection needs the @statelyai/inspect package: npm install @statelyai/inspect',
    { cause: error instanceof Error ? error.message : String(error) },
  );
}

function assertPortFree(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error: NodeJS.ErrnoException) => {
      const message =
        error.code === 'EADDRINUSE'
          ? `the inspector relay port ${port} is in use: stop what holds it, or pass ` +
            '--inspect ws://host:port of a relay that already runs'
          : `the inspector relay cannot listen on port ${port}: ${error.message}`;
      reject(new SupervisorError('INVALID_CONFIG', message, { port }));
    });
    probe.listen(port, () => probe.close(() => resolve()));
  });
}
