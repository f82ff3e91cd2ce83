import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { hashToken } from '../src/http/auth.js';
import { FakeSupervisor } from './helpers/fake-supervisor.js';
import { startStack, type Stack } from './helpers/http-stack.js';

const TOKEN = 'tok-0123456789abcdef';

let api: FakeSupervisor;
let stack: Stack;

beforeEach(async () => {
  api = new FakeSupervisor();
  api.addServer('alpha');
  stack = await startStack(api, { users: [{ name: 'ops', tokenHash: hashToken(TOKEN) }] });
});

afterEach(async () => {
  await stack.close();
});

describe('API with users configured', () => {
  it('refuses a request without a token with 401 UNAUTHORIZED', async () => {
    const res = await fetch(`${stack.url}/api/servers`);

    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('UNAUTHORIZED');
  });

  it('refuses a wrong token with 401', async () => {
    const res = await fetch(`${stack.url}/api/servers`, {
      headers: { authorization: 'Bearer not-the-token' },
    });

    expect(res.status).toBe(401);
  });

  it('answers /healthz without a token', async () => {
    const res = await fetch(`${stack.url}/healthz`);

    expect(res.status).toBe(200);
  });

  it('records the user a valid token belongs to on operator events', async () => {
    const res = await fetch(`${stack.url}/api/servers/alpha/reset`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    const body = (await res.json()) as { transition: { detail: { user?: string } } };

    expect(res.status).toBe(200);
    expect(api.controls).toEqual([{ server: 'alpha', event: 'reset', user: 'ops' }]);
    expect(body.transition.detail.user).toBe('ops');
  });
});
