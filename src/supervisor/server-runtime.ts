import type { ConnectFailure, ServerEvent } from '../../machines/server.events.js';
import {
  breakerTrip,
  connectionLost,
  operatorCommand,
  trialResult,
} from '../../machines/server.events.js';
import type { ServerState, Transition } from '../../machines/vocabulary.js';
import type { Settings } from '../config/settings.js';
import type { ServerEntry } from '../config/types.js';
import { SupervisorError } from '../errors.js';
import type { Logger } from '../log.js';
import { openConnection } from '../mcp/connection.js';
import { readOneGroupUsage, type ProcessUsage } from '../mcp/process-usage.js';
import { mayRetry, type RetryRequest } from '../mcp/retry-policy.js';
import {
  CallError,
  ConnectError,
  type CallToolResult,
  type Connection,
  type LostInfo,
  type Tool,
  type ToolsDiff,
} from '../mcp/types.js';
import { Redactor } from '../redact.js';
import { Bulkhead } from './bulkhead.js';
import { CallGate, type Admission, type GateOptions } from './gate.js';
import { crossedLimit } from './resource-limits.js';

export interface RuntimeHooks {
  /** Deliver an event to this server's actor. */
  send(event: ServerEvent): void;
  /** The actor's current top-level state and retry time. */
  state(): { state: ServerState; retryAt: number | null };
  onSpawn(pgid: number): void;
  onGroupGone(pgid: number): void;
  onToolsChanged(tools: readonly Tool[], diff: ToolsDiff): void;
  /** A new connection replaced an earlier one: its cached results may be stale. */
  onReconnected(): void;
}

/** Reasons whose `open` means the server stopped answering: its connection is dropped. */
const UNRESPONSIVE = new Set([
  'probe_timeout',
  'probe_failed',
  'trial_failed',
  'half_open_deadline',
]);

/**
 * One server's hands: it holds the current connection, implements the statechart's `connect`
 * and `probe` actors and the call path, and keeps the per-call books.
 */
export class ServerRuntime {
  readonly redactor: Redactor;
  readonly gate: CallGate;
  private readonly bulkhead: Bulkhead;
  private connection: Connection | null = null;
  private readonly connecting = new Set<Promise<void>>();
  private closing: Promise<void> | null = null;
  private lastTools: readonly Tool[] = [];
  private lastStderr = '';
  private connectedAt: number | null = null;
  /** A fresh connection being opened because the server forgot our session. */
  private renewal: Promise<Connection | null> | null = null;
  /** A renewed connection that has not yet answered: losing its session too is not renewed. */
  private unproven: Connection | null = null;
  calls = 0;
  failures = 0;
  restarts = 0;
  lastError: string | null = null;
  disabled = false;

  constructor(
    public entry: ServerEntry,
    public settings: Settings,
    private readonly logger: Logger,
    private readonly hooks: RuntimeHooks,
    private readonly now: () => number,
    sharedSecrets: Redactor,
  ) {
    this.redactor = new Redactor(entry.secrets).with(sharedSecrets);
    this.gate = new CallGate(gateOptions(settings), now);
    this.bulkhead = new Bulkhead(
      settings['call.maxConcurrent'],
      settings['call.maxConcurrent'] * 16,
    );
  }

  get name(): string {
    return this.entry.name;
  }

  get tools(): readonly Tool[] {
    return this.connection?.tools ?? this.lastTools;
  }

  get pid(): number | null {
    return this.connection?.alive ? this.connection.pid : null;
  }

  get serverVersion(): Connection['serverVersion'] {
    return this.connection?.serverVersion ?? null;
  }

  get protocolVersion(): string | null {
    return this.connection?.protocolVersion ?? null;
  }

  uptimeMs(): number | null {
    return this.connectedAt === null || !this.hasConnection()
      ? null
      : this.now() - this.connectedAt;
  }

  stderrTail(): string {
    return this.connection?.stderrTail() ?? this.lastStderr;
  }

