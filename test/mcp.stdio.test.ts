import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';

import { afterEach, describe, expect, it } from 'vitest';

import { openConnection } from '../src/mcp/connection.js';
import { groupAlive, killGroup, reapOrphans } from '../src/mcp/process-group.js';
import { StderrTail } from '../src/mcp/stderr-tail.js';
import { ProcessGroupTransport } from '../src/mcp/stdio-transport.js';
import { ConnectError, type Connection, type LostInfo } from '../src/mcp/types.js';
import { Redactor } from '../src/redact.js';
import {
  captureLogger,
  deferred,
  entry,
  EVERYTHING,
  exited,
  fixture,
  isLive,
  livePidsWith,
  openOptions,
  pgidOf,
} from './mcp.harness.js';

const open: Connection[] = [];
const node = process.execPath;
const call = { timeoutMs: 5000, maxTotalMs: 10_000 };

afterEach(async () => {
  await Promise.all(open.splice(0).map((connection) => connection.close()));
});

async function connect(options: ReturnType<typeof openOptions>): Promise<Connection> {
  const connection = await openConnection(options);
  open.push(connection);

  return connection;
}

function grandchildEntry(marker: string) {
  // The marker travels in env, so only the grandchild carries it on its command line.
  return entry({
    command: 'sh',
    args: ['-c', `"${node}" "${fixture('grandchild.mjs')}"`],
    env: { GRANDCHILD_MARKER: marker },
  });
}

describe('ProcessGroupTransport', () => {
  it('runs the server as the leader of its own process group', async () => {
    const connection = await connect(openOptions(entry({ command: node, args: [EVERYTHING] })));
    const pid = connection.pid ?? 0;

    expect(pid).toBeGreaterThan(0);
    expect(pgidOf(pid)).toBe(pid);
    expect(pgidOf(pid)).not.toBe(pgidOf(process.pid));
  });

  it('gives the child the default environment and its env, never the parent secrets', async () => {
    process.env.DATABASE_URL = 'postgres://user:parent-only-secret@db/x';
    try {
      const server = entry({
        command: node,
        args: [EVERYTHING],
        env: { FROM_ENTRY: 'entry-value' },
      });
      const connection = await connect(openOptions(server));

      const result = await connection.callTool('get-env', {}, call);
      const text = JSON.stringify(result.content);

      expect(text).toContain('entry-value');
      expect(text).toContain('PATH');
      expect(text).not.toContain('parent-only-secret');
    } finally {
      delete process.env.DATABASE_URL;
    }
  });

  it('reports a SIGKILL of the server through onLost at once, with the signal', async () => {
    const connection = await connect(openOptions(entry({ command: node, args: [EVERYTHING] })));
    const lost = deferred<LostInfo>();
    connection.onLost(lost.resolve);

    process.kill(connection.pid ?? 0, 'SIGKILL');
    const info = await lost.promise;

    expect(info).toMatchObject({ reason: 'process_exited', signal: 'SIGKILL', clean: false });
    expect(info.exitCode).toBeNull();
    expect(connection.alive).toBe(false);
  });

  it('treats EOF on stdout as the end even while the process still runs', async () => {
    const closedStdout = 'require("fs").closeSync(1); setInterval(() => {}, 1000)';
    const gone = deferred<number>();
    const transport = new ProcessGroupTransport({
      command: node,
      args: ['-e', closedStdout],
      env: {},
      graceMs: 500,
      stderrTailBytes: 1024,
      logger: captureLogger().logger,
      redactor: new Redactor(),
      onGroupGone: gone.resolve,
    });
    const closed = deferred<void>();
    transport.onclose = () => closed.resolve();

    await transport.start();
    await closed.promise;

    expect(transport.exit?.via).toBe('eof');
    expect(await gone.promise).toBe(transport.pid);
    expect(isLive(transport.pid ?? 0)).toBe(false);
    await transport.close();
  });

  it('keeps working through non-protocol stdout lines and logs each one', async () => {
    const options = openOptions(entry({ command: node, args: [fixture('noisy-stdout.mjs')] }));
    const connection = await connect(options);

    const result = await connection.callTool('echo', { message: 'still fine' }, call);
    await connection.callTool('echo', { message: 'and again' }, call);

    expect(JSON.stringify(result.content)).toContain('still fine');
    const warnings = options.lines.filter((line) => line.msg === 'non-protocol output on stdout');
    expect(warnings.map((line) => line.stdout)).toEqual(
      expect.arrayContaining(['booting noisy server...', 'echoing still fine']),
    );
    expect(warnings.every((line) => line.level === 40)).toBe(true);
  });

  it('masks the entry secrets in the stderr tail', async () => {
    const secret = 'tok-4f9a8b7c6d5e';
    const server = entry({
      command: node,
      args: [fixture('exit-on-start.mjs')],
      env: { FIXTURE_TOKEN: secret },
      secrets: [secret],
    });

    const error = await openConnection(openOptions(server)).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).stderr).toContain('token=***');
    expect((error as ConnectError).stderr).not.toContain(secret);
  });
});

