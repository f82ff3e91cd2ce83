import { HttpMonitor } from './http-monitor.js';
import { LiveConnection, type Wire } from './live-connection.js';
import { createRemoteTransport } from './remote-transport.js';
import { ProcessGroupTransport } from './stdio-transport.js';
import { ConnectError, type Connection, type OpenOptions } from './types.js';

/**
 * Opens one connection to one MCP server: a fresh transport and SDK client, `initialize`, and
 * the full `tools/list` (following `nextCursor`), all within `options.timeoutMs`. A failed
 * attempt closes what it opened and rejects with a ConnectError whose `reason` is the
 * transition reason (`spawn_failed`, `process_exited`, `connect_failed`, `auth_required`).
 *
 * A remote entry with `fallbackToSse` tries Streamable HTTP first and, when that is answered
 * with a 4xx other than 401/403, SSE within the time left.
 */
export async function openConnection(options: OpenOptions): Promise<Connection> {
  const { entry } = options;

  if (entry.transport === 'stdio') return openOver(options, stdioWire(options), options.timeoutMs);

  const startedAt = Date.now();
  const monitor = new HttpMonitor();

  try {
    return await openOver(
      options,
      remoteWire(options, entry.transport, monitor),
      options.timeoutMs,
    );
  } catch (error) {
    const remainingMs = options.timeoutMs - (Date.now() - startedAt);
    if (!shouldFallBack(options, monitor, error) || remainingMs <= 0) throw error;

    options.logger.info({ status: monitor.lastFailure?.status }, 'falling back to SSE');

    return openOver(options, remoteWire(options, 'sse', new HttpMonitor()), remainingMs);
  }
}

async function openOver(options: OpenOptions, wire: Wire, timeoutMs: number): Promise<Connection> {
  const connection = new LiveConnection(options, wire);
  await connection.open(timeoutMs);

  return connection;
}

function stdioWire(options: OpenOptions): Wire {
  const { entry } = options;
  if (!entry.command) throw new ConnectError('spawn_failed', 'stdio entry without a command');

  const stdio = new ProcessGroupTransport({
    command: entry.command,
    args: entry.args,
    env: entry.env,
    cwd: entry.cwd,
    graceMs: options.graceMs,
    stderrTailBytes: options.stderrTailBytes,
    logger: options.logger,
    redactor: options.redactor,
    onSpawn: options.onSpawn,
    onGroupGone: options.onGroupGone,
  });

  return { kind: 'stdio', stdio };
}

function remoteWire(options: OpenOptions, kind: 'http' | 'sse', monitor: HttpMonitor): Wire {
  if (!options.entry.url) throw new ConnectError('connect_failed', 'remote entry without a url');

  return { kind, remote: createRemoteTransport(options.entry, kind, monitor) };
}

/** The MCP spec's advice: a 4xx to the Streamable HTTP POST means try the older SSE transport. */
function shouldFallBack(options: OpenOptions, monitor: HttpMonitor, error: unknown): boolean {
  if (!options.entry.fallbackToSse || options.entry.transport !== 'http') return false;
  if (!(error instanceof ConnectError) || error.reason !== 'connect_failed') return false;

  const status = monitor.lastFailure?.status ?? null;

  return status !== null && status >= 400 && status < 500;
}
