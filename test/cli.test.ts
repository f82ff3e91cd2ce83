/**
 * The `mcp-supervisor` command as a user runs it: `check` on a broken file, and `start` stopped
 * by a signal with nothing left behind.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { afterAll, describe, expect, it } from 'vitest';

import { silentLogger } from '../src/log.js';
import { openStore } from '../src/store/open.js';
import { FrameCollector } from './helpers/fleet.js';
import { fixture, livePidsWith } from './mcp.harness.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = path.join(ROOT, 'src/cli.ts');
const TSX = ['--import', 'tsx'];
const temp = mkdtempSync(path.join(tmpdir(), 'mcps-cli-'));

afterAll(() => rmSync(temp, { recursive: true, force: true }));

function runCheck(config: string): { status: number | null; stdout: string } {
  const result = spawnSync(process.execPath, [...TSX, CLI, 'check', '--config', config], {
    cwd: ROOT,
    encoding: 'utf8',
    env: withoutFixtureToken(),
  });

  return { status: result.status, stdout: result.stdout };
}

function withoutFixtureToken(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.MCP_SUPERVISOR_FIXTURE_UNSET_TOKEN;
  return env;
}

describe('mcp-supervisor check', () => {
  it('prints each error with its JSON path and exits 1 on a broken config', () => {
    const { status, stdout } = runCheck('test/fixtures/configs/broken.json');
    const lines = stdout.trim().split('\n');

    expect(status).toBe(1);
    expect(lines).toContain(
      'error  supervisor.health.intervalMs: Too small: expected number to be >0',
    );
    expect(lines).toContain(
      'error  mcpServers.mixed: mixes a stdio command with a remote url: keep one of them',
    );
    expect(lines).toContain('error  mcpServers.memory: duplicate server name "memory"');
    expect(lines.some((l) => l.startsWith('error  mcpServers.github.env.'))).toBe(true);
    expect(lines.filter((l) => l.startsWith('error  '))).toHaveLength(4);
  });

  it('accepts the example config and exits 0', () => {
    const { status, stdout } = runCheck('examples/mcp.json');

    expect(status).toBe(0);
    expect(stdout).toContain('ok, 3 servers');
  });
});

describe('mcp-supervisor start', () => {
  let child: ChildProcess | undefined;

  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
  });

  it('stops on SIGTERM: no server process left, writes flushed, clients get 1001', async () => {
    const marker = `cli-${randomUUID()}`;
    const dataDir = path.join(temp, 'data');
    const config = path.join(temp, 'mcp.json');
    writeFileSync(
      config,
      JSON.stringify({
        mcpServers: {
          wrapped: {
            command: 'sh',
            args: ['-c', `"${process.execPath}" "${fixture('grandchild.mjs')}"`],
            env: { GRANDCHILD_MARKER: marker },
          },
          noisy: { command: process.execPath, args: [fixture('noisy-stdout.mjs')] },
        },
        supervisor: { 'shutdown.graceMs': 300 },
      }),
    );

    child = spawn(
      process.execPath,
      [...TSX, CLI, 'start', '--config', config, '--data-dir', dataDir, '--port', '0'],
      { cwd: ROOT, env: { ...process.env, DATABASE_URL: '' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const lines = logLines(child);
    const listening = await lines.until((l) => l.msg === 'listening');
    const url = listening.url as string;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    await lines.until((l) => l.msg === 'transition' && l.server === 'wrapped' && l.to === 'closed');
    await lines.until((l) => l.msg === 'transition' && l.server === 'noisy' && l.to === 'closed');
    expect(livePidsWith(marker)).toHaveLength(1);
    expect(lines.all.every((l) => typeof l.service === 'string')).toBe(true);

    const client = new FrameCollector(`${url.replace('http', 'ws')}/ws`);
    await client.opened;
    await client.until((f) => f.type === 'snapshot');

    const exit = new Promise<number | null>((resolve) =>
      child!.once('exit', (code) => resolve(code)),
    );
    child.kill('SIGTERM');

    expect(await client.closed).toBe(1001);
    expect(await exit).toBe(0);
    expect(livePidsWith(marker)).toEqual([]);
    expect(lines.all.every((l) => typeof l.service === 'string')).toBe(true);

    const store = await openStore({ dataDir }, silentLogger());
    try {
      const history = await store.history({ limit: 1000 });
      const stops = history.filter((t) => t.to === 'stopped');
      expect(stops.map((t) => [t.server, t.reason]).sort()).toEqual([
        ['noisy', 'shutdown'],
        ['wrapped', 'shutdown'],
      ]);
      expect(await store.processGroups()).toEqual([]);
    } finally {
      await store.close();
    }
  }, 60_000);
});

type Line = Record<string, unknown>;

/** The JSON log lines a child writes on stdout, with a wait for the first matching one. */
function logLines(child: ChildProcess): {
  all: Line[];
  until(predicate: (line: Line) => boolean): Promise<Line>;
} {
  const all: Line[] = [];
  const waiters: Array<{ predicate: (line: Line) => boolean; resolve: (line: Line) => void }> = [];
  const stderr: string[] = [];

  child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk.toString('utf8')));
  createInterface({ input: child.stdout! }).on('line', (text) => {
    const line = JSON.parse(text) as Line;
    all.push(line);
    for (const waiter of [...waiters]) {
      if (!waiter.predicate(line)) continue;
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(line);
    }
  });

  return {
    all,
    until: (predicate) => {
      const found = all.find(predicate);
      if (found) return Promise.resolve(found);

      return new Promise((resolve, reject) => {
        waiters.push({ predicate, resolve });
        child.once('exit', (code) =>
          reject(new Error(`exited with ${String(code)}: ${stderr.join('')}`)),
        );
      });
    },
  };
}
