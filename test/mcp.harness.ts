import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

import { pino } from 'pino';

import type { ServerEntry } from '../src/config/types.js';
import type { Logger } from '../src/log.js';
import type { OpenOptions } from '../src/mcp/types.js';
import { Redactor } from '../src/redact.js';

/** Absolute path of a fixture server under test/fixtures/servers. */
export function fixture(name: string): string {
  return fileURLToPath(new URL(`./fixtures/servers/${name}`, import.meta.url));
}

/** The npm everything server's entry script. */
export const EVERYTHING = fileURLToPath(
  new URL('../node_modules/@modelcontextprotocol/server-everything/dist/index.js', import.meta.url),
);

/** A validated stdio or remote entry with test defaults. */
export function entry(fields: Partial<ServerEntry>): ServerEntry {
  return {
    name: 'test',
    transport: 'stdio',
    fallbackToSse: false,
    args: [],
    env: {},
    headers: {},
    enabled: true,
    tags: [],
    settings: {},
    tools: {},
    secrets: [],
    source: 'config',
    ...fields,
  };
}

export interface CapturedLog {
  logger: Logger;
  lines: Record<string, unknown>[];
}

/** A debug-level pino logger whose lines land in an array. */
export function captureLogger(): CapturedLog {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'debug', base: undefined },
    { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  );

  return { logger, lines };
}

/** Open options for an entry: short timeouts, a captured logger, the entry's secrets. */
export function openOptions(
  server: ServerEntry,
  extra: Partial<OpenOptions> = {},
): OpenOptions & { lines: Record<string, unknown>[] } {
  const { logger, lines } = captureLogger();

  return {
    entry: server,
    timeoutMs: 10_000,
    graceMs: 200,
    stderrTailBytes: 4096,
    logger,
    redactor: new Redactor(server.secrets),
    lines,
    ...extra,
  };
}

/** Pids of live (non-zombie) processes whose command line contains `marker`. */
export function livePidsWith(marker: string): number[] {
  const pids: number[] = [];

  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (state !== 'Z' && cmdline.includes(marker)) pids.push(Number(name));
    } catch {
      // The process ended while we looked.
    }
  }

  return pids;
}

/** Whether a pid is a live (non-zombie) process. */
export function isLive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** The process group of a pid, from /proc. */
export function pgidOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');

  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

/** A port that was free a moment ago (a throwaway listen on port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once `predicate` holds, checking each time the child writes to stderr or exits. */
export function untilStderr(child: ChildProcess, pattern: RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      seen += chunk.toString('utf8');
      if (pattern.test(seen)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`exited with ${String(code)}: ${seen}`)));
  });
}

/** Starts the everything server in a remote mode on a free port; resolves once it listens. */
export async function startEverythingRemote(
  mode: 'streamableHttp' | 'sse',
): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const child = spawn(process.execPath, [EVERYTHING, mode], {
    env: { ...process.env, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  await untilStderr(child, /listening on port|running on port/i);

  return { child, port };
}

/** Resolves with the child's exit. */
export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();

  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** A promise and the function that resolves it. */
export function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve: (value: T) => void = () => undefined;
  const promise = new Promise<T>((done) => {
    resolve = done;
  });

  return { promise, resolve };
}
