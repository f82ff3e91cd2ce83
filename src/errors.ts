/**
 * Our error classes. Each carries a stable UPPER_SNAKE `code` and typed fields; the HTTP layer
 * maps codes to statuses, nothing parses message text.
 */

export const ERROR_CODES = [
  'SERVER_NOT_FOUND',
  'TOOL_NOT_FOUND',
  'CIRCUIT_OPEN',
  'SERVER_CONNECTING',
  'SERVER_FAILED',
  'SERVER_STOPPED',
  'SERVER_BUSY',
  'CALL_TIMEOUT',
  'CALL_FAILED',
  'CALL_ABORTED',
  'INVALID_ARGUMENTS',
  'INVALID_REQUEST',
  'INVALID_CONFIG',
  'INVALID_SETTING',
  'NOT_FOUND',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'CONFLICT',
  'STORE_LOCKED',
  'STORE_UNAVAILABLE',
  'PAYLOAD_TOO_LARGE',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** Base class of every error the supervisor raises on purpose. */
export class SupervisorError extends Error {
  readonly code: ErrorCode;
  readonly fields: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, fields: Record<string, unknown> = {}) {
    super(message);
    this.name = 'SupervisorError';
    this.code = code;
    this.fields = fields;
  }

  toJSON(): { code: ErrorCode; message: string } & Record<string, unknown> {
    return { code: this.code, message: this.message, ...this.fields };
  }
}

/** Whether a value is one of our errors (brand check, survives duplicate module copies). */
export function isSupervisorError(value: unknown): value is SupervisorError {
  if (value instanceof SupervisorError) return true;
  if (!(value instanceof Error) || !('fields' in value) || !('code' in value)) return false;

  return typeof value.code === 'string' && (ERROR_CODES as readonly string[]).includes(value.code);
}
