import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { openConnection } from '../src/mcp/connection.js';
import { ConnectError, type Connection, type LostInfo } from '../src/mcp/types.js';
import {
  deferred,
  entry,
  exited,
  freePort,
  openOptions,
  startEverythingRemote,
} from './mcp.harness.js';

const open: Connection[] = [];
const children: ChildProcess[] = [];
const call = { timeoutMs: 5000, maxTotalMs: 10_000 };

afterEach(async () => {
  await Promise.all(open.splice(0).map((connection) => connection.close()));
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await Promise.all(children.map(exited));
});

async function everything(
  mode: 'streamableHttp' | 'sse',
): Promise<{ child: ChildProcess; port: number }> {
  const started = await startEverythingRemote(mode);
  children.push(started.child);

  return started;
}

async function connect(fields: Parameters<typeof entry>[0]): Promise<Connection> {
  const connection = await openConnection(openOptions(entry(fields)));
  open.push(connection);

  return connection;
}

async function connectError(fields: Parameters<typeof entry>[0]): Promise<ConnectError> {
  const error = await openConnection(openOptions(entry(fields), { timeoutMs: 5000 })).catch(
    (e: unknown) => e,
  );
  if (!(error instanceof ConnectError))
    throw new Error(`expected a ConnectError: ${String(error)}`);

  return error;
}

describe('Streamable HTTP', () => {
  let url = '';

  beforeAll(async () => {
    const { port } = await everything('streamableHttp');
    url = `http://127.0.0.1:${port}/mcp`;
  });

  it('connects, lists tools and calls echo', async () => {
    const connection = await connect({ transport: 'http', url });

    const result = await connection.callTool('echo', { message: 'over http' }, call);

    expect(connection.transport).toBe('http');
    expect(connection.pid).toBeNull();
    expect(connection.tools.length).toBeGreaterThan(0);
    expect(JSON.stringify(result.content)).toContain('over http');
    await expect(connection.probe()).resolves.toBeUndefined();
  });

  it('rejects with connect_failed when nothing listens on the port', async () => {
    const port = await freePort();

    const error = await connectError({ transport: 'http', url: `http://127.0.0.1:${port}/mcp` });

    expect(error.reason).toBe('connect_failed');
    expect(error.message).toContain('ECONNREFUSED');
  });
});

describe('a remote server that goes away', () => {
  it('fires onLost with connection_lost when an SSE server is killed', async () => {
    const { child, port } = await everything('sse');
    const connection = await connect({ transport: 'sse', url: `http://127.0.0.1:${port}/sse` });
    const lost = deferred<LostInfo>();
    connection.onLost(lost.resolve);

    child.kill('SIGKILL');
    await exited(child);

    expect(await lost.promise).toMatchObject({ reason: 'connection_lost' });
  });

  it('fires onLost with connection_lost when the server is killed', async () => {
    const { child, port } = await everything('streamableHttp');
    const connection = await connect({ transport: 'http', url: `http://127.0.0.1:${port}/mcp` });
    const lost = deferred<LostInfo>();
    connection.onLost(lost.resolve);

    // The open GET stream breaks; the transport reports it and a confirming probe is refused.
    child.kill('SIGKILL');
    await exited(child);

    expect(await lost.promise).toMatchObject({ reason: 'connection_lost' });
    expect(connection.alive).toBe(false);
  });
});

describe('a remote session the server forgot', () => {
  let forget = false;
  let server: Server;
  let url = '';

  beforeAll(async () => {
    const mcp = new McpServer({ name: 'forgetful', version: '1.0.0' });
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: randomUUID });
    await mcp.connect(transport);
    server = createServer((request, response) => {
      if (forget && request.headers['mcp-session-id']) {
        response.writeHead(404).end('unknown session');
        return;
      }
      void transport.handleRequest(request, response);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/mcp`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('fires onLost with session_lost when our session is answered 404', async () => {
    const connection = await connect({ transport: 'http', url });
    const lost = deferred<LostInfo>();
    connection.onLost(lost.resolve);

    forget = true;
    const error = await connection.probe().catch((e: unknown) => e);

    expect(error).toMatchObject({ kind: 'transport' });
    expect(await lost.promise).toMatchObject({ reason: 'session_lost' });
  });
});

describe('SSE', () => {
  let port = 0;

  beforeAll(async () => {
    ({ port } = await everything('sse'));
  });

  it('connects over the SSE transport', async () => {
    const connection = await connect({ transport: 'sse', url: `http://127.0.0.1:${port}/sse` });

    const result = await connection.callTool('echo', { message: 'over sse' }, call);

    expect(connection.transport).toBe('sse');
    expect(JSON.stringify(result.content)).toContain('over sse');
  });

  it('falls back from Streamable HTTP to SSE on a 4xx', async () => {
    const connection = await connect({
      transport: 'http',
      fallbackToSse: true,
      url: `http://127.0.0.1:${port}/sse`,
    });

    expect(connection.transport).toBe('sse');
    expect(connection.tools.length).toBeGreaterThan(0);
  });

  it('does not fall back when the entry does not ask for it', async () => {
    const error = await connectError({ transport: 'http', url: `http://127.0.0.1:${port}/sse` });

    expect(error.reason).toBe('connect_failed');
  });
});

describe('authentication', () => {
  let server: Server;
  let url = '';

  beforeAll(async () => {
    server = createServer((_request, response) => {
      response.writeHead(401, { 'content-type': 'text/plain' }).end('unauthorized');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/mcp`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('rejects a 401 over Streamable HTTP with auth_required, without falling back', async () => {
    const error = await connectError({ transport: 'http', fallbackToSse: true, url });

    expect(error.reason).toBe('auth_required');
    expect(error.message).toContain('401');
  });

  it('rejects a 401 over SSE with auth_required', async () => {
    const error = await connectError({ transport: 'sse', url });

    expect(error.reason).toBe('auth_required');
  });
});
