import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import type { Transition } from '../machines/vocabulary.js';
import { ownStartedAt, procStat } from '../src/process-identity.js';
import { LOCK_FILE, acquireDirLock } from '../src/store/lock.js';
import { LOCK_NAMESPACE, OWNER_LOCK_ID } from '../src/store/migrations.js';
import { PostgresStore } from '../src/store/postgres.js';
import { canReachPostgres, createTestDatabase, eventually } from './helpers/postgres.js';
import { captureLogger, exited } from './mcp.harness.js';

const LOCK_MODULE = pathToFileURL(new URL('../src/store/lock.ts', import.meta.url).pathname).href;

describe('PGlite data directory lock: owner identity', () => {
  let dataDir: string;
  let lockPath: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'mcps-lock-id-'));
    lockPath = join(dataDir, LOCK_FILE);
  });

  afterEach(async () => {
    for (const child of children.splice(0)) {
      child.kill('SIGKILL');
      await exited(child);
    }
    await rm(lockPath, { force: true });
  });

  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('takes over a lock naming our own pid from an earlier life (a restarted pid 1)', async () => {
    for (const text of [`${process.pid}\n`, `${process.pid} ${ownStartedAt()}\n`]) {
      await writeFile(lockPath, text);

      const lock = await acquireDirLock(dataDir);
      await lock.release();
    }
  });

  it('refuses a second lock of a directory this process took in this life', async () => {
    const lock = await acquireDirLock(dataDir);
    try {
      await expect(acquireDirLock(dataDir)).rejects.toMatchObject({
        code: 'STORE_LOCKED',
        fields: { pid: process.pid },
      });
    } finally {
      await lock.release();
    }
  });

  it('records the owner start time beside its pid', async () => {
    const lock = await acquireDirLock(dataDir);
    try {
      const [pid, startedAt] = (await readFile(lockPath, 'utf8')).trim().split(' ').map(Number);

      expect(pid).toBe(process.pid);
      expect(Math.abs((startedAt ?? 0) - ownStartedAt())).toBeLessThan(2_000);
    } finally {
      await lock.release();
    }
  });

  it('takes over a lock naming a zombie', async () => {
    const zombie = await spawnZombie();
    await writeFile(lockPath, `${zombie}\n`);

    const lock = await acquireDirLock(dataDir);
    await lock.release();
  });

  it('takes over a lock naming a live pid that started at another time (reused)', async () => {
    const stranger = spawn('sleep', ['30'], { stdio: 'ignore' });
    children.push(stranger);
    const pid = stranger.pid ?? 0;
    await writeFile(lockPath, `${pid} ${ownStartedAt() - 3_600_000}\n`);

    const lock = await acquireDirLock(dataDir);
    await lock.release();
  });

  it('refuses a lock held by a live other owner with STORE_LOCKED', async () => {
    const code =
      `import(${JSON.stringify(LOCK_MODULE)}).then((m) => m.acquireDirLock(process.argv[1]))` +
      `.then(() => { console.log('locked'); setInterval(() => {}, 1000); })`;
    const owner = spawn(process.execPath, ['--import', 'tsx', '-e', code, dataDir], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(owner);
    await new Promise<void>((resolve) => {
      owner.stdout?.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('locked')) resolve();
      });
    });

    await expect(acquireDirLock(dataDir)).rejects.toMatchObject({
      code: 'STORE_LOCKED',
      fields: { pid: owner.pid },
    });
  });

  /** A pid that is a zombie now: `sleep 0` whose parent execs into a sleep that never waits. */
  async function spawnZombie(): Promise<number> {
    const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 30'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    children.push(parent);
    const pid = await new Promise<number>((resolve) => {
      parent.stdout?.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
    });

    return eventually(() => (procStat(pid)?.state === 'Z' ? pid : 0), 5_000, 'zombie');
  }
});

const reachable = await canReachPostgres();