  /** The live process group's memory and CPU, read from /proc now; null if none (or remote). */
  usage(): ProcessUsage | null {
    const pid = this.pid;

    return pid === null ? null : readOneGroupUsage(pid);
  }

  hasConnection(): boolean {
    return this.connection?.alive === true;
  }

  applySettings(settings: Settings): void {
    this.settings = settings;
    this.gate.configure(gateOptions(settings));
    this.bulkhead.resize(settings['call.maxConcurrent'], settings['call.maxConcurrent'] * 16);
  }

  /** The statechart's `connect` actor: a fresh connection, the old one gone first. */
  async connect(killFirst: boolean, signal: AbortSignal): Promise<void> {
    const attempt = this.openFresh(killFirst, signal);
    this.connecting.add(attempt);

    try {
      await attempt;
    } finally {
      this.connecting.delete(attempt);
    }
  }

  /** Resolves once no connect is in flight and no connection (or process group) is left. */
  async quiesce(): Promise<void> {
    await Promise.allSettled([...this.connecting]);
    if (this.renewal) await this.renewal;
    await this.dropConnection();
  }

  private async openFresh(killFirst: boolean, signal: AbortSignal): Promise<void> {
    const previous = this.connection;
    if (previous && (killFirst || !previous.alive)) await this.dropConnection();
    if (this.connection?.alive) return;
    if (this.closing) await this.closing;

    let connection: Connection;
    try {
      connection = await openConnection({
        entry: this.entry,
        timeoutMs: this.settings['connect.timeoutMs'],
        graceMs: this.settings['shutdown.graceMs'],
        stderrTailBytes: this.settings['stderr.tailBytes'],
        logger: this.logger,
        redactor: this.redactor,
        signal,
        onSpawn: (pgid) => this.hooks.onSpawn(pgid),
        onGroupGone: (pgid) => this.hooks.onGroupGone(pgid),
      });
    } catch (error) {
      throw this.connectFailure(error);
    }

    if (signal.aborted) {
      await connection.close();
      throw { reason: 'connect_failed', detail: { message: 'connect cancelled' } };
    }

    this.adopt(connection, previous !== null || this.lastTools.length > 0);
  }

  /** The statechart's `probe` actor. */
  async probe(signal: AbortSignal): Promise<void> {
    if (this.renewal) await this.renewal;
    const connection = this.connection;
    if (!connection?.alive) throw new Error('no live connection');

    await this.withRetry(connection, { method: 'ping' }, (c) => c.probe(signal));
    this.checkLimits();
  }

  /** Reacts to this server's own transitions (already numbered). */
  onTransition(transition: Transition): void {
    this.gate.observe(transition.to);

    const failedFromClosed =
      transition.from === 'closed' && (transition.to === 'open' || transition.to === 'failed');
    if (failedFromClosed && !transition.reason.startsWith('operator_')) {
      this.restarts += 1;
    }

    if (transition.to === 'open' && UNRESPONSIVE.has(transition.reason)) void this.dropConnection();
    if (transition.to === 'failed' || transition.to === 'stopped') void this.dropConnection();
  }

