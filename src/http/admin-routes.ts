import type { Context, Hono } from 'hono';

import { SupervisorError } from '../errors.js';
import type { AdminApi } from '../supervisor/admin.js';
import type { SupervisorApi } from '../supervisor/types.js';
import type { AppEnv } from './app.js';
import { formatStatus, toIso } from './format.js';

/**
 * The store-backed admin routes: `PUT /api/settings`, `PUT`/`DELETE /api/servers/:name` and
 * `GET /api/store` (the write path's held count and gap). Mounted only when the supervisor
 * has an admin surface; role checks run before, in the app's middleware.
 */
export function mountAdminRoutes(app: Hono<AppEnv>, api: SupervisorApi): void {
  const admin = api.admin;
  if (!admin) return;

  app.put('/api/settings', async (c) => c.json(await admin.putSettings(await readJson(c))));

  app.put('/api/servers/:name', async (c) => {
    const name = c.req.param('name');
    const created = await admin.putServer(name, await readEntry(c), c.get('user'));
    const status = api.servers().find((s) => s.name === name);

    return c.json({ server: status ? formatStatus(status) : null }, created ? 201 : 200);
  });

  app.delete('/api/servers/:name', async (c) => {
    await admin.deleteServer(c.req.param('name'), c.get('user'));
    return c.json({ deleted: c.req.param('name') });
  });

  app.get('/api/store', (c) => c.json(formatStore(admin)));
}

function formatStore(admin: AdminApi): Record<string, unknown> {
  const status = admin.storeStatus();
  const gap = status.gap;

  return { ...status, gap: gap ? { ...gap, at: toIso(gap.at) } : null };
}

async function readJson(c: Context<AppEnv>): Promise<unknown> {
  const text = await c.req.text();

  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new SupervisorError('INVALID_REQUEST', 'the request body is not valid JSON');
  }
}

async function readEntry(c: Context<AppEnv>): Promise<Record<string, unknown>> {
  const value = await readJson(c);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new SupervisorError('INVALID_REQUEST', 'a server entry must be a JSON object');
  }

  return value as Record<string, unknown>;
}
