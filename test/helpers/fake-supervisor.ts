/**
 * An in-memory SupervisorApi for the HTTP and stream tests: servers, transitions and call
 * outcomes are set by the test.
 */
import type {
  OperatorEvent,
  Reason,
  ServerState,
  Transition,
  TransitionDetail,
} from '../../machines/vocabulary.js';
import type { CacheStats } from '../../src/cache/types.js';
import { mergeSettings, type Settings } from '../../src/config/settings.js';
import { SupervisorError } from '../../src/errors.js';
import type { CallToolResult } from '../../src/mcp/types.js';
import type { HistoryQuery } from '../../src/store/store.js';
import type {
  CallOptions,
  CallOutcome,
  ControlOptions,
  ServerDetail,
  ServerStatus,
  ServerUpdate,
  SupervisorApi,
  TransitionListener,
} from '../../src/supervisor/types.js';

/** Decides the outcome of one `callToolWithCache`. */
export type CallHandler = (call: {
  server: string;
  tool: string;
  args: Record<string, unknown>;
  signal: AbortSignal | undefined;
}) => Promise<CallOutcome>;

export interface FakeOptions {
  settings?: Partial<Settings>;
  /** The epoch ms transitions are stamped with (default 2024-01-01T00:00:00Z). */
  now?: number;
}

const START = Date.UTC(2024, 0, 1);

export class FakeSupervisor implements SupervisorApi {
  readonly statuses = new Map<string, ServerDetail>();
  readonly transitions: Transition[] = [];
  readonly invalidations: Array<{ server?: string; tool?: string }> = [];
  readonly controls: Array<{ server: string; event: OperatorEvent; user?: string }> = [];
  /** Transitions with `seq <= memoryFloor` are no longer in memory. */
  memoryFloor = 0;
  /** Seqs `history()` has lost (a gap in the store). */
  readonly lostFromHistory = new Set<number>();
  historyCalls = 0;
  onCall: CallHandler = async () => ({ result: textResult('ok'), cache: 'miss' });
  /** Runs before `history()` answers; a test can emit transitions meanwhile. */
  beforeHistory: () => Promise<void> = async () => undefined;
  private highSeq = 0;
  private readonly listeners = new Set<TransitionListener>();
  private readonly updateListeners = new Set<(update: ServerUpdate) => void>();
  /** What `cacheStats()` answers besides the invalidation count. */
  cacheHits = 3;
  private readonly config: Settings;
  private readonly clock: number;

  constructor(options: FakeOptions = {}) {
    this.config = mergeSettings(options.settings);
    this.clock = options.now ?? START;
  }

  /** Adds a server in `connecting`. */
  addServer(name: string, fields: Partial<ServerDetail> = {}): ServerDetail {
    const detail: ServerDetail = {
      name,
      state: 'connecting',
      since: this.clock,
      reason: null,
      transport: 'stdio',
      pid: null,
      tools: 0,
      calls: 0,
      failures: 0,
      restarts: 0,
      retryAt: null,
      lastError: null,
      serverVersion: null,
      protocolVersion: null,
      uptimeMs: null,
      tags: [],
      toolList: [],
      stderrTail: '',
      ...fields,
    };

    this.statuses.set(name, detail);
    return detail;
  }

  /** Moves a server to `to` and tells every subscriber. */
  emit(server: string, to: ServerState, reason: Reason, detail: TransitionDetail = {}): Transition {
    const status = this.statuses.get(server) ?? this.addServer(server);
    const transition: Transition = {
      seq: ++this.highSeq,
      server,
      from: status.state,
      to,
      reason,
      at: this.clock + this.highSeq * 1000,
      detail,
    };

    status.state = to;
    status.reason = reason;
    status.since = transition.at;
    this.transitions.push(transition);

    for (const listener of this.listeners) listener(transition);
    return transition;
  }

  servers(): ServerStatus[] {
    return [...this.statuses.values()].map(({ toolList: _t, stderrTail: _s, ...status }) => status);
  }

  server(name: string): ServerDetail | undefined {
    return this.statuses.get(name);
  }

  async callTool(
    server: string,
    tool: string,
    args: Record<string, unknown>,
    options?: CallOptions,
  ): Promise<CallToolResult> {
    return (await this.callToolWithCache(server, tool, args, options)).result;
  }

  async callToolWithCache(
    server: string,
    tool: string,
    args: Record<string, unknown>,
    options: CallOptions = {},
  ): Promise<CallOutcome> {
    if (!this.statuses.has(server)) {
      throw new SupervisorError('SERVER_NOT_FOUND', 'no such server', { server });
    }

    return this.onCall({ server, tool, args, signal: options.signal });
  }

  async control(
    server: string,
    event: OperatorEvent,
    options: ControlOptions = {},
  ): Promise<Transition> {
    if (!this.statuses.has(server)) {
      throw new SupervisorError('SERVER_NOT_FOUND', 'no such server', { server });
    }

    this.controls.push({ server, event, user: options.user });
    const to: ServerState = event === 'open' ? 'open' : event === 'disable' ? 'stopped' : 'closed';
    return this.emit(server, to, `operator_${event}`, { user: options.user });
  }

  subscribe(listener: TransitionListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onServerUpdate(listener: (update: ServerUpdate) => void): () => void {
    this.updateListeners.add(listener);
    return () => this.updateListeners.delete(listener);
  }

  /** Changes a server's details and tells every update listener (a `server` frame). */
  update(server: string, fields: Partial<ServerDetail>): void {
    const detail = this.statuses.get(server) ?? this.addServer(server);
    Object.assign(detail, fields);
    const { toolList: _t, stderrTail: _s, ...status } = detail;

    for (const listener of this.updateListeners) listener({ server, status });
  }

  seq(): number {
    return this.highSeq;
  }

  recentTransitions(after: number): Transition[] | null {
    if (after < this.memoryFloor) return null;

    return this.transitions.filter((t) => t.seq > after);
  }

  async history(query: HistoryQuery): Promise<Transition[]> {
    this.historyCalls += 1;
    await this.beforeHistory();

    return this.transitions
      .filter((t) => !this.lostFromHistory.has(t.seq))
      .filter((t) => query.server === undefined || t.server === query.server)
      .filter((t) => t.seq > (query.after ?? 0))
      .slice(0, query.limit ?? 100);
  }

  cacheStats(): CacheStats {
    return {
      size: 2,
      bytes: 128,
      maxSize: 1000,
      maxBytes: 67_108_864,
      hits: this.cacheHits,
      misses: 1,
      evictions: 0,
      expirations: 0,
      invalidations: this.invalidations.length,
      hitRate: 0.75,
    };
  }

  invalidateCache(filter: { server?: string; tool?: string }): number {
    this.invalidations.push(filter);
    return 2;
  }

  settings(): Settings {
    return this.config;
  }

  /** How many transition listeners are attached. */
  get listenerCount(): number {
    return this.listeners.size;
  }
}

/** A CallToolResult with one text block. */
export function textResult(text: string, isError = false): CallToolResult {
  return { content: [{ type: 'text', text }], isError };
}
