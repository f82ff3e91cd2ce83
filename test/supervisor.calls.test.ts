/**
 * Timeouts, progress and the bulkhead on a real server: the SDK's timers run in real time here,
 * so the durations are a few hundred milliseconds.
 */
import { afterEach, describe, expect, it } from 'vitest';

import { createSupervisor, type Supervisor } from '../src/supervisor/create.js';
import { codeOf, TransitionLog } from './helpers/fleet.js';
import { fixture } from './mcp.harness.js';

let running: Supervisor[] = [];

afterEach(async () => {
  await Promise.all(running.map((s) => s.stop()));
  running = [];
});

async function flaky(settings: Record<string, unknown>): Promise<Supervisor> {
  const supervisor = await createSupervisor({
    servers: { flaky: { command: process.execPath, args: [fixture('flaky.mjs')] } },
    settings: { 'shutdown.graceMs': 200, ...settings },
  });
  running.push(supervisor);
  await new TransitionLog(supervisor).reach('flaky', 'closed');
  return supervisor;
}

describe('call timeouts', () => {
  it('fails a silent call with CALL_TIMEOUT after call.timeoutMs', async () => {
    const supervisor = await flaky({ 'call.timeoutMs': 200 });

    expect(await codeOf(supervisor.callTool('flaky', 'slow', { ms: 2_000 }))).toBe('CALL_TIMEOUT');
  });

  it('lets progress notifications extend a call past call.timeoutMs', async () => {
    const supervisor = await flaky({ 'call.timeoutMs': 300, 'call.maxTotalMs': 5_000 });
    const result = await supervisor.callTool('flaky', 'progress', { ms: 900, everyMs: 100 });

    expect(JSON.stringify(result)).toContain('ran 900');
  });

  it('caps a call that keeps reporting progress at call.maxTotalMs', async () => {
    const supervisor = await flaky({ 'call.timeoutMs': 300, 'call.maxTotalMs': 500 });
    const call = supervisor.callTool('flaky', 'progress', { ms: 2_000, everyMs: 100 });

    expect(await codeOf(call)).toBe('CALL_TIMEOUT');
  });
});

describe('the bulkhead', () => {
  it('queues calls past call.maxConcurrent, then refuses with SERVER_BUSY when full', async () => {
    const supervisor = await flaky({ 'call.maxConcurrent': 1 });
    const holder = supervisor.callTool('flaky', 'slow', { ms: 400 });
    const queued = Array.from({ length: 16 }, () => supervisor.callTool('flaky', 'ok', {}));

    expect(await codeOf(supervisor.callTool('flaky', 'ok', {}))).toBe('SERVER_BUSY');
    expect(JSON.stringify(await holder)).toContain('slept 400');
    expect((await Promise.all(queued)).every((r) => JSON.stringify(r).includes('ok'))).toBe(true);
  });

  it('cancels the upstream call when the caller aborts', async () => {
    const supervisor = await flaky({});
    const controller = new AbortController();
    const call = supervisor.callTool('flaky', 'slow', { ms: 5_000 }, { signal: controller.signal });
    const stderrSays = (text: string): Promise<void> =>
      new Promise((resolve) => {
        const check = setInterval(() => {
          if (!supervisor.server('flaky')!.stderrTail.includes(text)) return;
          clearInterval(check);
          resolve();
        }, 20);
      });

    await stderrSays('slow started');
    controller.abort();
    expect(await codeOf(call)).toBe('CALL_ABORTED');
    await stderrSays('slow cancelled');
    expect(supervisor.server('flaky')).toMatchObject({ state: 'closed', failures: 0 });
  });
});
