/**
 * Retry rules (issue 4, item 6) against a real Streamable HTTP server that can forget our
 * session: one fresh `initialize`, one retry of what was not processed, never a loop; a
 * `tools/call` that may have been processed is retried only when read-only or idempotent.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';

import { isSupervisorError } from '../src/errors.js';
import { CallError } from '../src/mcp/types.js';
import { mayRetry } from '../src/mcp/retry-policy.js';
import { createSupervisor, type Supervisor } from '../src/supervisor/create.js';
import { codeOf, TransitionLog } from './helpers/fleet.js';

/** The server's own books: what it ran, and how often it was initialized. */
const books = { initializes: 0, runs: new Map<string, number>() };
/** Answer 404 to this many POSTs that carry a session id. */
let forgetRequests = 0;
/** Forget every session, for good. */
let forgetAlways = false;
let release: () => void = () => undefined;
let released = Promise.resolve();
let started: () => void = () => undefined;

let http: Server;
let url = '';
let running: Supervisor[] = [];

function ran(tool: string): number {
  return books.runs.get(tool) ?? 0;
}

function session(): McpServer {
  const mcp = new McpServer({ name: 'forgetful', version: '1.0.0' });
  const register = (name: string, hints: object, slow: boolean) =>
    mcp.registerTool(name, { annotations: hints }, async () => {
      books.runs.set(name, ran(name) + 1);
      if (slow) {
        started();
        await released;
      }
      return { content: [{ type: 'text', text: `${name} done` }] };
    });

  register('write', {}, false);
  register('slow-write', {}, true);
  register('slow-read', { readOnlyHint: true }, true);
  register('slow-idempotent', { idempotentHint: true }, true);
  return mcp;
}

async function handle(request: IncomingMessage, response: import('node:http').ServerResponse) {
  const id = request.headers['mcp-session-id'];
  // No standalone SSE stream: only our requests meet a forgotten session, one at a time.
  if (request.method === 'GET') {
    response.writeHead(405).end();
    return;
  }

  if (typeof id === 'string' && (forgetAlways || forgetRequests > 0 || !transports.has(id))) {
    forgetRequests = Math.max(0, forgetRequests - 1);
    transports.delete(id);
    response.writeHead(404).end('unknown session');
    return;
  }

  if (typeof id === 'string') {
    await transports.get(id)!.handleRequest(request, response);
    return;
  }

  books.initializes += 1;
  const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
    sessionIdGenerator: randomUUID,
    onsessioninitialized: (sid) => void transports.set(sid, transport),
  });
  await session().connect(transport);
  await transport.handleRequest(request, response);
}

const transports = new Map<string, StreamableHTTPServerTransport>();

