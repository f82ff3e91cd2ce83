import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Transition } from '../machines/vocabulary.js';
import { isSupervisorError } from '../src/errors.js';
import { silentLogger } from '../src/log.js';
import { LOCK_FILE, acquireDirLock } from '../src/store/lock.js';
import { MIGRATIONS, migrate } from '../src/store/migrations.js';
import { openStore } from '../src/store/open.js';
import { PgliteStore } from '../src/store/pglite.js';
import { PostgresStore, postgresDriver } from '../src/store/postgres.js';
import type { ServerStateRecord, Store, UserRecord } from '../src/store/store.js';

const ADMIN_URL = process.env.MCPS_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const logger = silentLogger();

/** One database of a target; every `store()` call is a new, unopened store on it. */
interface Database {
  store(): Store;
}

interface Target {
  createDatabase(): Promise<Database>;
  dispose(): Promise<void>;
}

/** The contract every Store adapter keeps, run against each of them. */
function storeContract(
  label: string,
  makeTarget: () => Promise<Target>,
  { shared }: { shared: boolean },
): void {
  describe(`Store contract: ${label}`, () => {
    let target: Target;
    let db: Database;
    let store: Store;
    let nextSeq = 1;
    let serverCount = 0;

    const seqs = (count: number): number[] => {
      const first = nextSeq;
      nextSeq += count;
      return Array.from({ length: count }, (_, i) => first + i);
    };
    const serverName = (): string => `srv-${++serverCount}`;

    beforeAll(async () => {
      target = await makeTarget();
      db = await target.createDatabase();
      store = db.store();
      await store.open();
    });

    afterAll(async () => {
      await store?.close();
      await target?.dispose();
    });

    // First on purpose: the shared database is still empty (a second initdb would cost seconds).
    it('answers maxSeq 0 and empty reads on an empty database', async () => {
      expect(await store.maxSeq()).toBe(0);
      expect(await store.history({})).toEqual([]);
      expect(await store.settings()).toEqual({});
      expect(await store.gaps()).toEqual([]);
      expect(await store.serverStates()).toEqual([]);
    });

    it('returns appended transitions oldest first, deep-equal', async () => {
      const server = serverName();
      const rows = seqs(3).map((seq, i) =>
        transition(seq, server, i === 0 ? { from: null, to: 'connecting' } : {}),
      );
      await store.appendTransitions([rows[2], rows[0], rows[1]]);

      expect(await store.history({ server })).toEqual(rows);
    });

    it('skips a transition whose seq is already stored', async () => {
      const server = serverName();
      const [seq] = seqs(1);
      await store.appendTransitions([transition(seq, server, { reason: 'connected' })]);
      await store.appendTransitions([
        transition(seq, server, { reason: 'probe_failed', to: 'open' }),
      ]);

      const stored = await store.history({ server });
      expect(stored).toHaveLength(1);
      expect(stored[0].reason).toBe('connected');
    });

    it('filters history by server', async () => {
      const [a, b] = [serverName(), serverName()];
      const [s1, s2, s3] = seqs(3);
      await store.appendTransitions([transition(s1, a), transition(s2, b), transition(s3, a)]);

      expect((await store.history({ server: a })).map((t) => t.seq)).toEqual([s1, s3]);
    });

    it('returns only transitions after the given seq', async () => {
      const server = serverName();
      const all = seqs(4);
      await store.appendTransitions(all.map((seq) => transition(seq, server)));

      const after = await store.history({ server, after: all[1] });
      expect(after.map((t) => t.seq)).toEqual(all.slice(2));
    });

    it('limits history to the oldest rows after the cursor', async () => {
      const server = serverName();
      const all = seqs(5);
      await store.appendTransitions(all.map((seq) => transition(seq, server)));

      const page = await store.history({ server, after: all[0], limit: 2 });
      expect(page.map((t) => t.seq)).toEqual([all[1], all[2]]);
    });

    it('reports the highest stored seq as maxSeq', async () => {
      const server = serverName();
      const [low, high] = seqs(2);
      await store.appendTransitions([transition(high, server), transition(low, server)]);

      expect(await store.maxSeq()).toBe(high);
    });

    it('prunes transitions older than the cutoff and counts them', async () => {
      const server = serverName();
      const [old1, old2, young] = seqs(3);
      await store.appendTransitions([
        transition(old1, server, { at: 1_000 }),
        transition(old2, server, { at: 2_000 }),
        transition(young, server, { at: 5_000 }),
      ]);

      expect(await store.pruneHistory(3_000)).toBe(2);
      expect((await store.history({ server })).map((t) => t.seq)).toEqual([young]);
    });

    it('round-trips nested JSON details deep-equal', async () => {
      const server = serverName();
      const [seq] = seqs(1);
      const detail = {
        message: 'quote " backslash \\ newline \n unicode é ✓',
        exitCode: null,
        nested: { list: [1, 2.5, -3, true, false, null, { deep: ['x'] }], empty: {} },
        big: 9_007_199_254_740_991,
      };
      await store.appendTransitions([transition(seq, server, { detail })]);

      expect((await store.history({ server }))[0].detail).toEqual(detail);
    });

    it('keeps millisecond timestamps exact', async () => {
      const server = serverName();
      const ats = [1_700_000_000_123, 1_799_999_999_999, 946_684_800_001];
      const rows = seqs(3).map((seq, i) => transition(seq, server, { at: ats[i] }));
      await store.appendTransitions(rows);

      expect((await store.history({ server })).map((t) => t.at)).toEqual(ats);
    });

    it('upserts server states, the latest per server winning', async () => {
      const server = serverName();
      await store.putServerStates([serverState(server, { state: 'closed', attempt: 0 })]);
      const latest = serverState(server, {
        state: 'open',
        reason: 'probe_timeout',
        retryAt: 1_700_000_060_000,
        attempt: 3,
        stickyOpen: true,
        disabled: true,
        detail: { user: 'ops', list: [1, { a: null }] },
      });
      await store.putServerStates([serverState(server, { attempt: 9 }), latest]);

      const mine = (await store.serverStates()).filter((s) => s.server === server);
      expect(mine).toEqual([latest]);
    });

    it('deletes a server state', async () => {
      const [keep, gone] = [serverName(), serverName()];
      await store.putServerStates([serverState(keep), serverState(gone)]);
      await store.deleteServerState(gone);

      const names = (await store.serverStates()).map((s) => s.server);
      expect(names).toContain(keep);
      expect(names).not.toContain(gone);
    });

    it('records, lists and deletes process groups', async () => {
      const server = serverName();
      const group = {
        server,
        pgid: 40_000 + serverCount,
        ownerPid: 123,
        startedAt: 1_700_000_000_456,
      };
      await store.putProcessGroup({ ...group, command: 'npx -y server-memory' });
      await store.putProcessGroup({ ...group, pgid: group.pgid + 1, command: 'uvx other' });
      await store.deleteProcessGroup(group.pgid + 1);

      const mine = (await store.processGroups()).filter((g) => g.server === server);
      expect(mine).toEqual([{ ...group, command: 'npx -y server-memory' }]);
    });

    it('stores gaps and rewrites one that grew under the same first seq', async () => {
      const [first] = seqs(10);
      await store.putGap({ firstSeq: first, lastSeq: first + 4, count: 5, at: 1_700_000_000_001 });
      await store.putGap({ firstSeq: first, lastSeq: first + 9, count: 10, at: 1_700_000_000_002 });

      const mine = (await store.gaps()).filter((g) => g.firstSeq === first);
      expect(mine).toEqual([
        { firstSeq: first, lastSeq: first + 9, count: 10, at: 1_700_000_000_002 },
      ]);
    });

    it('stores settings of every JSON type and reads them back', async () => {
      const values = {
        'test.number': 30_000,
        'test.string': 'consecutive',
        'test.bool': false,
        'test.object': { a: [1, 'two'] },
      };
      await store.putSettings(values);

      expect(await store.settings()).toMatchObject(values);
    });

    it('removes a setting written as null', async () => {
      await store.putSettings({ 'test.removed': 5, 'test.kept': 6 });
      await store.putSettings({ 'test.removed': null });

      const settings = await store.settings();
      expect(settings).not.toHaveProperty('test.removed');
      expect(settings['test.kept']).toBe(6);
    });

    it('upserts, lists and deletes registry entries', async () => {
      const [name, other] = [serverName(), serverName()];
      const entry = { url: 'https://example.test/mcp', headers: { 'X-Key': 'v' }, tags: ['a'] };
      await store.putRegistry({ name, entry: { url: 'old' }, updatedAt: 1_700_000_000_000 });
      await store.putRegistry({ name, entry, updatedAt: 1_700_000_000_999 });
      await store.putRegistry({ name: other, entry: {}, updatedAt: 1_700_000_000_000 });
      await store.deleteRegistry(other);

      const mine = (await store.registry()).filter((r) => r.name === name || r.name === other);
      expect(mine).toEqual([{ name, entry, updatedAt: 1_700_000_000_999 }]);
    });

    it('upserts, lists and deletes users', async () => {
      const viewer = user('viewer-1', { servers: ['a', 'b'], tags: ['prod'] });
      await store.putUser(user('viewer-1', { role: 'admin' }));
      await store.putUser(viewer);
      await store.putUser(user('gone-1'));
      await store.deleteUser('gone-1');

      const mine = (await store.users()).filter((u) => ['viewer-1', 'gone-1'].includes(u.name));
      expect(mine).toEqual([viewer]);
    });

    it('keeps absent visibility lists as null, apart from empty ones', async () => {
      await store.putUser(user('open-1'));
      await store.putUser(user('empty-1', { servers: [], tags: null }));

      const rows = (await store.users()).filter((u) => u.name.endsWith('-1'));
      expect(rows.find((u) => u.name === 'open-1')).toMatchObject({ servers: null, tags: null });
      expect(rows.find((u) => u.name === 'empty-1')).toMatchObject({ servers: [], tags: null });
    });

    it('refuses a token that is not stored as a sha256 hash', async () => {
      const clear = user('clear-1', { tokenHash: 'a-clear-token-0123456789' });

      await expect(store.putUser(clear)).rejects.toThrow();
      expect((await store.users()).map((u) => u.name)).not.toContain('clear-1');
    });

    it('refuses a role other than admin or viewer', async () => {
      const root = { ...user('root-1'), role: 'root' as UserRecord['role'] };

      await expect(store.putUser(root)).rejects.toThrow();
    });

    it('refuses a second user with the same token hash', async () => {
      await store.putUser(user('twin-a', { tokenHash: hashOf('f') }));

      await expect(store.putUser(user('twin-b', { tokenHash: hashOf('f') }))).rejects.toThrow();
    });

    it('refuses queries before open with STORE_UNAVAILABLE', async () => {
      const unopened = db.store();

      await expect(unopened.maxSeq()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    });

    // An in-memory PGlite has nothing to reopen or lock: these two are not even registered.
    const sharedIt = shared ? it : () => undefined;

    sharedIt('keeps its data when reopened, migrations running again harmlessly', async () => {
      const server = serverName();
      const [seq] = seqs(1);
      await store.appendTransitions([transition(seq, server)]);
      await store.close();
      store = db.store();
      await store.open();

      expect((await store.history({ server })).map((t) => t.seq)).toEqual([seq]);
    });

    sharedIt('refuses a second owner with STORE_LOCKED until the first closes', async () => {
      const second = db.store();
      const refusal = await second.open().then(
        () => null,
        (err: unknown) => err,
      );
      expect(isSupervisorError(refusal) && refusal.code).toBe('STORE_LOCKED');

      await store.close();
      await second.open();
      await second.close();
      store = db.store();
      await store.open();
    });
  });
}

function transition(seq: number, server: string, overrides: Partial<Transition> = {}): Transition {
  return {
    seq,
    server,
    from: 'connecting',
    to: 'closed',
    reason: 'connected',
    at: 1_700_000_000_000 + seq,
    detail: { attempt: 1 },
    ...overrides,
  };
}

let userCount = 0;

/** `sha256:` and 64 copies of one hex digit. */
function hashOf(digit: string): string {
  return `sha256:${digit.repeat(64)}`;
}

function user(name: string, overrides: Partial<UserRecord> = {}): UserRecord {
  userCount += 1;
  return {
    name,
    role: 'viewer',
    tokenHash: `sha256:${userCount.toString(16).padStart(64, '0')}`,
    servers: null,
    tags: null,
    updatedAt: 1_700_000_000_123 + userCount,
    ...overrides,
  };
}

function serverState(
  server: string,
  overrides: Partial<ServerStateRecord> = {},
): ServerStateRecord {
  return {
    server,
    state: 'closed',
    reason: 'connected',
    since: 1_700_000_000_321,
    retryAt: null,
    attempt: 0,
    stickyOpen: false,
    disabled: false,
    detail: {},
    ...overrides,
  };
}

// PGlite in memory: every store is its own database, so the lock tests do not apply.
storeContract(
  'PGlite in memory',
  async () => ({
    createDatabase: async () => ({ store: () => new PgliteStore({ logger }) }),
    dispose: async () => undefined,
  }),
  { shared: false },
);

// PGlite with a data directory: each database is a fresh temp directory.
storeContract(
  'PGlite data directory',
  async () => {
    const dirs: string[] = [];
    return {
      async createDatabase() {
        const dataDir = await mkdtemp(join(tmpdir(), 'mcps-store-'));
        dirs.push(dataDir);
        return { store: () => new PgliteStore({ dataDir, logger }) };
      },
      async dispose() {
        await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
      },
    };
  },
  { shared: true },
);

const postgresReachable = await canReach(ADMIN_URL);

if (postgresReachable) {
  storeContract('PostgreSQL', postgresTarget, { shared: true });
} else if (process.env.CI === 'true') {
  describe('Store contract: PostgreSQL', () => {
    it('reaches PostgreSQL (required under CI)', () => {
      throw new Error(`PostgreSQL is unreachable at ${redactUrl(ADMIN_URL)}`);
    });
  });
} else {
  console.log(`PostgreSQL unreachable at ${redactUrl(ADMIN_URL)}: skipping its store tests`);
}

describe('PGlite data directory lock', () => {
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'mcps-lock-'));
  });

  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('takes over a lock left by a process that is gone', async () => {
    const path = join(dataDir, LOCK_FILE);
    await writeFile(path, `${await deadPid()}\n`);

    const lock = await acquireDirLock(dataDir);
    try {
      expect(await readFile(path, 'utf8')).toMatch(new RegExp(`^${process.pid} \\d+\n$`));
    } finally {
      await lock.release();
    }
  });

  it('removes its lock file on release', async () => {
    const lock = await acquireDirLock(dataDir);
    await lock.release();

    await expect(readFile(join(dataDir, LOCK_FILE))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a lock held by a live process, naming the directory and pid', async () => {
    // The test runner's parent process is alive for as long as this test runs.
    await writeFile(join(dataDir, LOCK_FILE), `${process.ppid}\n`);
    const store = new PgliteStore({ dataDir, logger });

    const refusal = await store.open().then(
      () => null,
      (err: unknown) => err,
    );
    expect(refusal).toMatchObject({ code: 'STORE_LOCKED', fields: { pid: process.ppid } });
    expect((refusal as Error).message).toContain(dataDir);
    expect((refusal as Error).message).toContain(String(process.ppid));
    await rm(join(dataDir, LOCK_FILE));
  });
});

