/**
 * The stream's wire vocabulary: the subprotocol, frame types, close codes, and the one place
 * frames are built and client frames are read.
 */
import type { Transition } from '../../machines/vocabulary.js';
import type { CacheStats } from '../cache/types.js';
import type { ErrorCode } from '../errors.js';
import {
  formatStatus,
  formatTransition,
  type WireServerStatus,
  type WireTransition,
} from '../http/format.js';
import type { ServerStatus } from '../supervisor/types.js';

/** The WebSocket subprotocol the stream speaks. */
export const STREAM_PROTOCOL = 'mcp-supervisor.v1';

/** Browsers pass their token as the subprotocol `bearer.<token>`. */
export const BEARER_PROTOCOL_PREFIX = 'bearer.';

/** Frame types the server sends. */
export const SERVER_FRAME_TYPES = [
  'hello',
  'snapshot',
  'transition',
  'server',
  'cache',
  'pong',
  'lagging',
  'error',
] as const;

/** Frame types a client may send. */
export const CLIENT_FRAME_TYPES = ['subscribe', 'resume', 'ping'] as const;

/** Close codes the stream uses. */
export const CLOSE_CODES = {
  shutdown: 1001,
  unauthorized: 1008,
  tooLarge: 1009,
  lagging: 1013,
} as const;

/** Frames the server sends, `{"type": ..., ...fields}`. */
export type ServerFrame =
  | { type: 'hello'; protocol: string; seq: number }
  | { type: 'snapshot'; seq: number; servers: WireServerStatus[]; reset?: true }
  | ({ type: 'transition' } & WireTransition)
  | ({ type: 'server'; seq: number; server: string } & Omit<WireServerStatus, 'name'>)
  | { type: 'cache'; seq: number; stats: CacheStats }
  | { type: 'pong'; seq: number }
  | { type: 'lagging'; seq: number }
  | { type: 'error'; code: ErrorCode; message: string };

/** Frames a client may send. */
export type ClientFrame =
  | { type: 'subscribe'; servers?: string[]; tags?: string[] }
  | { type: 'resume'; after: number }
  | { type: 'ping' };

/** A client frame that could not be read, and why. */
export interface FrameProblem {
  problem: string;
}

/** The text of a frame. */
export function encodeFrame(frame: ServerFrame): string {
  return JSON.stringify(frame);
}

/** The first frame of every connection. */
export function helloFrame(seq: number): ServerFrame {
  return { type: 'hello', protocol: STREAM_PROTOCOL, seq };
}

/** Every watched server at `seq`; `reset` when a resume could not be filled. */
export function snapshotFrame(seq: number, servers: ServerStatus[], reset: boolean): ServerFrame {
  const frame: ServerFrame = { type: 'snapshot', seq, servers: servers.map(formatStatus) };
  return reset ? { ...frame, reset: true } : frame;
}

/** One transition as a frame. */
export function transitionFrame(transition: Transition): ServerFrame {
  return { type: 'transition', ...formatTransition(transition) };
}

/** A server's details changed (its tool list, its counts). */
export function serverFrame(seq: number, status: ServerStatus): ServerFrame {
  const { name, ...rest } = formatStatus(status);
  return { type: 'server', seq, server: name, ...rest };
}

/** The cache's counters. */
export function cacheFrame(seq: number, stats: CacheStats): ServerFrame {
  return { type: 'cache', seq, stats };
}

/** The answer to a bad client frame. */
export function errorFrame(code: ErrorCode, message: string): ServerFrame {
  return { type: 'error', code, message };
}

/** Reads one client text frame; anything malformed is a {@link FrameProblem}. */
export function parseClientFrame(text: string): ClientFrame | FrameProblem {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { problem: 'frame is not valid JSON' };
  }

  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { problem: 'frame must be a JSON object' };
  }

  const frame = value as Record<string, unknown>;
  switch (frame.type) {
    case 'ping':
      return { type: 'ping' };
    case 'resume':
      return parseResume(frame);
    case 'subscribe':
      return parseSubscribe(frame);
    default:
      return { problem: `unknown frame type; expected ${CLIENT_FRAME_TYPES.join(', ')}` };
  }
}

/** A list of server names as `servers=a,b` gives it; null (everything) when absent. */
export function parseServerList(value: string | null): string[] | null {
  if (value === null || value.trim() === '') return null;

  return value
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
}

/** A resume point as `after=<seq>` gives it. */
export function parseSeq(value: unknown): number | null {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : null;
  if (typeof value === 'string' && /^\d+$/.test(value)) return parseSeq(Number(value));

  return null;
}

function parseResume(frame: Record<string, unknown>): ClientFrame | FrameProblem {
  const after = parseSeq(frame.after);
  if (after === null || typeof frame.after !== 'number') {
    return { problem: 'resume needs after: a non-negative integer seq' };
  }

  return { type: 'resume', after };
}

function parseSubscribe(frame: Record<string, unknown>): ClientFrame | FrameProblem {
  const servers = stringList(frame.servers);
  const tags = stringList(frame.tags);

  if (servers === false) return { problem: 'subscribe servers must be an array of server names' };
  if (tags === false) return { problem: 'subscribe tags must be an array of tags' };

  return {
    type: 'subscribe',
    ...(servers ? { servers } : {}),
    ...(tags ? { tags } : {}),
  };
}

/** An array of strings; undefined when absent, false when malformed. */
function stringList(value: unknown): string[] | undefined | false {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) return false;

  return value as string[];
}
