/**
 * A supervisor restart on the same store: sticky open and disabled are kept, `open` resumes the
 * rest of its delay, `failed` is tried again at once, and `seq` continues.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, expect, it } from 'vitest';

import { createSupervisor, type SupervisorOptions } from '../src/supervisor/create.js';
import { TransitionLog } from './helpers/fleet.js';
import { fixture } from './mcp.harness.js';

const dataDir = mkdtempSync(path.join(tmpdir(), 'mcps-restart-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

const flaky = { command: process.execPath, args: [fixture('flaky.mjs')] };
const options: SupervisorOptions = {
  servers: {
    sticky: flaky,
    disabled: flaky,
    waiting: { ...flaky, supervisor: { 'restart.maxRestarts': 10 } },
    looping: { ...flaky, supervisor: { 'restart.maxRestarts': 0 } },
  },
  settings: {
    'backoff.baseMs': 60_000,
    'backoff.capMs': 60_000,
    'breaker.failureThreshold': 1,
    'shutdown.graceMs': 200,
  },
  store: { dataDir },
  random: () => 0.9,
};

it('restores what must survive a restart and starts the rest fresh', async () => {
  const first = await createSupervisor(options);
  const log = new TransitionLog(first);
  await Promise.all(
    ['sticky', 'disabled', 'waiting', 'looping'].map((n) => log.reach(n, 'closed')),
  );

  await first.control('sticky', 'open', { user: 'ops' });
  await first.control('disabled', 'disable', { user: 'ops' });
  await first.callTool('waiting', 'fail', {}).catch(() => undefined);
  const waiting = await log.reach('waiting', 'open');
  await first.callTool('looping', 'crash', {}).catch(() => undefined);
  await log.reach('looping', 'failed');
  await first.stop();
  const lastSeq = log.lastSeq;

  const second = await createSupervisor(options);
  const log2 = new TransitionLog(second);
  try {
    await log2.reach('looping', 'closed');

    expect(second.server('sticky')!.state).toBe('open');
    expect(second.server('disabled')!.state).toBe('stopped');
    expect(second.server('waiting')).toMatchObject({
      state: 'open',
      retryAt: waiting.detail.retryAt,
    });
    expect(log2.seen[0]!.seq).toBe(lastSeq + 1);

    await second.control('disabled', 'enable', { user: 'ops' });
    await log2.reach('disabled', 'closed');
  } finally {
    await second.stop();
  }
}, 60_000);
