import { afterEach, describe, expect, it } from 'vitest';

import { openConnection } from '../src/mcp/connection.js';
import { diffTools } from '../src/mcp/tools-diff.js';
import {
  CallError,
  ConnectError,
  type Connection,
  type LostInfo,
  type Tool,
  type ToolsDiff,
} from '../src/mcp/types.js';
import { deferred, entry, EVERYTHING, fixture, isLive, openOptions } from './mcp.harness.js';

const open: Connection[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((connection) => connection.close()));
});

async function connect(command: string, args: string[], env: Record<string, string> = {}) {
  const options = openOptions(entry({ command, args, env }));
  const connection = await openConnection(options);
  open.push(connection);

  return { connection, lines: options.lines };
}

const node = process.execPath;
const call = { timeoutMs: 5000, maxTotalMs: 10_000 };

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => new Error('expected a rejection'),
    (error: unknown) => error,
  );
}

describe('openConnection over stdio', () => {
  it('lists the tools of the everything server', async () => {
    const { connection } = await connect(node, [EVERYTHING, 'stdio']);

    expect(connection.tools.length).toBeGreaterThan(0);
    expect(connection.tools.map((tool) => tool.name)).toContain('echo');
    expect(connection.serverVersion?.name).toBeTruthy();
    expect(connection.protocolVersion).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(connection.alive).toBe(true);
  });

  it('calls the echo tool of the everything server', async () => {
    const { connection } = await connect(node, [EVERYTHING, 'stdio']);

    const result = await connection.callTool('echo', { message: 'hello' }, call);

    expect(JSON.stringify(result.content)).toContain('hello');
  });

  it('follows nextCursor until the tool list is complete', async () => {
    const { connection } = await connect(node, [fixture('no-ping.mjs')]);

    expect(connection.tools.map((tool) => tool.name)).toEqual(['a', 'b', 'c']);
  });

  it('rejects with process_exited, the exit code and the stderr tail', async () => {
    const options = openOptions(entry({ command: node, args: [fixture('exit-on-start.mjs')] }));

    const error = await rejection(openConnection(options));

    expect(error).toBeInstanceOf(ConnectError);
    expect(error).toMatchObject({ reason: 'process_exited', exitCode: 3, signal: null });
    expect((error as ConnectError).stderr).toContain('fatal: cannot start');
  });

  it('rejects with spawn_failed when the command does not exist', async () => {
    const options = openOptions(entry({ command: 'mcp-supervisor-no-such-command-x' }));

    const error = await rejection(openConnection(options));

    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).reason).toBe('spawn_failed');
    expect((error as ConnectError).message).toContain('ENOENT');
  });

  it('rejects with connect_failed on timeout and leaves no process behind', async () => {
    const pids: number[] = [];
    const silent = entry({ command: node, args: ['-e', 'setInterval(() => {}, 1000)'] });
    const gone = deferred<number>();
    const options = openOptions(silent, {
      timeoutMs: 300,
      onSpawn: (pgid) => pids.push(pgid),
      onGroupGone: gone.resolve,
    });

    const error = await rejection(openConnection(options));

    expect(error).toMatchObject({ reason: 'connect_failed' });
    expect((error as ConnectError).message).toMatch(/timed out/);
    expect(await gone.promise).toBe(pids[0]);
    expect(isLive(pids[0] ?? 0)).toBe(false);
  });
});

describe('Connection.probe', () => {
  it('resolves on a ping answer', async () => {
    const { connection } = await connect(node, [EVERYTHING, 'stdio']);

    await expect(connection.probe()).resolves.toBeUndefined();
  });

  it('switches to tools/list for good after ping is method-not-found', async () => {
    const { connection, lines } = await connect(node, [fixture('ping-not-found.mjs')]);

    await connection.probe();
    await connection.probe();
    await connection.probe();

    const switches = lines.filter((line) => String(line.msg).startsWith('ping not supported'));
    expect(switches).toHaveLength(1);
  });

  it('rejects when its signal fires before a server that never answers ping', async () => {
    const { connection } = await connect(node, [fixture('no-ping.mjs')]);

    const error = await rejection(connection.probe(AbortSignal.timeout(200)));

    expect(error).toBeInstanceOf(CallError);
    expect((error as CallError).kind).toBe('aborted');
    expect(connection.alive).toBe(true);
  });
});

