/**
 * The supervisor's own books against real servers: orphan groups reaped at boot, tool list
 * changes invalidating the cache, breaker trips from counted call failures.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { silentLogger } from '../src/log.js';
import { openStore } from '../src/store/open.js';
import { createSupervisor, type Supervisor } from '../src/supervisor/create.js';
import { codeOf, TransitionLog } from './helpers/fleet.js';
import { EVERYTHING, exited, fixture } from './mcp.harness.js';

const temp = mkdtempSync(path.join(tmpdir(), 'mcps-runtime-'));
let running: Supervisor[] = [];

afterEach(async () => {
  await Promise.all(running.map((s) => s.stop()));
  running = [];
});

afterAll(() => rmSync(temp, { recursive: true, force: true }));

describe('boot', () => {
  it('reaps the process groups a crashed supervisor left behind', async () => {
    const dataDir = path.join(temp, 'orphans');
    const orphan = spawn(process.execPath, [EVERYTHING, 'stdio'], {
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    // Taken at the spawn, as the supervisor does: the reaper checks it against the start time.
    const startedAt = Date.now();
    const store = await openStore({ dataDir }, silentLogger());
    // The owner pid is above Linux's pid_max: a supervisor that cannot be alive.
    await store.putProcessGroup({
      server: 'gone',
      pgid: orphan.pid!,
      ownerPid: 4_194_305,
      startedAt,
      command: 'node',
    });
    await store.close();

    const supervisor = await createSupervisor({ store: { dataDir } });
    running.push(supervisor);

    await exited(orphan);
    expect(orphan.signalCode).toMatch(/SIGTERM|SIGKILL/);
  });
});

describe('tool list changes', () => {
  it('refreshes the tool list and drops the server cache entries', async () => {
    const supervisor = await createSupervisor({
      servers: {
        flaky: {
          command: process.execPath,
          args: [fixture('flaky.mjs')],
          tools: { ok: { cacheable: true } },
        },
      },
    });
    running.push(supervisor);
    await new TransitionLog(supervisor).reach('flaky', 'closed');
    const before = supervisor.server('flaky')!.tools;

    const updated = new Promise<void>((resolve) => {
      const off = supervisor.onServerUpdate((u) => {
        if (u.server !== 'flaky' || u.status.tools !== before + 1) return;
        off();
        resolve();
      });
    });

    await supervisor.callToolWithCache('flaky', 'ok', {});
    expect((await supervisor.callToolWithCache('flaky', 'ok', {})).cache).toBe('hit');

    await supervisor.callTool('flaky', 'add-tool', { name: 'fresh' });
    await updated;

    expect(supervisor.server('flaky')!.toolList.map((t) => t.name)).toContain('fresh');
    expect((await supervisor.callToolWithCache('flaky', 'ok', {})).cache).toBe('miss');
  });
});

describe('calls through the breaker', () => {
  it('opens after breaker.failureThreshold counted failures and fails fast after', async () => {
    const supervisor = await createSupervisor({
      servers: { flaky: { command: process.execPath, args: [fixture('flaky.mjs')] } },
      settings: {
        'breaker.failureThreshold': 3,
        'backoff.baseMs': 60_000,
        'backoff.capMs': 60_000,
      },
      random: () => 0.99,
    });
    running.push(supervisor);
    const log = new TransitionLog(supervisor);
    const closed = await log.reach('flaky', 'closed');

    for (let i = 0; i < 3; i += 1) {
      expect(await codeOf(supervisor.callTool('flaky', 'fail', {}))).toBe('CALL_FAILED');
    }

    const opened = await log.reach('flaky', 'open', closed.seq);
    expect(opened.reason).toBe('threshold_reached');
    expect(await codeOf(supervisor.callTool('flaky', 'ok', {}))).toBe('CIRCUIT_OPEN');
    expect(supervisor.server('flaky')).toMatchObject({ failures: 3, calls: 3 });
  });

  it('counts neither isError results nor invalid params against the breaker', async () => {
    const supervisor = await createSupervisor({
      servers: { flaky: { command: process.execPath, args: [fixture('flaky.mjs')] } },
      settings: { 'breaker.failureThreshold': 2 },
    });
    running.push(supervisor);
    await new TransitionLog(supervisor).reach('flaky', 'closed');

    for (let i = 0; i < 4; i += 1) {
      const result = await supervisor.callTool('flaky', 'tool-error', {});
      expect(result.isError).toBe(true);
      expect(await codeOf(supervisor.callTool('flaky', 'invalid', {}))).toBe('INVALID_ARGUMENTS');
    }

    expect(supervisor.server('flaky')).toMatchObject({ state: 'closed', failures: 0 });
  });
});

describe('tool results', () => {
  it('masks the secret values of a server that echoes its own env', async () => {
    const secret = 'sk-planted-secret-value-123';
    const supervisor = await createSupervisor({
      servers: {
        everything: { command: process.execPath, args: [EVERYTHING], env: { API_KEY: secret } },
      },
    });
    running.push(supervisor);
    await new TransitionLog(supervisor).reach('everything', 'closed');

    const result = JSON.stringify(await supervisor.callTool('everything', 'get-env', {}));

    expect(result).toContain('API_KEY');
    expect(result).not.toContain(secret);
    expect(result).toContain('***');
  });
});

describe('settings the API may not write', () => {
  it('refuses api.allowStdioServers through the API, in flat and nested form', async () => {
    const supervisor = await createSupervisor({});
    running.push(supervisor);

    expect(await codeOf(supervisor.admin!.putSettings({ 'api.allowStdioServers': true }))).toBe(
      'FORBIDDEN',
    );
    expect(await codeOf(supervisor.admin!.putSettings({ api: { allowStdioServers: true } }))).toBe(
      'FORBIDDEN',
    );
    expect(supervisor.settings()['api.allowStdioServers']).toBe(false);
  });
});
