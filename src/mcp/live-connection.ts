import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { RequestOptions } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  CallToolResultSchema,
  McpError,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';

import type { TransportKind } from '../config/types.js';
import { isErrorReply, isMethodNotFound, toCallError } from './call-errors.js';
import { connectError, type StartupFacts } from './connect-errors.js';
import { untilAborted, withTimeout } from './deadline.js';
import type { RemoteTransport } from './remote-transport.js';
import type { ProcessGroupTransport } from './stdio-transport.js';
import { listAllTools, ToolListRefresher } from './tool-list.js';
import {
  CallError,
  type CallOptions,
  type CallToolResult,
  type Connection,
  type LostInfo,
  type OpenOptions,
  type Tool,
  type ToolsDiff,
} from './types.js';

/** The clientInfo name we introduce ourselves with. */
export const CLIENT_NAME = 'mcp-supervisor';
const CLIENT_VERSION = '0.1.0';

/** How long (ms) the probe confirming a remote stream error may take. */
const CONFIRM_PROBE_MS = 5000;

/** How long (ms) a failed stdio start-up waits for the exit to be recorded. */
const EXIT_WAIT_MS = 500;

/** The transport under a connection, with what we know about it. */
export type Wire =
  | { kind: 'stdio'; stdio: ProcessGroupTransport }
  | { kind: 'http' | 'sse'; remote: RemoteTransport };

/** One connection: a fresh SDK client on a fresh transport. Built by openConnection. */
export class LiveConnection implements Connection {
  readonly transport: TransportKind;
  serverVersion: { name: string; version: string } | null = null;
  protocolVersion: string | null = null;

  private readonly client: Client;
  private toolList: readonly Tool[] = [];
  private active = false;
  private closing = false;
  private startupClosed = false;
  private lost: LostInfo | null = null;
  private readonly lostListeners: ((info: LostInfo) => void)[] = [];
  private readonly toolsListeners: ((tools: readonly Tool[], diff: ToolsDiff) => void)[] = [];
  private probeWithList = false;
  private readonly refresher: ToolListRefresher;
  private confirming = false;
  private closed: Promise<void> | null = null;

