import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';

import type { LostReason } from '../../machines/vocabulary.js';

/** The last HTTP-level failure seen by a remote transport. */
export interface HttpFailure {
  /** The response status, or null when no response came (refused, reset, DNS). */
  status: number | null;
  /** The request carried our `mcp-session-id` and the answer says the session is unknown. */
  sessionLost: boolean;
  /** The network error's code (ECONNREFUSED...) or message, when there was no response. */
  cause: string | null;
}

/**
 * A fetch wrapper handed to the SDK's remote transports, so we keep our own books of what the
 * wire said: the SDK's errors do not carry statuses uniformly (SSE POST errors only in text).
 */
export class HttpMonitor {
  private failure: HttpFailure | null = null;

  /** The last failure since the last good response. */
  get lastFailure(): HttpFailure | null {
    return this.failure;
  }

  /** The fetch to pass to StreamableHTTPClientTransport / SSEClientTransport. */
  readonly fetch: FetchLike = async (url, init) => {
    let response: Response;

    try {
      response = await fetch(url, init);
    } catch (error) {
      if (!init?.signal?.aborted)
        this.failure = { status: null, sessionLost: false, cause: cause(error) };
      throw error;
    }

    if (response.ok || response.status === 405) {
      this.failure = null;
      return response;
    }

    const sentSession = new Headers(init?.headers).has('mcp-session-id');
    this.failure = {
      status: response.status,
      sessionLost: sentSession && (await namesSession(response)),
      cause: null,
    };

    return response;
  };

  /** What the last failure means for a live connection, if it ended it. */
  lostReason(): LostReason | null {
    const failure = this.failure;
    if (!failure) return null;
    if (failure.status === 401 || failure.status === 403) return 'auth_required';
    if (failure.sessionLost) return 'session_lost';
    if (failure.status === null) return 'connection_lost';

    return null;
  }
}

/** A 404 for our session, or a 400 whose body names the session (as the SDK's servers do). */
async function namesSession(response: Response): Promise<boolean> {
  if (response.status === 404) return true;
  if (response.status !== 400) return false;

  const text = await response
    .clone()
    .text()
    .catch(() => '');

  return /session/i.test(text);
}

function cause(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // Duck-typed: undici's causes are not always instances of this realm's Error.
  const inner = (error as Error & { cause?: { code?: unknown; message?: unknown } }).cause;
  if (typeof inner?.code === 'string') return inner.code;
  if (typeof inner?.message === 'string') return inner.message;

  return error.message;
}