beforeAll(async () => {
  http = createServer((request, response) => void handle(request, response));
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const address = http.address();
  url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/mcp`;
});

afterAll(async () => {
  http.closeAllConnections();
  await new Promise((resolve) => http.close(resolve));
});

beforeEach(() => {
  books.initializes = 0;
  books.runs.clear();
  forgetRequests = 0;
  forgetAlways = false;
  released = new Promise<void>((resolve) => (release = resolve));
});

afterEach(async () => {
  release();
  await Promise.all(running.map((s) => s.stop()));
  running = [];
});

interface Started {
  supervisor: Supervisor;
  log: TransitionLog;
  /** Probes now (operator `probe`) and resolves once that probe has settled. */
  probe(): Promise<void>;
}

async function start(): Promise<Started> {
  const clock = new SimulatedClock();
  clock.set(Date.now());
  const settled: Array<() => void> = [];
  const supervisor = await createSupervisor({
    servers: { remote: { type: 'http', url } },
    settings: { 'backoff.baseMs': 60_000, 'backoff.capMs': 60_000 },
    clock,
    inspect: (event) => {
      if (event.type !== '@xstate.event') return;
      const type = event.event.type as string;
      if (/^probe\.(ok|failed)$/.test(type)) settled.splice(0).forEach((r) => r());
    },
  });
  running.push(supervisor);
  const log = new TransitionLog(supervisor);
  await log.reach('remote', 'closed');
  const probe = async (): Promise<void> => {
    const done = new Promise<void>((resolve) => settled.push(resolve));
    await supervisor.control('remote', 'probe');
    await done;
  };

  return { supervisor, log, probe };
}

/** Two slow calls in flight, both received by the server. */
async function inFlight(supervisor: Supervisor, tools: string[]): Promise<Promise<string>[]> {
  let pending = tools.length;
  const all = new Promise<void>((resolve) => {
    started = () => {
      pending -= 1;
      if (pending === 0) resolve();
    };
  });
  const calls = tools.map((tool) =>
    supervisor.callTool('remote', tool, {}).then(
      () => 'resolved',
      (error: unknown) => (isSupervisorError(error) ? error.code : String(error)),
    ),
  );
  await all;

  return calls;
}

describe('a session the server forgot', () => {
  it('renews the session once and retries a non-idempotent call it never received', async () => {
    const { supervisor, log } = await start();
    forgetRequests = 1;

    const result = await supervisor.callTool('remote', 'write', {});

    expect(JSON.stringify(result.content)).toContain('write done');
    expect(ran('write')).toBe(1);
    expect(books.initializes).toBe(2);
    expect(supervisor.server('remote')!.state).toBe('closed');
    expect(log.seen.map((t) => t.reason)).toEqual(['connected']);
  });

  it('renews a session lost by a probe and answers the probe, with no transition', async () => {
    const { supervisor, log, probe } = await start();
    forgetRequests = 1;

    await probe();
    await supervisor.callTool('remote', 'write', {});

    expect(books.initializes).toBe(2);
    expect(log.seen.map((t) => t.reason)).toEqual(['connected', 'operator_probe']);
  });

  it('never loops: a server that forgets every session opens with session_lost', async () => {
    const { supervisor, log } = await start();
    forgetAlways = true;

    const code = await codeOf(supervisor.callTool('remote', 'write', {}));
    const opened = await log.reach('remote', 'open');

    expect(code).toBe('CALL_FAILED');
    expect(opened.reason).toBe('session_lost');
    expect(books.initializes).toBe(2);
    expect(ran('write')).toBe(0);
  });
});

describe('calls cut off by a session loss', () => {
  it('retries a read-only call on the renewed session', async () => {
    const { supervisor, probe } = await start();
    const [read] = await inFlight(supervisor, ['slow-read']);

    forgetRequests = 1;
    await probe();
    release();

    expect(await read).toBe('resolved');
    expect(ran('slow-read')).toBe(2);
    expect(books.initializes).toBe(2);
  });

  it('retries an idempotent call on the renewed session', async () => {
    const { supervisor, probe } = await start();
    const [call] = await inFlight(supervisor, ['slow-idempotent']);

    forgetRequests = 1;
    await probe();
    release();

    expect(await call).toBe('resolved');
    expect(ran('slow-idempotent')).toBe(2);
  });

  it('does not retry a call that may have acted, and fails it', async () => {
    const { supervisor, probe } = await start();
    const [write] = await inFlight(supervisor, ['slow-write']);

    forgetRequests = 1;
    await probe();
    release();

    expect(await write).toBe('CALL_FAILED');
    expect(ran('slow-write')).toBe(1);
    expect(supervisor.server('remote')!.state).toBe('closed');
  });
});

describe('mayRetry', () => {
  const write = { name: 'w', inputSchema: { type: 'object' as const } };
  const read = { ...write, annotations: { readOnlyHint: true } };
  const lost = new CallError('transport', 'connection lost');
  const unsent = new CallError('transport', 'session unknown', null, true);

  it('allows any request the server never received', () => {
    expect(mayRetry({ method: 'tools/call', tool: write }, unsent)).toBe(true);
  });

  it('allows pings and tools/list after a transport failure, and read-only tools', () => {
    expect(mayRetry({ method: 'ping' }, lost)).toBe(true);
    expect(mayRetry({ method: 'tools/list' }, lost)).toBe(true);
    expect(mayRetry({ method: 'tools/call', tool: read }, lost)).toBe(true);
  });

  it('refuses other tools, timeouts and error replies', () => {
    expect(mayRetry({ method: 'tools/call', tool: write }, lost)).toBe(false);
    expect(mayRetry({ method: 'ping' }, new CallError('timeout', 'slow'))).toBe(false);
    expect(mayRetry({ method: 'tools/call', tool: read }, new CallError('internal', 'x'))).toBe(
      false,
    );
  });
});
