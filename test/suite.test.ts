import { expect, it } from 'vitest';

import { main } from '../examples/embed.js';

it('runs under --unhandled-rejections=strict', () => {
  expect(process.execArgv).toContain('--unhandled-rejections=strict');
});

it('runs the library-embedding example: a real server, one call, a clean stop', async () => {
  const lines: string[] = [];
  const transitions = await main((line) => lines.push(line));

  expect(lines).toContain('echo answered: Echo: hello');
  expect(transitions.map((t) => `${t.from}>${t.to}`)).toEqual([
    'connecting>closed',
    'closed>stopped',
  ]);
});
