/**
 * Settings: precedence, refusal of bad values, and live changes through PUT /api/settings and
 * (on PostgreSQL) plain SQL, seen on a real server's probe interval.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';

import { isSupervisorError } from '../src/errors.js';
import { silentLogger } from '../src/log.js';
import { PgliteStore } from '../src/store/pglite.js';
import type { Store } from '../src/store/store.js';
import { createSupervisor, type Supervisor } from '../src/supervisor/create.js';
import { ServerRuntime } from '../src/supervisor/server-runtime.js';
import { SettingsService } from '../src/supervisor/settings-service.js';
import {
  ADMIN_URL,
  canReachPostgres,
  createTestDatabase,
  eventually,
  type TestDatabase,
} from './helpers/postgres.js';
import { captureLogger, fixture } from './mcp.harness.js';

const logger = silentLogger();

describe('SettingsService', () => {
  let store: Store;

  beforeAll(async () => {
    store = new PgliteStore({ logger });
    await store.open();
  });

  afterAll(async () => {
    await store.close();
  });

  afterEach(async () => {
    const keys = Object.keys(await store.settings());
    await store.putSettings(Object.fromEntries(keys.map((k) => [k, null])));
  });

  async function service(file: Record<string, unknown> = {}): Promise<SettingsService> {
    const settings = new SettingsService({ store, fileSettings: file, logger });
    await settings.load();
    return settings;
  }

  it('refuses a bad value with its key and reason, writing nothing', async () => {
    const settings = await service();

    const refusal = await settings.put({ 'health.intervalMs': -1, 'cache.maxSize': 5 }).then(
      () => null,
      (err: unknown) => err,
    );

    expect(isSupervisorError(refusal) && refusal.code).toBe('INVALID_SETTING');
    expect(refusal).toMatchObject({ fields: { key: 'health.intervalMs' } });
    expect(await store.settings()).toEqual({});
    expect(settings.effective()['cache.maxSize']).toBe(1000);
  });

  it('refuses an unknown key by name', async () => {
    const settings = await service();

    await expect(settings.put({ 'health.interval': 5 })).rejects.toMatchObject({
      code: 'INVALID_SETTING',
      fields: { key: 'health.interval' },
    });
  });

  it('refuses a value that breaks a rule against the config file layer', async () => {
    const settings = await service({ 'backoff.capMs': 500 });

    await expect(settings.put({ 'backoff.baseMs': 1_000 })).rejects.toMatchObject({
      code: 'INVALID_SETTING',
    });
    expect(await store.settings()).toEqual({});
  });

  it('puts the table over the config file and a null back to the file value', async () => {
    const settings = await service({ 'cache.ttlMs': 1_000 });

    expect((await settings.put({ 'cache.ttlMs': 2_000 }))['cache.ttlMs']).toBe(2_000);
    expect((await settings.put({ 'cache.ttlMs': null }))['cache.ttlMs']).toBe(1_000);
  });

  it('applies a change once however often it is reloaded', async () => {
    const settings = await service();
    const applied: string[][] = [];
    await settings.start((_next, changed) => applied.push(changed));

    await settings.put({ 'cache.maxSize': 7 });
    await Promise.all([settings.reload(), settings.reload()]);
    await settings.reload();

    expect(applied).toEqual([['cache.maxSize']]);
  });

  it('keeps the old value when a stored value is bad, and logs its key', async () => {
    const { logger: captured, lines } = captureLogger();
    const settings = new SettingsService({ store, fileSettings: {}, logger: captured });
    await settings.load();
    await settings.put({ 'health.intervalMs': 4_000 });

    await store.putSettings({ 'health.intervalMs': 'soon' });
    await settings.reload();

    expect(settings.effective()['health.intervalMs']).toBe(4_000);
    expect(lines).toContainEqual(
      expect.objectContaining({ msg: 'stored setting refused', key: 'health.intervalMs' }),
    );
  });

  it('keeps the table layer in memory without a store', async () => {
    const settings = new SettingsService({ store: null, fileSettings: {}, logger });
    await settings.load();

    expect((await settings.put({ 'call.maxConcurrent': 3 }))['call.maxConcurrent']).toBe(3);
  });
});

const reachable = await canReachPostgres();
const live = reachable ? describe : describe.skip;

if (!reachable && process.env.CI === 'true') {
  describe('settings on PostgreSQL', () => {
    it('reaches PostgreSQL (required under CI)', () => {
      throw new Error(`PostgreSQL is unreachable at ${ADMIN_URL}`);
    });
  });
} else if (!reachable) {
  console.log('PostgreSQL unreachable: skipping the live settings tests');
}

live('settings on PostgreSQL, live', () => {
  let db: TestDatabase;
  let supervisor: Supervisor;
  const probes = vi.spyOn(ServerRuntime.prototype, 'probe');

  beforeAll(async () => {
    db = await createTestDatabase();
    supervisor = await createSupervisor({
      servers: { flaky: { command: process.execPath, args: [fixture('flaky.mjs')] } },
      settings: { 'health.intervalMs': 600_000, 'shutdown.graceMs': 300 },
      store: { databaseUrl: db.url },
      http: { port: 0 },
      logger,
    });
    await eventually(() => supervisor.servers()[0]?.state === 'closed', 10_000, 'closed');
  });

  afterAll(async () => {
    probes.mockRestore();
    await supervisor?.stop();
    await db?.drop();
  });

  afterEach(async () => {
    // Back to no probes before the next test; the row goes, the file's 600 s applies again.
    await db.sql`DELETE FROM settings`;
    await eventually(() => supervisor.settings()['health.intervalMs'] === 600_000);
  });

  async function put(body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
    const response = await fetch(`${supervisor.url}/api/settings`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  }

  it('answers a bad PUT with 400 naming the key, changing nothing', async () => {
    const answer = await put({ 'health.intervalMs': 0 });

    expect(answer.status).toBe(400);
    expect(answer.json).toMatchObject({
      error: { code: 'INVALID_SETTING', key: 'health.intervalMs' },
    });
    expect(await db.sql`SELECT key FROM settings`).toHaveLength(0);
    expect(supervisor.settings()['health.intervalMs']).toBe(600_000);
  });

  it('reschedules probes within 1 s of a good PUT', async () => {
    const before = probes.mock.calls.length;
    const startedAt = Date.now();

    expect((await put({ 'health.intervalMs': 100 })).status).toBe(200);
    await eventually(() => probes.mock.calls.length > before, 1_000, 'a probe');

    expect(Date.now() - startedAt).toBeLessThan(1_000);
  });

  it('reschedules probes within 1 s of a plain SQL UPDATE', async () => {
    await db.sql`INSERT INTO settings (key, value) VALUES ('health.intervalMs', '300000')`;
    await eventually(() => supervisor.settings()['health.intervalMs'] === 300_000);
    const before = probes.mock.calls.length;

    await db.sql`UPDATE settings SET value = '100' WHERE key = 'health.intervalMs'`;
    await eventually(() => probes.mock.calls.length > before, 1_000, 'a probe');
  });

  it('logs a bad value written by SQL and keeps the old one', async () => {
    await db.sql`INSERT INTO settings (key, value) VALUES ('cache.maxSize', '50')`;
    await eventually(() => supervisor.settings()['cache.maxSize'] === 50);

    await db.sql`UPDATE settings SET value = '"many"' WHERE key = 'cache.maxSize'`;
    await db.sql`INSERT INTO settings (key, value) VALUES ('cache.ttlMs', '1234')`;
    await eventually(() => supervisor.settings()['cache.ttlMs'] === 1_234);

    expect(supervisor.settings()['cache.maxSize']).toBe(50);
    await db.sql`DELETE FROM settings WHERE key = 'cache.maxSize'`;
    await eventually(() => supervisor.settings()['cache.maxSize'] === 1_000);
  });

  it('receives a change made while its listening connection was killed', async () => {
    const killed = await db.sql`
      SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity
      WHERE datname = current_database() AND application_name = 'mcp-supervisor-listener'`;
    expect(killed).toHaveLength(1);

    await db.sql`INSERT INTO settings (key, value) VALUES ('cache.ttlMs', '4321')`;

    await eventually(() => supervisor.settings()['cache.ttlMs'] === 4_321, 5_000, 'the change');
  });
});