  constructor(
    private readonly options: OpenOptions,
    private readonly wire: Wire,
  ) {
    this.transport = wire.kind;
    this.client = new Client({ name: CLIENT_NAME, version: CLIENT_VERSION }, { capabilities: {} });
    this.client.onclose = () => this.handleClosed();
    this.client.onerror = (error) => this.handleError(error);
    this.refresher = new ToolListRefresher({
      fetch: () =>
        listAllTools(this.client, { timeout: options.timeoutMs }).catch((error: unknown) => {
          throw this.scrub(error);
        }),
      current: () => this.toolList,
      live: () => this.alive,
      apply: (tools, diff) => {
        this.toolList = tools;
        for (const listener of this.toolsListeners) this.safely(() => listener(tools, diff));
      },
      logger: options.logger,
    });
    this.client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      this.refresher.schedule();
    });
    this.captureProtocolVersion(this.sdkTransport);
  }

  get pid(): number | null {
    return this.wire.kind === 'stdio' ? this.wire.stdio.pid : null;
  }

  get tools(): readonly Tool[] {
    return this.toolList;
  }

  get alive(): boolean {
    return this.active && !this.closing && this.lost === null;
  }

  stderrTail(): string {
    return this.wire.kind === 'stdio' ? this.wire.stdio.stderrTail() : '';
  }

  onLost(listener: (info: LostInfo) => void): void {
    const lost = this.lost;
    if (lost) queueMicrotask(() => this.safely(() => listener(lost)));
    else this.lostListeners.push(listener);
  }

  onToolsChanged(listener: (tools: readonly Tool[], diff: ToolsDiff) => void): void {
    this.toolsListeners.push(listener);
  }

  /**
   * Connects (`initialize`) and lists every tool within `timeoutMs` (ms). On any failure
   * everything opened is closed and a ConnectError says why.
   */
  async open(timeoutMs: number): Promise<void> {
    const deadline = new AbortController();
    const facts: StartupFacts = { timedOut: false, aborted: false, timeoutMs };
    const timer = setTimeout(() => {
      facts.timedOut = true;
      deadline.abort();
    }, timeoutMs);
    timer.unref();
    const external = this.options.signal;
    const onAbort = () => {
      facts.aborted = true;
      deadline.abort();
    };
    external?.addEventListener('abort', onAbort, { once: true });

    try {
      if (external?.aborted) onAbort();
      const request: RequestOptions = { signal: deadline.signal, timeout: timeoutMs };
      await untilAborted(this.client.connect(this.sdkTransport, request), deadline.signal);
      const tools = await untilAborted(listAllTools(this.client, request), deadline.signal);
      if (this.startupClosed) throw new Error('connection closed during start-up');

      this.toolList = tools;
      this.serverVersion = pickVersion(this.client.getServerVersion());
      this.active = true;
    } catch (error) {
      await this.settleFailedStart(facts);
      const failure = connectError(error, this.wire, facts, this.options.redactor);
      await this.close();
      throw failure;
    } finally {
      clearTimeout(timer);
      external?.removeEventListener('abort', onAbort);
    }
  }

  async probe(signal?: AbortSignal): Promise<void> {
    this.assertUsable();

    try {
      if (this.probeWithList) await this.client.listTools(undefined, { signal });
      else await this.client.ping({ signal });
    } catch (error) {
      if (!this.probeWithList && isMethodNotFound(error)) {
        this.probeWithList = true;
        this.options.logger.debug('ping not supported, probing with tools/list');
        return;
      }

      if (isErrorReply(error, this.alive)) return;
      throw this.failure(error, signal);
    }
  }

  async callTool(
    name: string,
    args: Record<string, unknown>,
    options: CallOptions,
  ): Promise<CallToolResult> {
    this.assertUsable();
    const { signal } = options;

    try {
      const result = await this.client.callTool({ name, arguments: args }, CallToolResultSchema, {
        signal,
        timeout: options.timeoutMs,
        maxTotalTimeout: options.maxTotalMs,
        resetTimeoutOnProgress: true,
        // Asking for progress is what lets a busy server extend the timeout.
        onprogress: () => undefined,
      });
      return result as CallToolResult;
    } catch (error) {
      throw this.failure(error, signal);
    }
  }

  close(): Promise<void> {
    this.closed ??= this.shutdown();

    return this.closed;
  }

  private get sdkTransport(): Transport {
    return this.wire.kind === 'stdio' ? this.wire.stdio : this.wire.remote.transport;
  }

  private async shutdown(): Promise<void> {
    const wasAlive = this.alive;
    this.closing = true;
    this.refresher.cancel();

    if (this.wire.kind !== 'stdio' && wasAlive) {
      await withTimeout(this.wire.remote.terminate(), this.options.graceMs);
    }

    await this.client.close().catch((error: unknown) => {
      this.options.logger.debug({ err: this.scrub(error) }, 'client close failed');
    });

    if (this.wire.kind === 'stdio') await this.wire.stdio.close();
  }

  /** A stdio server that died during start-up: wait (bounded) until its exit is on record. */
  private async settleFailedStart(facts: StartupFacts): Promise<void> {
    if (this.wire.kind !== 'stdio' || facts.timedOut || facts.aborted) return;
    if (this.wire.stdio.spawnError) return;

    await this.wire.stdio.waitSettled(EXIT_WAIT_MS);
  }

  private handleClosed(): void {
    if (!this.active) {
      this.startupClosed = true;
      return;
    }

    if (this.wire.kind !== 'stdio') {
      this.lose({ reason: this.wire.remote.monitor.lostReason() ?? 'connection_lost' });
      return;
    }

    const exit = this.wire.stdio.exit;
    const exitCode = exit?.exitCode ?? null;
    const signal = exit?.signal ?? null;
    const stderr = this.wire.stdio.lastStderrLine();
    this.lose({
      reason: 'process_exited',
      exitCode,
      signal,
      clean: exitCode === 0 && signal === null,
      ...(stderr ? { stderr } : {}),
    });
  }

  private handleError(error: Error): void {
    this.options.logger.debug({ err: this.scrub(error) }, 'transport error');
    if (this.wire.kind === 'stdio' || !this.alive) return;

    const reason = this.wire.remote.monitor.lostReason();
    if (!reason) {
      this.confirmAlive();
      return;
    }

    const lose = () => this.lose({ reason, message: this.scrubText(error.message) });
    // The SDK reports a failed send here before it rejects that request: losing the connection
    // now would reject it as "connection closed", hiding that it never reached the server.
    if (this.neverReceived(error)) setImmediate(lose);
    else lose();
  }

  /** A remote stream error is not proof of death: an immediate probe decides. */
  private confirmAlive(): void {
    if (this.confirming) return;
    this.confirming = true;

    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), CONFIRM_PROBE_MS);
    timer.unref();

    this.probe(controller.signal)
      .catch((error: unknown) => {
        if (!this.alive || this.wire.kind === 'stdio') return;
        const reason = this.wire.remote.monitor.lostReason() ?? 'connection_lost';
        this.lose({ reason, message: error instanceof Error ? error.message : String(error) });
      })
      .finally(() => {
        clearTimeout(timer);
        this.confirming = false;
      });
  }

  /** Maps a request failure; a remote wire failure that ends the connection is reported. */
  private failure(error: unknown, signal: AbortSignal | undefined): CallError {
    const mapped = toCallError(error, {
      aborted: signal?.aborted ?? false,
      transportAlive: this.alive,
    });
    const scrubbed = new CallError(
      mapped.kind,
      this.scrubText(mapped.message),
      mapped.rpcCode,
      mapped.kind === 'transport' && this.neverReceived(error),
    );

    if (scrubbed.kind === 'transport' && this.wire.kind !== 'stdio' && this.alive) {
      const reason = this.wire.remote.monitor.lostReason();
      if (reason) this.lose({ reason, message: scrubbed.message });
    }

    return scrubbed;
  }

  /**
   * Whether a failed request provably never reached the server: our own send failed (not a
   * reply, not the close of the client) with our session unknown, or with the connection refused.
   */
  private neverReceived(error: unknown): boolean {
    if (this.wire.kind === 'stdio' || error instanceof McpError) return false;

    const failure = this.wire.remote.monitor.lastFailure;
    if (!failure) return false;

    return failure.sessionLost || (failure.status === null && failure.cause === 'ECONNREFUSED');
  }

  private lose(info: LostInfo): void {
    if (this.closing || this.lost) return;
    this.lost = info;
    this.refresher.cancel();

    this.options.logger.debug({ ...info }, 'connection lost');
    for (const listener of this.lostListeners.splice(0)) this.safely(() => listener(info));

    // A remote transport never closes itself: stop its streams and retries now.
    if (this.wire.kind !== 'stdio') {
      this.client.close().catch(() => undefined);
    }
  }

  private assertUsable(): void {
    if (this.alive) return;

    throw new CallError('transport', this.closing ? 'connection closed' : 'connection lost');
  }

  /** Runs a user callback; one that throws is logged and never breaks the connection. */
  private safely(callback: () => void): void {
    try {
      callback();
    } catch (error) {
      this.options.logger.warn({ err: this.scrub(error) }, 'connection listener failed');
    }
  }

  private captureProtocolVersion(transport: Transport): void {
    const original = transport.setProtocolVersion?.bind(transport);
    transport.setProtocolVersion = (version: string) => {
      this.protocolVersion = version;
      original?.(version);
    };
  }

  private scrub(error: unknown): unknown {
    return this.options.redactor.value(error);
  }

  private scrubText(text: string): string {
    return this.options.redactor.string(text);
  }
}

function pickVersion(
  info: { name: string; version: string } | undefined,
): { name: string; version: string } | null {
  return info ? { name: info.name, version: info.version } : null;
}
