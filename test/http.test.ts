import { request as httpRequest } from 'node:http';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { SupervisorError, type ErrorCode } from '../src/errors.js';
import { FakeSupervisor, textResult } from './helpers/fake-supervisor.js';
import { rawRequest, startStack, type Stack } from './helpers/http-stack.js';

const T0 = Date.UTC(2024, 0, 1);

let api: FakeSupervisor;
let stack: Stack;

beforeEach(async () => {
  api = new FakeSupervisor();
  api.addServer('alpha', {
    state: 'open',
    since: T0,
    retryAt: T0 + 5_000,
    toolList: [{ name: 'echo', inputSchema: { type: 'object' } }],
    stderrTail: 'last words',
  });
  stack = await startStack(api);
});

afterEach(async () => {
  await stack.close();
});

function post(path: string, body?: unknown): Promise<Response> {
  return fetch(`${stack.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' || body === undefined ? body : JSON.stringify(body),
  });
}

describe('GET routes', () => {
  it('answers /healthz with status ok', async () => {
    const res = await fetch(`${stack.url}/healthz`);

    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('lists servers with ISO-8601 times', async () => {
    const res = await fetch(`${stack.url}/api/servers`);
    const body = (await res.json()) as { servers: Array<Record<string, unknown>> };

    expect(res.status).toBe(200);
    expect(body.servers).toHaveLength(1);
    expect(body.servers[0]).toMatchObject({
      name: 'alpha',
      state: 'open',
      since: '2024-01-01T00:00:00.000Z',
      retryAt: '2024-01-01T00:00:05.000Z',
    });
    expect(body.servers[0]).not.toHaveProperty('toolList');
  });

  it('shows one server with its tool list and stderr tail', async () => {
    const res = await fetch(`${stack.url}/api/servers/alpha`);
    const body = (await res.json()) as Record<string, unknown>;

    expect(res.status).toBe(200);
    expect(body).toMatchObject({
      name: 'alpha',
      stderrTail: 'last words',
      since: '2024-01-01T00:00:00.000Z',
    });
    expect(body.toolList).toEqual([{ name: 'echo', inputSchema: { type: 'object' } }]);
  });

  it('answers an unknown server with 404 SERVER_NOT_FOUND', async () => {
    const res = await fetch(`${stack.url}/api/servers/nobody`);

    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      error: { code: 'SERVER_NOT_FOUND', message: 'no such server', server: 'nobody' },
    });
  });

  it('answers an unknown route with a 404 NOT_FOUND error body', async () => {
    const res = await fetch(`${stack.url}/api/nothing-here`);

    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
  });

  it('answers the cache stats', async () => {
    const res = await fetch(`${stack.url}/api/cache`);

    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ hits: 3, misses: 1, hitRate: 0.75 });
  });

  it('answers the effective settings as key to value', async () => {
    const res = await fetch(`${stack.url}/api/settings`);
    const body = (await res.json()) as Record<string, unknown>;

    expect(res.status).toBe(200);
    expect(body['health.intervalMs']).toBe(30_000);
    expect(body['api.allowStdioServers']).toBe(false);
  });
});

describe('DELETE /api/cache', () => {
  it('invalidates by server and tool and answers the count', async () => {
    const res = await fetch(`${stack.url}/api/cache?server=alpha&tool=echo`, { method: 'DELETE' });

    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ invalidated: 2 });
    expect(api.invalidations).toEqual([{ server: 'alpha', tool: 'echo' }]);
  });

  it('invalidates everything without a filter', async () => {
    await fetch(`${stack.url}/api/cache`, { method: 'DELETE' });

    expect(api.invalidations).toEqual([{ server: undefined, tool: undefined }]);
  });
});

describe('POST /api/servers/:name/tools/:tool', () => {
  it('answers the result with X-Cache miss and passes the body as arguments', async () => {
    let seen: Record<string, unknown> = {};
    api.onCall = async ({ args }) => {
      seen = args;
      return { result: textResult('hello'), cache: 'miss' };
    };

    const res = await post('/api/servers/alpha/tools/echo', { text: 'hello' });

    expect(res.status).toBe(200);
    expect(res.headers.get('x-cache')).toBe('miss');
    expect(await res.json()).toEqual(textResult('hello'));
    expect(seen).toEqual({ text: 'hello' });
  });

  it('marks a cached answer with X-Cache hit', async () => {
    api.onCall = async () => ({ result: textResult('cached'), cache: 'hit' });

    const res = await post('/api/servers/alpha/tools/echo', {});

    expect(res.headers.get('x-cache')).toBe('hit');
  });

  it('passes an isError result through with 200', async () => {
    api.onCall = async () => ({ result: textResult('tool said no', true), cache: 'miss' });

    const res = await post('/api/servers/alpha/tools/echo', {});

    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(textResult('tool said no', true));
  });

  it('calls with empty arguments when the body is empty', async () => {
    let seen: Record<string, unknown> | undefined;
    api.onCall = async ({ args }) => {
      seen = args;
      return { result: textResult('ok'), cache: 'miss' };
    };

    await post('/api/servers/alpha/tools/echo');

    expect(seen).toEqual({});
  });

  it('refuses invalid JSON with 400 INVALID_REQUEST', async () => {
    const res = await post('/api/servers/alpha/tools/echo', '{"text": ');

    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('INVALID_REQUEST');
  });

  it.each(['[1, 2]', '"text"', '42', 'null'])(
    'refuses the non-object body %s with 400',
    async (body) => {
      const res = await post('/api/servers/alpha/tools/echo', body);

      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
        'INVALID_REQUEST',
      );
    },
  );

  it('refuses a body over 1 MiB with 413 PAYLOAD_TOO_LARGE', async () => {
    const big = JSON.stringify({ blob: 'x'.repeat(1_048_576) });

    const res = await post('/api/servers/alpha/tools/echo', big);

    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      'PAYLOAD_TOO_LARGE',
    );
  });

  it('answers CIRCUIT_OPEN with 503, an ISO retryAt and Retry-After in seconds', async () => {
    const retryAt = Date.now() + 4_500;
    api.onCall = async () => {
      throw new SupervisorError('CIRCUIT_OPEN', 'circuit open', { server: 'alpha', retryAt });
    };

    const res = await post('/api/servers/alpha/tools/echo', {});
    const body = (await res.json()) as { error: Record<string, unknown> };

    expect(res.status).toBe(503);
    expect(body.error).toMatchObject({
      code: 'CIRCUIT_OPEN',
      retryAt: new Date(retryAt).toISOString(),
    });
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(4);
    expect(Number(res.headers.get('retry-after'))).toBeLessThanOrEqual(5);
  });

  it.each<[ErrorCode, number]>([
    ['SERVER_NOT_FOUND', 404],
    ['TOOL_NOT_FOUND', 404],
    ['INVALID_ARGUMENTS', 400],
    ['SERVER_CONNECTING', 503],
    ['SERVER_FAILED', 503],
    ['SERVER_STOPPED', 503],
    ['SERVER_BUSY', 503],
    ['CALL_TIMEOUT', 504],
    ['CONFLICT', 409],
  ])('answers %s with %i and the code in the body', async (code, status) => {
    api.onCall = async () => {
      throw new SupervisorError(code, 'refused', { server: 'alpha' });
    };

    const res = await post('/api/servers/alpha/tools/echo', {});

    expect(res.status).toBe(status);
    expect(await res.json()).toEqual({ error: { code, message: 'refused', server: 'alpha' } });
  });

  it('answers an unexpected error with a bare 500 INTERNAL, no message or stack', async () => {
    api.onCall = async () => {
      throw new Error('secret-db-password at index.js:42');
    };

    const res = await post('/api/servers/alpha/tools/echo', {});
    const text = await res.text();

    expect(res.status).toBe(500);
    expect(JSON.parse(text)).toEqual({ error: { code: 'INTERNAL', message: 'internal error' } });
    expect(text).not.toContain('secret-db-password');
  });

  it('aborts the signal passed to the call when the HTTP client disconnects', async () => {
    let started!: () => void;
    let sawAbort!: () => void;
    const callStarted = new Promise<void>((resolve) => (started = resolve));
    const aborted = new Promise<void>((resolve) => (sawAbort = resolve));
    api.onCall = ({ signal }) => {
      started();
      return new Promise((_, reject) => {
        signal?.addEventListener('abort', () => {
          sawAbort();
          reject(new SupervisorError('CALL_ABORTED', 'aborted'));
        });
      });
    };

    const req = httpRequest(`${stack.url}/api/servers/alpha/tools/echo`, { method: 'POST' });
    req.on('error', () => undefined);
    req.end('{}');
    await callStarted;
    req.destroy();

    await expect(aborted).resolves.toBeUndefined();
  });
});

describe('operator routes', () => {
  it.each(['open', 'close', 'reset', 'restart', 'probe', 'disable', 'enable'])(
    'POST %s answers the resulting transition',
    async (event) => {
      const res = await post(`/api/servers/alpha/${event}`);
      const body = (await res.json()) as { transition: Record<string, unknown> };

      expect(res.status).toBe(200);
      expect(body.transition).toMatchObject({
        server: 'alpha',
        reason: `operator_${event}`,
        seq: 1,
      });
      expect(body.transition.at).toBe('2024-01-01T00:00:01.000Z');
      expect(api.controls).toEqual([{ server: 'alpha', event, user: undefined }]);
    },
  );

  it('answers an operator event on an unknown server with 404', async () => {
    const res = await post('/api/servers/nobody/reset');

    expect(res.status).toBe(404);
  });

  it('answers an unknown operator event with 404 NOT_FOUND', async () => {
    const res = await post('/api/servers/alpha/explode');

    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
  });
});

describe('GET /api/transitions', () => {
  beforeEach(() => {
    api.emit('alpha', 'closed', 'connected');
    api.emit('alpha', 'open', 'process_exited', { exitCode: 1, retryAt: T0 + 60_000 });
    api.emit('alpha', 'halfOpen', 'backoff_elapsed');
  });

  it('answers history oldest first with ISO times', async () => {
    const res = await fetch(`${stack.url}/api/transitions`);
    const body = (await res.json()) as { transitions: Array<Record<string, unknown>> };

    expect(res.status).toBe(200);
    expect(body.transitions.map((t) => t.seq)).toEqual([1, 2, 3]);
    expect(body.transitions[1]).toEqual({
      seq: 2,
      server: 'alpha',
      from: 'closed',
      to: 'open',
      reason: 'process_exited',
      at: '2024-01-01T00:00:02.000Z',
      detail: { exitCode: 1, retryAt: '2024-01-01T00:01:00.000Z' },
    });
  });

  it('answers only transitions after `after`, at most `limit`', async () => {
    const res = await fetch(`${stack.url}/api/transitions?after=1&limit=1`);
    const body = (await res.json()) as { transitions: Array<{ seq: number }> };

    expect(body.transitions.map((t) => t.seq)).toEqual([2]);
  });

  it.each(['after=abc', 'after=-1', 'limit=0', 'limit=1.5', 'limit=ten'])(
    'refuses the junk query %s with 400',
    async (query) => {
      const res = await fetch(`${stack.url}/api/transitions?${query}`);

      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
        'INVALID_REQUEST',
      );
    },
  );

  it('asks for 100 rows by default and never more than 1000', async () => {
    const limits: Array<number | undefined> = [];
    const history = api.history.bind(api);
    api.history = async (query) => {
      limits.push(query.limit);
      return history(query);
    };

    await fetch(`${stack.url}/api/transitions`);
    await fetch(`${stack.url}/api/transitions?limit=5000`);

    expect(limits).toEqual([100, 1000]);
  });
});

describe('Host and Origin checks', () => {
  it('accepts the loopback names with the bound port', async () => {
    for (const host of ['127.0.0.1', 'localhost', '[::1]']) {
      const res = await rawRequest(`${stack.url}/healthz`, {
        headers: { host: `${host}:${stack.port}` },
      });
      expect(res.status).toBe(200);
    }
  });

  it('refuses a foreign Host with 403 FORBIDDEN', async () => {
    const res = await rawRequest(`${stack.url}/healthz`, {
      headers: { host: `evil.example:${stack.port}` },
    });

    expect(res.status).toBe(403);
    expect(JSON.parse(res.body).error.code).toBe('FORBIDDEN');
  });

  it('refuses a loopback Host with another port', async () => {
    const res = await rawRequest(`${stack.url}/healthz`, {
      headers: { host: `localhost:${stack.port + 1}` },
    });

    expect(res.status).toBe(403);
  });

  it('refuses a foreign Origin with 403', async () => {
    const res = await rawRequest(`${stack.url}/api/servers`, {
      headers: { origin: `http://evil.example:${stack.port}` },
    });

    expect(res.status).toBe(403);
  });

  it('accepts an Origin naming us', async () => {
    const res = await rawRequest(`${stack.url}/api/servers`, {
      headers: { origin: `http://localhost:${stack.port}` },
    });

    expect(res.status).toBe(200);
  });

  it('accepts a configured host name', async () => {
    await stack.close();
    stack = await startStack(api, { allowedHosts: ['supervisor.internal'] });

    const res = await rawRequest(`${stack.url}/healthz`, {
      headers: { host: `supervisor.internal:${stack.port}` },
    });

    expect(res.status).toBe(200);
  });
});
