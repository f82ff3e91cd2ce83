import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { expect, it } from 'vitest';

import { fixture } from './mcp.harness.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

it('lets Node exit on its own after 100 servers stop (timers alive after shutdown)', () => {
  const script = fixture('../stop-hundred.ts');
  const result = spawnSync(process.execPath, ['--import', 'tsx', script], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 20_000,
  });

  expect(result.signal).toBeNull();
  expect(result.status).toBe(0);
  expect(result.stdout).toContain('stopped 100');
});