if (postgresReachable) {
  describe('PostgreSQL migrations', () => {
    let target: Target & { urls: string[] };

    beforeAll(async () => {
      target = await postgresTarget();
    });

    afterAll(async () => {
      await target.dispose();
    });

    it('applies every migration once when two connections migrate at the same time', async () => {
      await target.createDatabase();
      const pools = [0, 1].map(() => postgres(target.urls[0], { max: 2, onnotice: () => {} }));
      try {
        const runs = await Promise.all(pools.map((pool) => migrate(postgresDriver(pool))));
        const again = await migrate(postgresDriver(pools[0]));

        expect(runs.flat().sort()).toEqual(MIGRATIONS.map((m) => m.version));
        expect(again).toEqual([]);
      } finally {
        await Promise.all(pools.map((pool) => pool.end()));
      }
    });

    it('opens a locked, migrated PostgresStore for a databaseUrl spec', async () => {
      await target.createDatabase();
      const store = await openStore({ databaseUrl: target.urls.at(-1) ?? '' }, logger);
      try {
        expect(store.kind).toBe('postgres');
        expect(await store.maxSeq()).toBe(0);
      } finally {
        await store.close();
      }
    });

    it('refuses an unreachable database with STORE_UNAVAILABLE', async () => {
      const url = new URL(ADMIN_URL);
      url.port = '1';
      const store = new PostgresStore({ databaseUrl: url.href, logger, connectTimeoutMs: 1_000 });

      await expect(store.open()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    });

    it('stores details as jsonb objects, not strings', async () => {
      const db = await target.createDatabase();
      const store = db.store();
      await store.open();
      await store.appendTransitions([transition(1, 'a', { detail: { k: 'v' } })]);
      await store.close();

      const sql = postgres(target.urls.at(-1) ?? '', { max: 1, onnotice: () => {} });
      try {
        const rows = await sql`SELECT jsonb_typeof(detail) AS type FROM transitions`;
        expect(rows.map((row) => row.type)).toEqual(['object']);
      } finally {
        await sql.end();
      }
    });

    it('notifies the settings channel when a setting changes', async () => {
      const db = await target.createDatabase();
      const store = db.store();
      await store.open();
      const sql = postgres(target.urls.at(-1) ?? '', { max: 1, onnotice: () => {} });
      try {
        const keys: string[] = [];
        const heard = new Promise<void>((resolve) => {
          void sql.listen('mcp_supervisor_settings', (key) => {
            keys.push(key);
            if (keys.length === 2) resolve();
          });
        });
        await sql`SELECT 1`;
        await store.putSettings({ 'health.intervalMs': 10_000 });
        await store.putSettings({ 'health.intervalMs': null });
        await heard;

        expect(keys).toEqual(['health.intervalMs', 'health.intervalMs']);
      } finally {
        await sql.end();
        await store.close();
      }
    });
  });
}

/** Each database is a fresh `mcps_test_<random>` on the server, dropped at the end. */
async function postgresTarget(): Promise<Target & { urls: string[] }> {
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  const names: string[] = [];
  const urls: string[] = [];
  return {
    urls,
    async createDatabase() {
      const name = `mcps_test_${randomBytes(6).toString('hex')}`;
      await admin.unsafe(`CREATE DATABASE ${name}`);
      names.push(name);
      const url = new URL(ADMIN_URL);
      url.pathname = `/${name}`;
      urls.push(url.href);
      return { store: () => new PostgresStore({ databaseUrl: url.href, logger }) };
    },
    async dispose() {
      for (const name of names) await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    },
  };
}

async function canReach(url: string): Promise<boolean> {
  const sql = postgres(url, { max: 1, connect_timeout: 2, onnotice: () => {} });
  try {
    await sql`SELECT 1`;
    return true;
  } catch {
    return false;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid ?? 2 ** 22 + 1;
}

function redactUrl(url: string): string {
  const parsed = new URL(url);
  parsed.password = parsed.password ? '***' : '';
  return parsed.href;
}
