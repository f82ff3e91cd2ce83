import type { Context, Hono } from 'hono';

import { SupervisorError } from '../errors.js';
import type { UserAdminApi, UserView } from '../supervisor/user-directory.js';
import type { AppEnv } from './app.js';
import { toIsoOrNull } from './format.js';

/**
 * `GET /api/users`, `PUT` and `DELETE /api/users/:user`: the users added through the API,
 * listed with those of the config file. No answer ever carries a token or its hash. Role
 * checks (admin only) run before, in the app's middleware.
 */
export function mountUserRoutes(app: Hono<AppEnv>, users: UserAdminApi): void {
  app.get('/api/users', (c) => c.json({ users: users.list().map(formatUser) }));

  app.put('/api/users/:user', async (c) => {
    const { user, created } = await users.put(
      c.req.param('user'),
      await readJson(c),
      c.get('user'),
    );
    return c.json({ user: formatUser(user) }, created ? 201 : 200);
  });

  app.delete('/api/users/:user', async (c) => {
    await users.remove(c.req.param('user'), c.get('user'));
    return c.json({ deleted: c.req.param('user') });
  });
}

function formatUser(user: UserView): Record<string, unknown> {
  return { ...user, updatedAt: toIsoOrNull(user.updatedAt) };
}

async function readJson(c: Context<AppEnv>): Promise<unknown> {
  const text = await c.req.text();

  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new SupervisorError('INVALID_REQUEST', 'the request body is not valid JSON', {
      field: 'body',
    });
  }
}