describe('Connection.callTool', () => {
  it('maps a JSON-RPC internal error to kind internal', async () => {
    const { connection } = await connect(node, [fixture('flaky.mjs')]);

    const error = await rejection(connection.callTool('fail', {}, call));

    expect(error).toMatchObject({ kind: 'internal', rpcCode: -32603 });
  });

  it('maps a JSON-RPC invalid params error to kind invalid_params', async () => {
    const { connection } = await connect(node, [fixture('flaky.mjs')]);

    const error = await rejection(connection.callTool('invalid', {}, call));

    expect(error).toMatchObject({ kind: 'invalid_params', rpcCode: -32602 });
  });

  it('returns an isError result instead of throwing', async () => {
    const { connection } = await connect(node, [fixture('flaky.mjs')]);

    const result = await connection.callTool('tool-error', {}, call);

    expect(result.isError).toBe(true);
  });

  it('times out and tells the server with notifications/cancelled', async () => {
    const { connection } = await connect(node, [fixture('flaky.mjs')]);
    const options = { timeoutMs: 150, maxTotalMs: 1000 };

    const error = await rejection(connection.callTool('slow', { ms: 5000 }, options));
    // stderr and stdout are separate pipes: round trips until the server's stderr line is in.
    for (let i = 0; i < 50 && !connection.stderrTail().includes('slow cancelled'); i += 1) {
      await connection.callTool('ok', {}, call);
    }

    expect(error).toMatchObject({ kind: 'timeout' });
    expect(connection.stderrTail()).toContain('slow cancelled');
  });

  it('maps an abort by the caller to kind aborted', async () => {
    const { connection } = await connect(node, [fixture('flaky.mjs')]);
    const controller = new AbortController();

    const pending = rejection(
      connection.callTool('slow', { ms: 5000 }, { ...call, signal: controller.signal }),
    );
    controller.abort();

    expect(await pending).toMatchObject({ kind: 'aborted' });
  });

  it('fails with kind transport and reports the exit when the server crashes', async () => {
    const { connection } = await connect(node, [fixture('flaky.mjs')]);
    const lost = deferred<LostInfo>();
    connection.onLost(lost.resolve);

    const error = await rejection(connection.callTool('crash', {}, call));

    expect(error).toMatchObject({ kind: 'transport' });
    expect(await lost.promise).toMatchObject({
      reason: 'process_exited',
      exitCode: 1,
      clean: false,
    });
    expect(connection.alive).toBe(false);
  });
});

describe('tools/list_changed', () => {
  it('refetches the list and reports the diff', async () => {
    const { connection } = await connect(node, [fixture('flaky.mjs')]);
    const changed = deferred<{ tools: readonly Tool[]; diff: ToolsDiff }>();
    connection.onToolsChanged((tools, diff) => changed.resolve({ tools, diff }));

    await connection.callTool('add-tool', { name: 'fresh' }, call);
    const { tools, diff } = await changed.promise;

    expect(diff).toEqual({ added: ['fresh'], removed: [], changed: [] });
    expect(tools.map((tool) => tool.name)).toContain('fresh');
    expect(connection.tools).toBe(tools);
  });

  it('diffs added, removed and changed tools by name, whatever the key order', () => {
    const schema = { type: 'object' } as const;
    const before: Tool[] = [
      { name: 'keep', description: 'same', inputSchema: schema },
      { name: 'edit', description: 'old', inputSchema: schema },
      { name: 'gone', inputSchema: schema },
    ];
    const after: Tool[] = [
      { inputSchema: schema, description: 'same', name: 'keep' },
      { name: 'edit', description: 'new', inputSchema: schema },
      { name: 'new', inputSchema: schema },
    ];

    expect(diffTools(before, after)).toEqual({
      added: ['new'],
      removed: ['gone'],
      changed: ['edit'],
    });
  });
});

describe('Connection.close', () => {
  it('never fires onLost after our own close', async () => {
    const { connection } = await connect(node, [EVERYTHING, 'stdio']);
    const seen: LostInfo[] = [];
    connection.onLost((info) => seen.push(info));

    await connection.close();
    await new Promise((resolve) => setImmediate(resolve));

    expect(seen).toEqual([]);
    expect(connection.alive).toBe(false);
  });

  it('makes later calls fail with kind transport', async () => {
    const { connection } = await connect(node, [EVERYTHING, 'stdio']);

    await connection.close();

    await expect(connection.callTool('echo', { message: 'x' }, call)).rejects.toMatchObject({
      kind: 'transport',
    });
  });
});
