/**
 * The main job end to end: the example config's real npm servers (two over stdio through npx,
 * one over Streamable HTTP), the embedded store, the HTTP API and the WebSocket stream.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { loadConfigFile } from '../src/config/load.js';
import { createSupervisor, type Supervisor } from '../src/supervisor/create.js';
import { allClosed, FrameCollector, TransitionLog } from './helpers/fleet.js';
import { exited, startEverythingRemote } from './mcp.harness.js';
import { spawn, type ChildProcess } from 'node:child_process';

const CONFIG = fileURLToPath(new URL('../examples/mcp.json', import.meta.url));
const EVERYTHING = fileURLToPath(
  new URL('../node_modules/@modelcontextprotocol/server-everything/dist/index.js', import.meta.url),
);
const NAMES = ['everything', 'memory', 'everything-remote'];

let supervisor: Supervisor;
let log: TransitionLog;
let stream: FrameCollector;
let remote: ChildProcess;
let remotePort: number;
let dataDir: string;

async function post(route: string, body: unknown = {}): Promise<Response> {
  return fetch(`${supervisor.url}${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

beforeAll(async () => {
  ({ child: remote, port: remotePort } = await startEverythingRemote('streamableHttp'));
  dataDir = mkdtempSync(path.join(tmpdir(), 'mcps-fleet-'));

  const config = await loadConfigFile(CONFIG, {
    env: { ...process.env, DEMO_REMOTE_PORT: String(remotePort) },
  });
  expect(config.problems.filter((p) => p.severity === 'error')).toEqual([]);

  supervisor = await createSupervisor({
    servers: config.servers,
    settings: { ...config.settings, 'backoff.baseMs': 100, 'backoff.capMs': 400 },
    store: { dataDir },
    http: { port: 0 },
  });
  log = new TransitionLog(supervisor);
  await allClosed(supervisor, log, NAMES);

  stream = new FrameCollector(`${supervisor.url!.replace('http', 'ws')}/ws`);
  await stream.opened;
  await stream.until((f) => f.type === 'snapshot');
}, 60_000);

afterAll(async () => {
  stream?.close();
  await supervisor?.stop();
  remote?.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

describe('the example fleet', () => {
  it('lists every server of the config as closed with its tools', async () => {
    const answer = await fetch(`${supervisor.url}/api/servers`);
    const body = (await answer.json()) as {
      servers: Array<{ name: string; state: string; tools: number }>;
    };

    expect(body.servers.map((s) => s.name).sort()).toEqual([...NAMES].sort());
    for (const server of body.servers) {
      expect(server.state).toBe('closed');
      expect(server.tools).toBeGreaterThan(0);
    }
  });

  it('answers echo through the HTTP API', async () => {
    const answer = await post('/api/servers/everything/tools/echo', { message: 'hi there' });
    const result = (await answer.json()) as { content: Array<{ text: string }> };

    expect(answer.status).toBe(200);
    expect(result.content[0]?.text).toContain('hi there');
  });

  it('answers the second identical get-sum from the cache', async () => {
    const first = await post('/api/servers/everything/tools/get-sum', { a: 2, b: 40 });
    const second = await post('/api/servers/everything/tools/get-sum', { b: 40, a: 2 });

    expect(first.headers.get('x-cache')).toBe('miss');
    expect(second.headers.get('x-cache')).toBe('hit');
    expect(await second.json()).toEqual(await first.json());
  });

  it('answers 404 TOOL_NOT_FOUND and SERVER_NOT_FOUND', async () => {
    const noTool = await post('/api/servers/everything/tools/nope');
    const noServer = await post('/api/servers/nope/tools/echo');

    expect(noTool.status).toBe(404);
    expect(((await noTool.json()) as { error: { code: string } }).error.code).toBe(
      'TOOL_NOT_FOUND',
    );
    expect(noServer.status).toBe(404);
  });

  it('notices a SIGKILL of the stdio server at once and brings it back', async () => {
    const before = supervisor.server('everything')!;
    const after = log.lastSeq;
    const killedAt = Date.now();
    process.kill(before.pid!, 'SIGKILL');

    const opened = await log.reach('everything', 'open', after);
    expect(opened.from).toBe('closed');
    expect(opened.reason).toBe('process_exited');
    expect(opened.detail.signal).toBe('SIGKILL');
    expect(opened.at - killedAt).toBeLessThan(1_000);

    const call = await post('/api/servers/everything/tools/echo', { message: 'while open' });
    if (supervisor.server('everything')!.state === 'open') {
      expect(call.status).toBe(503);
      expect(((await call.json()) as { error: { code: string } }).error.code).toBe('CIRCUIT_OPEN');
    }

    const half = await log.reach('everything', 'halfOpen', opened.seq);
    const closed = await log.reach('everything', 'closed', half.seq);
    expect(closed.reason).toBe('trial_succeeded');
    expect(supervisor.server('everything')!.tools).toBe(before.tools);
    expect(supervisor.server('everything')!.pid).not.toBe(before.pid);

    await stream.until((f) => f.type === 'transition' && f.seq === closed.seq);
    const streamed = stream
      .transitions()
      .filter((f) => f.seq! >= opened.seq && f.seq! <= closed.seq);
    expect(streamed.map((f) => `${f.from}>${f.to}`)).toEqual([
      'closed>open',
      'open>halfOpen',
      'halfOpen>closed',
    ]);
    expectSeqOrder(stream.transitions().map((f) => f.seq!));

    const history = await fetch(
      `${supervisor.url}/api/transitions?server=everything&after=${opened.seq - 1}`,
    );
    const { transitions } = (await history.json()) as {
      transitions: Array<{ seq: number; to: string }>;
    };
    expect(transitions.map((t) => t.to)).toEqual(['open', 'halfOpen', 'closed']);
  });

  it('follows the remote member going away and coming back', async () => {
    const after = log.lastSeq;
    const tools = supervisor.server('everything-remote')!.tools;
    remote.kill('SIGKILL');
    await exited(remote);

    const opened = await log.reach('everything-remote', 'open', after);
    expect(opened.reason).toBe('connection_lost');

    remote = spawn(process.execPath, [EVERYTHING, 'streamableHttp'], {
      env: { ...process.env, PORT: String(remotePort) },
      stdio: 'ignore',
    });
    const closed = await log.reach('everything-remote', 'closed', opened.seq, 30_000);

    const path = log.seen.filter((t) => t.server === 'everything-remote' && t.seq >= opened.seq);
    expect(path.at(-2)?.to).toBe('halfOpen');
    expect(closed.seq).toBeGreaterThan(opened.seq);
    expect(supervisor.server('everything-remote')!.tools).toBe(tools);
    await stream.until((f) => f.type === 'transition' && f.seq === closed.seq);
    expectSeqOrder(stream.transitions().map((f) => f.seq!));
  }, 40_000);
});

function expectSeqOrder(seqs: number[]): void {
  for (let i = 1; i < seqs.length; i += 1) expect(seqs[i]).toBe(seqs[i - 1]! + 1);
}
