/**
 * `inspect: { url }` streams XState inspection events with @statelyai/inspect's WebSocket
 * inspector: a local receiver finds the server actors and their transitions, and no secret.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';

import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { assign, createActor, setup } from 'xstate';

import { Redactor } from '../src/redact.js';
import { createSupervisor, type Supervisor } from '../src/supervisor/create.js';
import { openInspectStream } from '../src/supervisor/inspect.js';
import { fixture } from './mcp.harness.js';

interface Receiver {
  url: string;
  messages: string[];
  until(match: (events: Array<Record<string, unknown>>) => boolean): Promise<void>;
  close(): Promise<void>;
}

async function receiver(): Promise<Receiver> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const messages: string[] = [];
  const waiters = new Set<() => void>();

  wss.on('connection', (socket) => {
    socket.on('message', (data) => {
      messages.push(String(data));
      for (const waiter of waiters) waiter();
    });
  });

  const parsed = (): Array<Record<string, unknown>> =>
    messages.map((m) => JSON.parse(m) as Record<string, unknown>);

  return {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    messages,
    until: (match) =>
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (!match(parsed())) return;
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
        check();
      }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close(() => resolve());
      }),
  };
}

let cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

describe('inspection stream', () => {
  it('carries the server actors and their transitions, and no secret', async () => {
    const secret = `tok-${randomUUID()}`;
    const relay = await receiver();
    cleanups.push(() => relay.close());

    const supervisor: Supervisor = await createSupervisor({
      servers: {
        crashy: {
          command: process.execPath,
          args: [fixture('exit-on-start.mjs')],
          env: { FIXTURE_TOKEN: secret },
        },
      },
      settings: { 'backoff.baseMs': 60_000, 'backoff.capMs': 60_000 },
      inspect: { url: relay.url },
    });
    cleanups.push(() => supervisor.stop());

    await relay.until((events) =>
      events.some((e) => e.type === '@xstate.snapshot' && JSON.stringify(e).includes('"open"')),
    );

    const events = relay.messages.map((m) => JSON.parse(m) as { type: string; name?: string });
    expect(events.some((e) => e.type === '@xstate.actor' && e.name === 'crashy')).toBe(true);
    expect(relay.messages.join('\n')).not.toContain(secret);
  });

  it('redacts secret values from actor context before they leave the process', async () => {
    const secret = `planted-${randomUUID()}`;
    const relay = await receiver();
    cleanups.push(() => relay.close());
    const stream = await openInspectStream(relay.url, new Redactor([secret]));
    cleanups.push(async () => stream.stop());

    const machine = setup({}).createMachine({
      context: { note: '' },
      on: { plant: { actions: assign({ note: () => `token=${secret}` }) } },
    });
    const actor = createActor(machine, { inspect: stream.inspect }).start();
    actor.send({ type: 'plant' });

    await relay.until((events) => events.some((e) => JSON.stringify(e).includes('token=')));
    actor.stop();

    expect(relay.messages.join('\n')).not.toContain(secret);
    expect(relay.messages.join('\n')).toContain('token=***');
  });
});
