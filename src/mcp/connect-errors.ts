import type { Redactor } from '../redact.js';
import type { Wire } from './live-connection.js';
import { ConnectError } from './types.js';

/** What the start-up attempt itself knows, beside the error it got. */
export interface StartupFacts {
  /** Our deadline fired. */
  timedOut: boolean;
  /** The caller's signal fired. */
  aborted: boolean;
  /** The deadline (ms). */
  timeoutMs: number;
}

/**
 * Why a start-up failed, as the transition reason it leads to. Our own books come first (a
 * spawn error, an exit on record, the status the wire answered), the SDK's error text last.
 */
export function connectError(
  error: unknown,
  wire: Wire,
  facts: StartupFacts,
  redactor: Redactor,
): ConnectError {
  const text = (message: string) => redactor.string(message);

  if (wire.kind === 'stdio') {
    const { stdio } = wire;
    const stderr = stdio.stderrTail();
    const spawnError = stdio.spawnError;
    if (spawnError) return new ConnectError('spawn_failed', text(spawnError.message), { stderr });

    const exit = stdio.exit;
    if (exit) {
      const how = exit.signal ? `signal ${exit.signal}` : `code ${String(exit.exitCode)}`;
      return new ConnectError('process_exited', `process exited during start-up (${how})`, {
        exitCode: exit.exitCode,
        signal: exit.signal,
        stderr,
      });
    }

    return new ConnectError('connect_failed', text(describe(error, facts)), { stderr });
  }

  const failure = wire.remote.monitor.lastFailure;
  if (failure?.status === 401 || failure?.status === 403) {
    return new ConnectError('auth_required', `server answered HTTP ${failure.status}`);
  }

  return new ConnectError('connect_failed', text(describe(error, facts, failure?.cause)));
}

function describe(error: unknown, facts: StartupFacts, cause?: string | null): string {
  if (facts.timedOut) return `timed out after ${facts.timeoutMs} ms`;
  if (facts.aborted) return 'connect aborted';

  const message = error instanceof Error ? error.message : String(error);

  return cause && !message.includes(cause) ? `${message} (${cause})` : message;
}
