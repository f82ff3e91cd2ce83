import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';

import type { ConnectFailureReason, LostReason } from '../../machines/vocabulary.js';
import type { ServerEntry, TransportKind } from '../config/types.js';
import type { Logger } from '../log.js';
import type { Redactor } from '../redact.js';

export type { CallToolResult, Tool };

/** How a live connection ended. Reported once per connection. */
export interface LostInfo {
  reason: LostReason;
  exitCode?: number | null;
  signal?: string | null;
  /** Last stderr line, scrubbed of secrets. */
  stderr?: string;
  message?: string;
  /** A stdio process that exited with code 0 on its own. */
  clean?: boolean;
}

/** What changed in a server's tool list after `notifications/tools/list_changed`. */
export interface ToolsDiff {
  added: string[];
  removed: string[];
  changed: string[];
}

export interface OpenOptions {
  entry: ServerEntry;
  /** Spawn or connect plus `initialize` and `tools/list` must finish within this. */
  timeoutMs: number;
  /** Each step of stopping a process group. */
  graceMs: number;
  stderrTailBytes: number;
  logger: Logger;
  redactor: Redactor;
  signal?: AbortSignal;
  /** Called with the process group id right after a stdio spawn, before `initialize`. */
  onSpawn?: (pgid: number) => void;
  /** Called once the process group is gone. */
  onGroupGone?: (pgid: number) => void;
}

export interface CallOptions {
  signal?: AbortSignal;
  timeoutMs: number;
  /** Progress extends the timeout up to this. */
  maxTotalMs: number;
}

/**
 * One live connection to one MCP server: a fresh transport and SDK client, initialized, with
 * the full tool list. Reconnecting always means a new Connection.
 */
export interface Connection {
  readonly transport: TransportKind;
  readonly pid: number | null;
  readonly tools: readonly Tool[];
  readonly serverVersion: { name: string; version: string } | null;
  readonly protocolVersion: string | null;
  /** Whether the transport is still up. */
  readonly alive: boolean;
  /** The scrubbed stderr tail (stdio only; empty otherwise). */
  stderrTail(): string;
  /** Called once when the connection ends for any reason other than our close(). */
  onLost(listener: (info: LostInfo) => void): void;
  /** Called after a debounced `tools/list_changed` refresh with the new list and the diff. */
  onToolsChanged(listener: (tools: readonly Tool[], diff: ToolsDiff) => void): void;
  /**
   * MCP ping; after a method-not-found answer it switches to `tools/list` for good. Resolves
   * on any JSON-RPC reply (an error reply proves the server is alive); rejects on a transport
   * failure. The caller bounds it in time.
   */
  probe(signal?: AbortSignal): Promise<void>;
  callTool(
    name: string,
    args: Record<string, unknown>,
    options: CallOptions,
  ): Promise<CallToolResult>;
  /** Stops the server: stdin closed, SIGTERM, SIGKILL to the group; resolves once it is gone. */
  close(): Promise<void>;
}

/** Thrown by openConnection; `reason` is the transition reason it leads to. */
export class ConnectError extends Error {
  readonly reason: ConnectFailureReason;
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly stderr: string;

  constructor(
    reason: ConnectFailureReason,
    message: string,
    extra: { exitCode?: number | null; signal?: string | null; stderr?: string } = {},
  ) {
    super(message);
    this.name = 'ConnectError';
    this.reason = reason;
    this.exitCode = extra.exitCode ?? null;
    this.signal = extra.signal ?? null;
    this.stderr = extra.stderr ?? '';
  }
}

/** Thrown by callTool on failures that count against the breaker. */
export class CallError extends Error {
  readonly kind: 'timeout' | 'transport' | 'internal' | 'aborted' | 'invalid_params' | 'rpc';
  readonly rpcCode: number | null;
  /**
   * The server provably never received the request: its own HTTP request was answered with
   * our session unknown, or was refused. Any request, `tools/call` included, may be retried.
   */
  readonly unsent: boolean;

  constructor(
    kind: CallError['kind'],
    message: string,
    rpcCode: number | null = null,
    unsent = false,
  ) {
    super(message);
    this.name = 'CallError';
    this.kind = kind;
    this.rpcCode = rpcCode;
    this.unsent = unsent;
  }
}