  /**
   * A tool call through the gate and the bulkhead. Fail-fast errors are thrown before any I/O.
   */
  async call(
    tool: string,
    args: Record<string, unknown>,
    signal: AbortSignal | undefined,
  ): Promise<CallToolResult> {
    if (this.renewal) await this.renewal;
    const { state, retryAt } = this.hooks.state();
    const admission = this.gate.admit(state, retryAt);
    const connection = this.connection;

    if (!connection?.alive) {
      this.settle(admission, 'ignored');
      throw new SupervisorError('SERVER_CONNECTING', 'the server has no live connection');
    }

    const definition = connection.tools.find((t) => t.name === tool);
    if (!definition) {
      this.settle(admission, 'ignored');
      throw new SupervisorError('TOOL_NOT_FOUND', `server ${this.name} has no tool ${tool}`, {
        server: this.name,
        tool,
      });
    }

    const release =
      this.bulkhead.tryAcquire() ??
      (await this.bulkhead.acquire(signal).catch((error: unknown) => {
        this.settle(admission, 'ignored');
        throw error;
      }));

    this.calls += 1;
    try {
      const options = {
        signal,
        timeoutMs: this.entry.tools[tool]?.timeoutMs ?? this.settings['call.timeoutMs'],
        maxTotalMs: this.settings['call.maxTotalMs'],
      };
      const result = await this.withRetry(
        connection,
        { method: 'tools/call', tool: definition },
        (c) => c.callTool(tool, args, options),
      );
      this.settle(admission, 'success');
      // A tool may echo its own env (a token, a key): those values never leave unmasked.
      return this.redactor.value(result);
    } catch (error) {
      throw this.callFailure(admission, error);
    } finally {
      release();
    }
  }

  /** Stops the current connection; resolves once its process group is gone. */
  async dropConnection(): Promise<void> {
    const connection = this.connection;
    if (!connection) return this.closing ?? undefined;

    this.keepBooks(connection);
    this.connection = null;
    this.closing = connection.close().finally(() => {
      this.closing = null;
    });

    return this.closing;
  }

  /**
   * On the probe tick (no timer of its own): a server past `restart.maxUptimeMs` or
   * `restart.maxRssBytes` is restarted through the machine's restart path, the crossing as detail.
   */
  private checkLimits(): void {
    const crossing = crossedLimit(this.settings, this.uptimeMs(), () => this.usage());
    if (!crossing) return;

    this.logger.warn({ limit: crossing }, 'resource limit crossed');
    this.hooks.send(operatorCommand('restart', undefined, crossing));
  }

  private adopt(connection: Connection, reconnected: boolean): void {
    this.connection = connection;
    this.connectedAt = this.now();
    this.lastTools = connection.tools;

    connection.onLost((info) => {
      if (this.connection !== connection) return;
      if (info.reason === 'session_lost' && connection !== this.unproven) {
        this.renewSession(connection, info);
        return;
      }

      this.keepBooks(connection);
      this.lastError = info.message ?? info.reason;
      this.hooks.send(connectionLost(info.reason, lostDetail(info), info.clean === true));
    });
    connection.onToolsChanged((tools, diff) => {
      if (this.connection !== connection) return;
      this.lastTools = tools;
      this.hooks.onToolsChanged(tools, diff);
    });

    if (reconnected) this.hooks.onReconnected();
  }

  /**
   * The server forgot our session: one fresh `initialize`, with no transition. When that fails,
   * or the renewed session is lost before it ever answered, the machine hears `session_lost`.
   */
  private renewSession(lost: Connection, info: LostInfo): void {
    this.logger.info('session lost, renewing');
    void lost.close();

    const opening = openConnection({
      entry: this.entry,
      timeoutMs: this.settings['connect.timeoutMs'],
      graceMs: this.settings['shutdown.graceMs'],
      stderrTailBytes: this.settings['stderr.tailBytes'],
      logger: this.logger,
      redactor: this.redactor,
    });

    this.renewal = opening
      .then(
        (fresh) => {
          // The actor moved on (stopped, restarted) while we were renewing.
          if (this.connection !== lost) return fresh.close().then(() => null);

          this.unproven = fresh;
          this.adopt(fresh, true);
          return fresh;
        },
        (error: unknown) => {
          if (this.connection !== lost) return null;

          const message = this.redactor.string(
            error instanceof Error ? error.message : String(error),
          );
          this.lastError = message;
          this.hooks.send(
            connectionLost('session_lost', { ...lostDetail(info), renewal: message }),
          );
          return null;
        },
      )
      .finally(() => {
        this.renewal = null;
      });
  }