describe.skipIf(!reachable)('PostgreSQL owner lock lost to another supervisor', () => {
  it('refuses every write while another supervisor holds the lock, then resumes', async () => {
    const db = await createTestDatabase();
    const { logger, lines } = captureLogger();
    const first = new PostgresStore({ databaseUrl: db.url, logger, lockRetryMaxMs: 200 });
    const second = new PostgresStore({ databaseUrl: db.url, logger: captureLogger().logger });
    try {
      await first.open();
      await db.sql`SELECT pg_terminate_backend(${await lockHolder(db.sql)})`;
      await eventually(async () => (await lockHolder(db.sql)) === null, 5_000, 'lock free');
      await second.open();
      const secondPid = await lockHolder(db.sql);
      await eventually(
        () => lines.some((line) => line.msg === 'store lock held by another supervisor'),
        5_000,
        'failed retake',
      );

      const writes: Promise<unknown>[] = [
        first.appendTransitions([transition(1)]),
        first.putServerStates([serverState()]),
        first.putGap({ firstSeq: 1, lastSeq: 2, count: 2, at: 1_700_000_000_000 }),
        first.putProcessGroup({
          server: 'a',
          pgid: 4242,
          ownerPid: process.pid,
          startedAt: Date.now(),
          command: 'node',
        }),
        first.deleteProcessGroup(4242),
        first.putSettings({ 'cache.maxEntries': 10 }),
        first.putRegistry({ name: 'a', entry: {}, updatedAt: 1_700_000_000_000 }),
        first.putUser({
          name: 'u',
          role: 'viewer',
          tokenHash: `sha256:${'a'.repeat(64)}`,
          servers: null,
          tags: null,
          updatedAt: 1_700_000_000_000,
        }),
      ];
      for (const write of writes) {
        await expect(write).rejects.toMatchObject({ code: 'STORE_LOCKED' });
      }
      expect(lines).toContainEqual(
        expect.objectContaining({
          level: 50,
          msg: 'store lock held by another supervisor',
          backendPid: secondPid,
        }),
      );

      await second.close();
      await eventually(
        () => lines.some((line) => line.msg === 'store lock taken again'),
        5_000,
        'lock taken again',
      );
      await first.appendTransitions([transition(1)]);

      expect((await first.history({})).map((t) => t.seq)).toEqual([1]);
    } finally {
      await Promise.all([first.close(), second.close()]);
      await db.drop();
    }
  });

  it('takes its lock back after losing its session when nobody else took it', async () => {
    const db = await createTestDatabase();
    const { logger, lines } = captureLogger();
    const store = new PostgresStore({ databaseUrl: db.url, logger, lockRetryMaxMs: 200 });
    try {
      await store.open();
      await db.sql`SELECT pg_terminate_backend(${await lockHolder(db.sql)})`;
      await eventually(
        () => lines.some((line) => line.msg === 'store lock taken again'),
        5_000,
        'lock taken again',
      );
      await store.appendTransitions([transition(8)]);

      expect((await store.history({ after: 7 })).map((t) => t.seq)).toEqual([8]);
    } finally {
      await store.close();
      await db.drop();
    }
  });
});

/** The backend pid holding the owner lock of the current database, or `null`. */
async function lockHolder(sql: Awaited<ReturnType<typeof createTestDatabase>>['sql']) {
  const rows = await sql<{ pid: number }[]>`
    SELECT l.pid FROM pg_locks l
    WHERE l.locktype = 'advisory' AND l.granted AND l.classid = ${LOCK_NAMESPACE}
      AND l.objid = ${OWNER_LOCK_ID} AND l.objsubid = 2
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`;

  return rows[0]?.pid ?? null;
}

function transition(seq: number): Transition {
  return {
    seq,
    server: 'a',
    from: 'connecting',
    to: 'closed',
    reason: 'connected',
    at: 1_700_000_000_000 + seq,
    detail: {},
  };
}

function serverState() {
  return {
    server: 'a',
    state: 'closed' as const,
    reason: 'connected',
    since: 1_700_000_000_000,
    retryAt: null,
    attempt: 0,
    stickyOpen: false,
    disabled: false,
    detail: {},
  };
}
