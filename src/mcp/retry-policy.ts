import { CallError, type Tool } from './types.js';

/** A request the supervisor might send a second time. */
export type RetryRequest =
  { method: 'ping' } | { method: 'tools/list' } | { method: 'tools/call'; tool: Tool | undefined };

/**
 * Whether a failed request may be sent once more, on a fresh connection. Never more than once,
 * and never for an answer (an error reply, invalid params, `isError`), an abort or a timeout:
 * a timeout counts against the breaker, and a second wait would hide it.
 *
 * - The server provably never received it (`unsent`: our session unknown, connection
 *   refused): any request, `tools/call` included.
 * - The transport failed after sending: pings and `tools/list`, and tools whose annotations
 *   say `readOnlyHint` or `idempotentHint`; any other tool may already have acted.
 */
export function mayRetry(request: RetryRequest, error: unknown): boolean {
  if (!(error instanceof CallError) || error.kind !== 'transport') return false;
  if (error.unsent) return true;
  if (request.method !== 'tools/call') return true;

  return isRetrySafe(request.tool);
}

/** A tool whose annotations promise that calling it twice does no harm. */
export function isRetrySafe(tool: Tool | undefined): boolean {
  const annotations = tool?.annotations;

  return annotations?.readOnlyHint === true || annotations?.idempotentHint === true;
}
