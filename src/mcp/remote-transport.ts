import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';

import type { ServerEntry } from '../config/types.js';
import type { HttpMonitor } from './http-monitor.js';

/** A remote transport and the books kept on its wire. */
export interface RemoteTransport {
  transport: Transport;
  kind: 'http' | 'sse';
  monitor: HttpMonitor;
  /** Ends the server-side session politely (Streamable HTTP only); never throws. */
  terminate(): Promise<void>;
}

/**
 * Builds the SDK transport for a remote entry: Streamable HTTP or SSE, the entry's headers on
 * every request (and on the SSE stream), our monitoring fetch underneath.
 */
export function createRemoteTransport(
  entry: ServerEntry,
  kind: 'http' | 'sse',
  monitor: HttpMonitor,
): RemoteTransport {
  if (!entry.url) throw new Error('remote entry without a url');

  const url = new URL(entry.url);
  const requestInit: RequestInit = { headers: { ...entry.headers } };

  if (kind === 'sse') {
    const transport = new SSEClientTransport(url, { requestInit, fetch: monitor.fetch });
    return { transport, kind, monitor, terminate: () => Promise.resolve() };
  }

  const transport = new StreamableHTTPClientTransport(url, { requestInit, fetch: monitor.fetch });
  const terminate = () => transport.terminateSession().catch(() => undefined);

  return { transport, kind, monitor, terminate };
}
