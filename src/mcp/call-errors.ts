import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';

import { CallError } from './types.js';

export interface CallFailureContext {
  /** The caller's signal fired. */
  aborted: boolean;
  /** The transport was still up when the error arrived (by our books, not the SDK's). */
  transportAlive: boolean;
}

/**
 * Maps what the SDK threw for one request to a CallError. The SDK uses RequestTimeout for
 * both its own timeout and an abort, and ConnectionClosed (-32000) both locally and as a
 * code servers may answer with, so our own facts decide those cases.
 */
export function toCallError(error: unknown, context: CallFailureContext): CallError {
  if (error instanceof CallError) return error;
  if (context.aborted) return new CallError('aborted', 'call aborted');

  if (!(error instanceof McpError)) {
    if (isSchemaError(error)) return new CallError('rpc', `invalid result: ${message(error)}`);
    return new CallError('transport', message(error));
  }

  switch (error.code) {
    case ErrorCode.RequestTimeout:
      return new CallError('timeout', error.message, error.code);
    case ErrorCode.ConnectionClosed:
      return context.transportAlive
        ? new CallError('rpc', error.message, error.code)
        : new CallError('transport', error.message, error.code);
    case ErrorCode.InternalError:
      return new CallError('internal', error.message, error.code);
    case ErrorCode.InvalidParams:
      return new CallError('invalid_params', error.message, error.code);
    default:
      return new CallError('rpc', error.message, error.code);
  }
}

/** Whether an error is a JSON-RPC error reply from a live server (it proves the server is up). */
export function isErrorReply(error: unknown, transportAlive: boolean): boolean {
  if (!(error instanceof McpError)) return false;
  if (error.code === ErrorCode.RequestTimeout) return false;
  if (error.code === ErrorCode.ConnectionClosed) return transportAlive;

  return true;
}

/** Whether an error is the method-not-found reply (-32601). */
export function isMethodNotFound(error: unknown): boolean {
  return error instanceof McpError && error.code === ErrorCode.MethodNotFound;
}

function isSchemaError(error: unknown): boolean {
  return error instanceof Error && error.name === 'ZodError';
}

function message(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const inner = (error as Error & { cause?: { message?: unknown } }).cause;
  const detail = typeof inner?.message === 'string' ? inner.message : '';

  return detail && !error.message.includes(detail) ? `${error.message}: ${detail}` : error.message;
}
