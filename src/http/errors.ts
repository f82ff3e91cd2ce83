import type { ContentfulStatusCode } from 'hono/utils/http-status';

import { isSupervisorError, type ErrorCode } from '../errors.js';
import { toIso } from './format.js';

/** The JSON body of every error answer: `{"error": {"code", "message", ...fields}}`. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string } & Record<string, unknown>;
}

/** An error answer ready to send: status, body and extra headers. */
export interface HttpError {
  status: ContentfulStatusCode;
  body: ErrorBody;
  headers: Record<string, string>;
}

/** Every code has its status: a new code without one fails to compile. */
const STATUS_BY_CODE: Record<ErrorCode, ContentfulStatusCode> = {
  SERVER_NOT_FOUND: 404,
  TOOL_NOT_FOUND: 404,
  NOT_FOUND: 404,
  INVALID_ARGUMENTS: 400,
  INVALID_REQUEST: 400,
  INVALID_SETTING: 400,
  INVALID_CONFIG: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  CALL_FAILED: 502,
  CIRCUIT_OPEN: 503,
  SERVER_CONNECTING: 503,
  SERVER_FAILED: 503,
  SERVER_STOPPED: 503,
  SERVER_BUSY: 503,
  STORE_UNAVAILABLE: 503,
  CALL_TIMEOUT: 504,
  // The caller went away; nobody reads this answer, but logs and proxies see a 4xx.
  CALL_ABORTED: 400,
  STORE_LOCKED: 503,
  INTERNAL: 500,
};

/** Fields holding epoch ms that the wire shows as ISO-8601. */
const TIME_FIELDS = ['retryAt', 'since', 'at'];

/** The HTTP status of one of our error codes; anything unmapped is a 500. */
export function statusOf(code: ErrorCode): ContentfulStatusCode {
  return STATUS_BY_CODE[code] ?? 500;
}

/**
 * Maps anything thrown to the answer it deserves. Our errors keep their code, message and
 * fields; anything else becomes a bare 500 `INTERNAL`, never with its message or stack.
 *
 * @param now - the current time in epoch ms, for `Retry-After`.
 */
export function toHttpError(err: unknown, now: number): HttpError {
  if (!isSupervisorError(err)) {
    return httpError('INTERNAL', 'internal error');
  }

  const fields = formatFields(err.fields);
  const answer = httpError(err.code, err.message, fields);
  const retryAt = err.fields.retryAt;

  if (err.code === 'CIRCUIT_OPEN' && typeof retryAt === 'number') {
    answer.headers['Retry-After'] = String(Math.max(0, Math.ceil((retryAt - now) / 1000)));
  }

  return answer;
}

/** Builds an error answer from a code and message. */
export function httpError(
  code: ErrorCode,
  message: string,
  fields: Record<string, unknown> = {},
): HttpError {
  return {
    status: statusOf(code),
    body: { error: { ...fields, code, message } },
    headers: {},
  };
}

function formatFields(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...fields };

  for (const key of TIME_FIELDS) {
    const value = out[key];
    if (typeof value === 'number') out[key] = toIso(value);
  }

  return out;
}