  /**
   * Sends a request; when it fails in a way {@link mayRetry} allows, sends it once more on the
   * renewed connection (never on the one that failed, never a third time).
   */
  private async withRetry<T>(
    first: Connection,
    request: RetryRequest,
    send: (connection: Connection) => Promise<T>,
  ): Promise<T> {
    try {
      return this.proven(first, await send(first));
    } catch (error) {
      if (!mayRetry(request, error)) throw error;
      if (this.renewal) await this.renewal;

      const fresh = this.connection;
      if (!fresh?.alive || fresh === first) throw error;

      this.logger.debug({ method: request.method }, 'retrying on a renewed session');
      return this.proven(fresh, await send(fresh));
    }
  }

  private proven<T>(connection: Connection, value: T): T {
    if (this.unproven === connection) this.unproven = null;

    return value;
  }

  private keepBooks(connection: Connection): void {
    this.lastTools = connection.tools;
    this.lastStderr = connection.stderrTail();
  }

  private settle(admission: Admission, outcome: 'success' | 'failure' | 'ignored'): void {
    const signal = this.gate.settle(admission, outcome);

    if (signal.kind === 'trip') {
      const { reason, calls, failures, slowCalls } = signal.trip;
      this.hooks.send(breakerTrip(reason, { calls, failures, slowCalls }));
    } else if (signal.kind === 'trial') {
      this.hooks.send(trialResult(signal.ok));
    }
  }

  private callFailure(admission: Admission, error: unknown): SupervisorError {
    const message = this.redactor.string(error instanceof Error ? error.message : String(error));
    const kind = error instanceof CallError ? error.kind : 'transport';

    if (kind === 'invalid_params') {
      this.settle(admission, 'ignored');
      return new SupervisorError('INVALID_ARGUMENTS', message, { server: this.name });
    }

    if (kind === 'aborted' || kind === 'rpc') {
      this.settle(admission, 'ignored');
      const code = kind === 'aborted' ? 'CALL_ABORTED' : 'CALL_FAILED';
      return new SupervisorError(code, message, { server: this.name });
    }

    this.failures += 1;
    this.lastError = message;
    this.settle(admission, 'failure');

    if (kind === 'timeout') {
      return new SupervisorError('CALL_TIMEOUT', message, { server: this.name });
    }

    return new SupervisorError('CALL_FAILED', message, { server: this.name });
  }

  private connectFailure(error: unknown): ConnectFailure {
    if (error instanceof ConnectError) {
      const stderr = this.redactor.string(error.stderr);
      const lastLine = stderr.trimEnd().split('\n').pop() ?? '';
      this.lastStderr = stderr || this.lastStderr;
      this.lastError = this.redactor.string(error.message);

      return {
        reason: error.reason,
        detail: {
          message: this.lastError,
          ...(error.exitCode !== null ? { exitCode: error.exitCode } : {}),
          ...(error.signal !== null ? { signal: error.signal } : {}),
          ...(lastLine ? { stderr: lastLine } : {}),
        },
      };
    }

    this.lastError = this.redactor.string(error instanceof Error ? error.message : String(error));
    return { reason: 'connect_failed', detail: { message: this.lastError } };
  }
}

function gateOptions(settings: Settings): GateOptions {
  return {
    window: settings['breaker.window'],
    failureThreshold: settings['breaker.failureThreshold'],
    windowSize: settings['breaker.windowSize'],
    windowMs: settings['breaker.windowMs'],
    failureRate: settings['breaker.failureRate'],
    minimumCalls: settings['breaker.minimumCalls'],
    slowCallMs: settings['breaker.slowCallMs'],
    slowCallRate: settings['breaker.slowCallRate'],
    halfOpenMaxCalls: settings['breaker.halfOpenMaxCalls'],
  };
}

function lostDetail(info: LostInfo): Record<string, unknown> {
  const detail: Record<string, unknown> = {};

  if (info.exitCode !== undefined) detail.exitCode = info.exitCode;
  if (info.signal !== undefined) detail.signal = info.signal;
  if (info.stderr) detail.stderr = info.stderr;
  if (info.message) detail.message = info.message;

  return detail;
}