describe('process groups', () => {
  it('close() leaves no process of an sh -c wrapper, grandchild included', async () => {
    const marker = `gc-${randomUUID()}`;
    const gone = deferred<number>();
    const connection = await connect(
      openOptions(grandchildEntry(marker), { onGroupGone: gone.resolve }),
    );
    const pgid = connection.pid ?? 0;
    expect(livePidsWith(marker)).toHaveLength(1);

    await connection.close();

    expect(await gone.promise).toBe(pgid);
    expect(livePidsWith(marker)).toEqual([]);
    expect(groupAlive(pgid)).toBe(false);
  });

  it('detects a killed leader whose grandchild holds the pipes, then kills the rest', async () => {
    const marker = `gc-${randomUUID()}`;
    const gone = deferred<number>();
    const connection = await connect(
      openOptions(grandchildEntry(marker), { onGroupGone: gone.resolve }),
    );
    const lost = deferred<LostInfo>();
    connection.onLost(lost.resolve);

    process.kill(connection.pid ?? 0, 'SIGKILL');

    expect(await lost.promise).toMatchObject({ reason: 'process_exited', signal: 'SIGKILL' });
    await gone.promise;
    expect(livePidsWith(marker)).toEqual([]);
  });

  it('reapOrphans kills a group whose owner pid is dead', async () => {
    const marker = `orphan-${randomUUID()}`;
    const group = spawn(node, ['-e', 'setInterval(() => {}, 1000)', marker], {
      detached: true,
      stdio: 'ignore',
    });
    const owner = spawn(node, ['-e', '']);
    await exited(owner);
    const { logger, lines } = captureLogger();
    const record = {
      server: 'orphan',
      pgid: group.pid ?? 0,
      ownerPid: owner.pid ?? 0,
      startedAt: Date.now(),
      command: 'node',
    };

    const reaped = await reapOrphans([record], logger, { graceMs: 500 });
    await exited(group);

    expect(reaped).toEqual([record.pgid]);
    expect(livePidsWith(marker)).toEqual([]);
    expect(lines.some((line) => line.msg === 'reaped orphaned process group')).toBe(true);
  });

  it('reapOrphans does not list an orphan whose group is already gone', async () => {
    const owner = spawn(node, ['-e', '']);
    const group = spawn(node, ['-e', ''], { detached: true, stdio: 'ignore' });
    await Promise.all([exited(owner), exited(group)]);
    const record = {
      server: 'gone',
      pgid: group.pid ?? 0,
      ownerPid: owner.pid ?? 0,
      startedAt: Date.now(),
      command: 'node',
    };

    expect(await reapOrphans([record], captureLogger().logger)).toEqual([]);
  });

  it('reapOrphans spares an unrelated group whose pgid reuses a recorded one', async () => {
    // After a reboot with a kept data dir (or a store shared across hosts) a recorded pgid may
    // lead someone else's session: here a `setsid sleep` (detached is setsid) started long
    // after the record, whose owner is dead.
    const stranger = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
    const owner = spawn(node, ['-e', '']);
    await exited(owner);
    const pgid = stranger.pid ?? 0;
    const record = {
      server: 'rebooted',
      pgid,
      ownerPid: owner.pid ?? 0,
      startedAt: Date.now() - 3_600_000,
      command: 'node',
    };
    const { logger, lines } = captureLogger();

    try {
      const reaped = await reapOrphans([record], logger, { graceMs: 500 });

      expect(reaped).toEqual([]);
      expect(isLive(pgid)).toBe(true);
      expect(lines).toContainEqual(
        expect.objectContaining({
          msg: 'orphan record does not match a live group',
          pgid,
          server: 'rebooted',
        }),
      );
    } finally {
      await killGroup(pgid, 500);
    }
  });

  it('reapOrphans kills an orphaned group whose leader is gone but members remain', async () => {
    const marker = `member-${randomUUID()}`;
    const leader = spawn(
      'sh',
      ['-c', `"${node}" -e "setInterval(() => {}, 1000)" ${marker} & exit 0`],
      { detached: true, stdio: 'ignore' },
    );
    await exited(leader);
    const owner = spawn(node, ['-e', '']);
    await exited(owner);
    const record = {
      server: 'leaderless',
      pgid: leader.pid ?? 0,
      ownerPid: owner.pid ?? 0,
      // No leader is left to compare with: the live members alone prove the group is ours.
      startedAt: Date.now() - 3_600_000,
      command: 'sh',
    };

    const reaped = await reapOrphans([record], captureLogger().logger, { graceMs: 500 });

    expect(reaped).toEqual([record.pgid]);
    expect(livePidsWith(marker)).toEqual([]);
  });

  it('reapOrphans leaves the groups of a live owner alone', async () => {
    const group = spawn(node, ['-e', 'setInterval(() => {}, 1000)'], {
      detached: true,
      stdio: 'ignore',
    });
    const pgid = group.pid ?? 0;
    const record = { server: 'mine', pgid, ownerPid: process.pid, startedAt: Date.now() };

    try {
      const reaped = await reapOrphans([{ ...record, command: 'node' }], captureLogger().logger);

      expect(reaped).toEqual([]);
      expect(isLive(pgid)).toBe(true);
    } finally {
      await killGroup(pgid, 500);
    }
  });
});

describe('StderrTail', () => {
  it('keeps at most its byte bound, newest last', () => {
    const tail = new StderrTail(32, new Redactor());

    for (let i = 0; i < 20; i += 1) tail.push(`line ${i}\n`);

    expect(Buffer.byteLength(tail.text())).toBeLessThanOrEqual(32);
    expect(tail.text().endsWith('line 19\n')).toBe(true);
    expect(tail.lastLine()).toBe('line 19');
  });

  it('masks a secret split across two chunks', () => {
    const tail = new StderrTail(1024, new Redactor(['split-secret-value']));

    tail.push('auth failed for split-sec');
    tail.push('ret-value, retrying\n');

    expect(tail.text()).toBe('auth failed for ***, retrying\n');
  });
});
