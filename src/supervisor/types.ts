import type { OperatorEvent, ServerState, Transition } from '../../machines/vocabulary.js';
import type { CacheStats } from '../cache/types.js';
import type { Settings } from '../config/settings.js';
import type { TransportKind } from '../config/types.js';
import type { CallToolResult, Tool } from '../mcp/types.js';
import type { HistoryQuery } from '../store/store.js';
import type { AdminApi } from './admin.js';

/** One row of `GET /api/servers`. Times are epoch ms here; the HTTP layer formats ISO-8601. */
export interface ServerStatus {
  name: string;
  state: ServerState;
  since: number;
  reason: string | null;
  transport: TransportKind;
  pid: number | null;
  tools: number;
  calls: number;
  failures: number;
  restarts: number;
  retryAt: number | null;
  lastError: string | null;
  serverVersion: { name: string; version: string } | null;
  protocolVersion: string | null;
  uptimeMs: number | null;
  tags: string[];
  /**
   * Resident memory (bytes) of the stdio server's whole process group, read from /proc when
   * asked; null for remote servers, without a live process, or off Linux.
   */
  rssBytes?: number | null;
  /** CPU time (ms, user plus system, cumulative) of the same process group; null likewise. */
  cpuMs?: number | null;
}

/** `GET /api/servers/:name`: the status plus the tool list and the stderr tail. */
export interface ServerDetail extends ServerStatus {
  toolList: Tool[];
  stderrTail: string;
}

export interface CallOptions {
  signal?: AbortSignal;
}

/** A tool result and whether the cache answered it. */
export interface CallOutcome {
  result: CallToolResult;
  cache: 'hit' | 'miss';
}

export interface ControlOptions {
  /** Who acted; recorded in the transition's detail. */
  user?: string;
}

export type TransitionListener = (transition: Transition) => void;

/** Non-transition updates for the stream (`server` frames). */
export interface ServerUpdate {
  server: string;
  status: ServerStatus;
}

/**
 * What the HTTP API and the WebSocket stream need from a running supervisor. The library's
 * `Supervisor` implements it.
 */
export interface SupervisorApi {
  servers(): ServerStatus[];
  server(name: string): ServerDetail | undefined;
  callTool(
    server: string,
    tool: string,
    args: Record<string, unknown>,
    options?: CallOptions,
  ): Promise<CallToolResult>;
  callToolWithCache(
    server: string,
    tool: string,
    args: Record<string, unknown>,
    options?: CallOptions,
  ): Promise<CallOutcome>;
  control(server: string, event: OperatorEvent, options?: ControlOptions): Promise<Transition>;
  /** Every transition, in `seq` order. Returns the unsubscribe function. */
  subscribe(listener: TransitionListener): () => void;
  /** Detail changes (tool list, counts) for `server` frames. */
  onServerUpdate(listener: (update: ServerUpdate) => void): () => void;
  /** The highest `seq` handed out so far. */
  seq(): number;
  /** Recent transitions after `after` from memory, or null when memory no longer reaches. */
  recentTransitions(after: number): Transition[] | null;
  history(query: HistoryQuery): Promise<Transition[]>;
  cacheStats(): CacheStats;
  invalidateCache(filter: { server?: string; tool?: string }): number;
  settings(): Settings;
  /** Settings writes, the server registry and the store's books; absent on bare fakes. */
  readonly admin?: AdminApi;
}
