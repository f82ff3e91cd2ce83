import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { StringDecoder } from 'node:string_decoder';

import { getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import {
  deserializeMessage,
  serializeMessage,
  STDIO_DEFAULT_MAX_BUFFER_SIZE,
} from '@modelcontextprotocol/sdk/shared/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

import type { Logger } from '../log.js';
import type { Redactor } from '../redact.js';
import { killGroup } from './process-group.js';
import { StderrTail } from './stderr-tail.js';

/**
 * After the first sign of death (exit or stdout EOF), how long (ms) to wait for the others so
 * the exit code and the last stderr lines are known. A wrapper's grandchildren may hold the
 * pipes open forever, so this is a bound, not a condition.
 */
const SETTLE_MS = 100;

/** Longest non-protocol stdout line kept in a log line (characters). */
/** Non-protocol stdout lines logged one by one before sampling starts. */
const LOGGED_NOISE_LINES = 10;
const NOISE_SAMPLE_EVERY = 1000;
const MAX_LOGGED_LINE = 200;

export interface ProcessGroupTransportOptions {
  command: string;
  args: string[];
  /** The entry's own env; merged over the SDK's default environment, nothing else. */
  env: Record<string, string>;
  cwd?: string;
  /** Each step of stopping the group (ms, `shutdown.graceMs`). */
  graceMs: number;
  /** stderr kept (bytes, `stderr.tailBytes`). */
  stderrTailBytes: number;
  logger: Logger;
  redactor: Redactor;
  onSpawn?: (pgid: number) => void;
  onGroupGone?: (pgid: number) => void;
}

/** Our own record of how the process ended (the SDK's onclose carries none of this). */
export interface ExitRecord {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** Which sign came first: the leader's exit or EOF on its stdout. */
  via: 'exit' | 'eof';
}

/**
 * An MCP stdio client transport that runs the server in its own process group (pid = pgid),
 * frames stdout with the SDK's JSON-RPC line format, tolerates non-protocol lines, keeps a
 * scrubbed stderr tail, and stops the whole group on close.
 */
export class ProcessGroupTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T) => void;

  /** The protocol version the client settled on in `initialize`. */
  protocolVersion: string | null = null;

  private child: ChildProcessWithoutNullStreams | null = null;
  private readonly tail: StderrTail;
  private readonly stdoutDecoder = new StringDecoder('utf8');
  private stdoutBuffer = '';
  private nonProtocol = 0;
  private spawnFailure: Error | null = null;

  private exitSeen: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private stdoutEnded = false;
  private stderrEnded = false;
  private firstSign: 'exit' | 'eof' | null = null;
  private settleTimer: NodeJS.Timeout | null = null;
  private record: ExitRecord | null = null;
  private closedNotified = false;
  private readonly settledWaiters: (() => void)[] = [];

  private closing = false;
  private stopping: Promise<void> | null = null;
  private reaping: Promise<void> | null = null;
  private groupGoneNotified = false;

  constructor(private readonly options: ProcessGroupTransportOptions) {
    this.tail = new StderrTail(options.stderrTailBytes, options.redactor);
  }

  /** The group leader's pid, which is also the process group id. */
  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  /** How the process ended, once it has. */
  get exit(): ExitRecord | null {
    return this.record;
  }

  /** The spawn error (ENOENT, EACCES...), when the process never started. */
  get spawnError(): Error | null {
    return this.spawnFailure;
  }

  /** How many stdout lines were not JSON-RPC. */
  get nonProtocolLines(): number {
    return this.nonProtocol;
  }

  /** The scrubbed stderr tail. */
  stderrTail(): string {
    return this.tail.text();
  }

  /** The last non-empty stderr line, scrubbed. */
  lastStderrLine(): string {
    return this.tail.lastLine();
  }

  /** Resolves once the exit is on record, or after `timeoutMs` (ms) if it never comes. */
  waitSettled(timeoutMs: number): Promise<void> {
    if (this.record || !this.child) return Promise.resolve();

    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      timer.unref();
      this.settledWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  setProtocolVersion(version: string): void {
    this.protocolVersion = version;
  }

  start(): Promise<void> {
    if (this.child) return Promise.reject(new Error('transport already started'));

    const { command, args, env, cwd } = this.options;
    const child = spawn(command, args, {
      env: { ...getDefaultEnvironment(), ...env },
      cwd,
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
      windowsHide: true,
    });
    this.child = child;

    return new Promise((resolve, reject) => {
      child.once('spawn', () => {
        if (child.pid !== undefined) this.options.onSpawn?.(child.pid);
        resolve();
      });
      child.on('error', (error) => {
        if (child.pid === undefined) {
          this.spawnFailure = error;
          reject(error);
          return;
        }

        this.onerror?.(error);
      });
      this.wire(child);
    });
  }

  send(message: JSONRPCMessage): Promise<void> {
    const stdin = this.child?.stdin;
    if (!stdin || !stdin.writable || this.record) return Promise.reject(new Error('Not connected'));

    return new Promise((resolve, reject) => {
      stdin.write(serializeMessage(message), (error) => (error ? reject(error) : resolve()));
    });
  }

  /**
   * Stops the server: stdin closed, up to graceMs for it to exit, then SIGTERM and SIGKILL to
   * the group. Resolves only once the group is gone (or SIGKILL's grace ran out).
   */
  close(): Promise<void> {
    this.closing = true;
    this.stopping ??= this.stop();

    return this.stopping;
  }

  private wire(child: ChildProcessWithoutNullStreams): void {
    child.on('exit', (code, signal) => {
      this.exitSeen = { code, signal };
      this.sign('exit');
    });
    child.stdout.on('data', (chunk: Buffer) => this.readStdout(chunk));
    child.stdout.on('end', () => {
      this.stdoutEnded = true;
      this.sign('eof');
    });
    child.stderr.on('data', (chunk: Buffer) => this.readStderr(chunk));
    child.stderr.on('end', () => {
      this.stderrEnded = true;
      this.checkSettled();
    });

    // EPIPE and friends when the server is gone: exit detection reports that, not these.
    const quiet = (error: Error) => this.options.logger.debug({ err: error }, 'stdio stream error');
    child.stdin.on('error', quiet);
    child.stdout.on('error', quiet);
    child.stderr.on('error', quiet);
  }

  private readStdout(chunk: Buffer): void {
    this.stdoutBuffer += this.stdoutDecoder.write(chunk);

    if (this.stdoutBuffer.length > STDIO_DEFAULT_MAX_BUFFER_SIZE) {
      this.nonProtocolLine(this.stdoutBuffer);
      this.stdoutBuffer = '';
      return;
    }

    let index = this.stdoutBuffer.indexOf('\n');
    while (index !== -1) {
      const line = this.stdoutBuffer.slice(0, index).replace(/\r$/, '');
      this.stdoutBuffer = this.stdoutBuffer.slice(index + 1);
      this.readLine(line);
      index = this.stdoutBuffer.indexOf('\n');
    }
  }

  private readLine(line: string): void {
    if (line.trim().length === 0) return;

    let message: JSONRPCMessage;
    try {
      message = deserializeMessage(line);
    } catch {
      this.nonProtocolLine(line);
      return;
    }

    this.onmessage?.(message);
  }

  private nonProtocolLine(line: string): void {
    this.nonProtocol += 1;
    // A chatty server must not flood the log: the first lines, then one in every thousand.
    const count = this.nonProtocol;
    if (count > LOGGED_NOISE_LINES && count % NOISE_SAMPLE_EVERY !== 0) return;

    const scrubbed = this.options.redactor.string(line).slice(0, MAX_LOGGED_LINE);
    this.options.logger.warn(
      { stdout: scrubbed, count: this.nonProtocol },
      'non-protocol output on stdout',
    );
  }

  private readStderr(chunk: Buffer): void {
    for (const line of this.tail.push(chunk)) {
      this.options.logger.debug({ stderr: line }, 'server stderr');
    }
  }

  private sign(via: 'exit' | 'eof'): void {
    if (this.firstSign === null) {
      this.firstSign = via;
      this.settleTimer = setTimeout(() => this.settle(), SETTLE_MS);
      this.settleTimer.unref();
    }

    this.checkSettled();
  }

  private checkSettled(): void {
    if (this.firstSign === null) return;
    if (this.exitSeen && this.stdoutEnded && this.stderrEnded) this.settle();
  }

  /** The process is gone for us: record how, reap the rest of its group, tell the client. */
  private settle(): void {
    if (this.record || this.firstSign === null) return;
    if (this.settleTimer) clearTimeout(this.settleTimer);

    this.tail.flush();
    this.record = {
      exitCode: this.exitSeen?.code ?? null,
      signal: this.exitSeen?.signal ?? null,
      via: this.firstSign,
    };

    // Grandchildren of a wrapper must not outlive the server they belonged to.
    if (!this.closing) this.reaping = this.reapGroup();

    for (const waiter of this.settledWaiters.splice(0)) waiter();

    this.notifyClosed();
  }

  private async stop(): Promise<void> {
    const child = this.child;
    const pgid = child?.pid;

    if (!child || pgid === undefined) {
      this.notifyClosed();
      return;
    }

    if (!this.record) {
      child.stdin.end();
      await this.waitForExit(this.options.graceMs);
    }

    await (this.reaping ?? this.reapGroup());
    // The group is gone; let Node reap our leader too, so its exit is on record.
    await this.waitForExit(this.options.graceMs);
    this.settle();
    this.notifyClosed();
  }

  private async reapGroup(): Promise<void> {
    const pgid = this.child?.pid;
    if (pgid === undefined) return;

    const gone = await killGroup(pgid, this.options.graceMs);
    if (!gone) this.options.logger.warn({ pgid }, 'process group survived SIGKILL');

    if (!this.groupGoneNotified) {
      this.groupGoneNotified = true;
      this.options.onGroupGone?.(pgid);
    }
  }

  private waitForExit(timeoutMs: number): Promise<void> {
    const child = this.child;
    if (!child || this.exitSeen) return Promise.resolve();

    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      timer.unref();
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private notifyClosed(): void {
    if (this.closedNotified) return;
    this.closedNotified = true;
    this.onclose?.();
  }
}
