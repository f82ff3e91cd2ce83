import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { HttpBindings } from '@hono/node-server';

import { OPERATOR_EVENTS, type OperatorEvent } from '../../machines/vocabulary.js';
import { SupervisorError } from '../errors.js';
import type { Logger } from '../log.js';
import type { SupervisorApi } from '../supervisor/types.js';
import { mountAdminRoutes } from './admin-routes.js';
import type { UserAdminApi } from '../supervisor/user-directory.js';
import {
  ANONYMOUS,
  bearerToken,
  createAuthenticator,
  type Authenticator,
  type HttpUser,
} from './auth.js';
import { httpError, toHttpError, type HttpError } from './errors.js';
import { formatDetail, formatStatus, formatTransition } from './format.js';
import { HostGuard } from './hosts.js';
import type { Principal } from './principal.js';
import { matchRoute } from './routes.js';
import { mountUserRoutes } from './user-routes.js';
import { seesServer, visibleHistory, visibleServers } from './visibility.js';

/** The largest request body accepted, in bytes (1 MiB). */
export const MAX_BODY_BYTES = 1_048_576;

/** `GET /api/transitions` answers this many rows when `limit` is not given. */
export const DEFAULT_HISTORY_LIMIT = 100;

/** `GET /api/transitions` never answers more rows than this. */
export const MAX_HISTORY_LIMIT = 1000;

export interface AppOptions {
  /** The `Http` service logger. */
  logger: Logger;
  /** API users; none (the default) leaves the API open, for loopback binding only. */
  users?: readonly HttpUser[];
  /**
   * Checks tokens instead of a fixed `users` list, so users added later count at once
   * (`UserDirectory.authenticate` fits).
   */
  authenticate?: Authenticator;
  /** Serves `GET /api/users`, `PUT` and `DELETE /api/users/:user` when given. */
  userAdmin?: UserAdminApi;
  /** Names `Host` and `Origin` may carry (see {@link HostGuard}); default: loopback names. */
  allowedHosts?: readonly string[];
  /** The current time in epoch ms (default `Date.now`), for `Retry-After`. */
  now?: () => number;
}

/** What the routes of one app share through the request context. */
export interface AppEnv {
  Bindings: Partial<HttpBindings>;
  Variables: { user: string | undefined; principal: Principal };
}

/** The HTTP API on top of a running supervisor. */
export function createApp(api: SupervisorApi, options: AppOptions): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const now = options.now ?? Date.now;
  const log = options.logger;

  app.use(checkHosts(new HostGuard(options.allowedHosts)));
  app.use(bodyLimit({ maxSize: MAX_BODY_BYTES, onError: (c) => payloadTooLarge(c) }));
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.use('/api/*', authenticate(options.authenticate ?? createAuthenticator(options.users)));
  app.use('/api/*', authorize(api));

  app.get('/api/servers', (c) => {
    return c.json({ servers: visibleServers(api, principalOf(c)).map(formatStatus) });
  });
  app.get('/api/servers/:name', (c) => {
    const name = c.req.param('name');
    const detail = api.server(name);
    if (!detail || !principalOf(c).sees(name, detail.tags)) throw serverNotFound(name);

    return c.json(formatDetail(detail));
  });

  app.post('/api/servers/:name/tools/:tool', async (c) => {
    const args = await readObjectBody(c);
    const signal = c.req.raw.signal;
    const outcome = await api.callToolWithCache(c.req.param('name'), c.req.param('tool'), args, {
      signal,
    });

    c.header('X-Cache', outcome.cache);
    return c.json(outcome.result);
  });

  for (const event of OPERATOR_EVENTS) {
    app.post(`/api/servers/:name/${event}`, (c) => control(api, c, event));
  }

  app.get('/api/transitions', async (c) => {
    const transitions = await visibleHistory(api, principalOf(c), {
      server: c.req.query('server') || undefined,
      after: queryInt(c, 'after', 0, Number.MAX_SAFE_INTEGER),
      limit: Math.min(
        queryInt(c, 'limit', 1, Infinity) ?? DEFAULT_HISTORY_LIMIT,
        MAX_HISTORY_LIMIT,
      ),
    });

    return c.json({ transitions: transitions.map(formatTransition) });
  });

  app.get('/api/cache', (c) => c.json(api.cacheStats()));
  app.delete('/api/cache', (c) => {
    const server = c.req.query('server') || undefined;
    const tool = c.req.query('tool') || undefined;

    return c.json({ invalidated: api.invalidateCache({ server, tool }) });
  });

  app.get('/api/settings', (c) => c.json(api.settings()));
  mountAdminRoutes(app, api);
  if (options.userAdmin) mountUserRoutes(app, options.userAdmin);

  app.notFound((c) => send(c, httpError('NOT_FOUND', 'no such route')));
  app.onError((err, c) => {
    const answer = toHttpError(err, now());
    if (answer.body.error.code === 'INTERNAL')
      log.error({ err, path: c.req.path }, 'request failed');
    else log.debug({ code: answer.body.error.code, path: c.req.path }, 'request refused');

    return send(c, answer);
  });

  return app;
}

async function control(api: SupervisorApi, c: Context<AppEnv>, event: OperatorEvent) {
  await readObjectBody(c);

  const transition = await api.control(c.req.param('name') ?? '', event, { user: c.get('user') });
  return c.json({ transition: formatTransition(transition) });
}

/** Refuses requests whose `Host` or `Origin` does not name us (403 `FORBIDDEN`). */
function checkHosts(guard: HostGuard): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const localPort = c.env?.incoming?.socket.localPort;
    const host = c.req.header('host');
    const origin = c.req.header('origin');

    if (!guard.allowsHost(host, localPort) || !guard.allowsOrigin(origin, localPort)) {
      return send(c, httpError('FORBIDDEN', 'host or origin not allowed'));
    }

    await next();
    return undefined;
  };
}

/** The token seam: sets the `user` variable, or refuses with 401 `UNAUTHORIZED`. */
function authenticate(check: Authenticator): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const result = check(bearerToken(c.req.header('authorization')));
    if (!result.ok) {
      c.header('WWW-Authenticate', 'Bearer');
      return send(c, httpError('UNAUTHORIZED', 'a valid bearer token is required'));
    }

    c.set('user', result.user);
    c.set('principal', result.principal);
    await next();
    return undefined;
  };
}

/**
 * Role and visibility, from the route list: a viewer reaches only `viewer` routes (anything
 * unlisted is refused), and a server it cannot see is answered as one that does not exist.
 */
function authorize(api: SupervisorApi): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const principal = principalOf(c);
    const route = matchRoute(c.req.method, c.req.path);

    if (!principal.isAdmin && route?.spec.access !== 'viewer') {
      return send(c, httpError('FORBIDDEN', 'this needs the admin role'));
    }

    if (route?.server !== undefined && !seesServer(api, principal, route.server)) {
      throw serverNotFound(route.server);
    }

    await next();
    return undefined;
  };
}

function principalOf(c: Context<AppEnv>): Principal {
  return c.get('principal') ?? ANONYMOUS;
}

/** The request body as a JSON object; an empty body is `{}`. */
async function readObjectBody(c: Context<AppEnv>): Promise<Record<string, unknown>> {
  const text = await c.req.text();
  if (text.trim() === '') return {};

  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new SupervisorError('INVALID_REQUEST', 'the request body is not valid JSON');
  }

  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new SupervisorError('INVALID_REQUEST', 'the request body must be a JSON object');
  }

  return value as Record<string, unknown>;
}

/** An integer query parameter within bounds, or undefined when absent. */
function queryInt(c: Context<AppEnv>, name: string, min: number, max: number): number | undefined {
  const raw = c.req.query(name);
  if (raw === undefined || raw === '') return undefined;

  const value = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new SupervisorError('INVALID_REQUEST', `query parameter ${name} must be an integer`, {
      parameter: name,
      min,
    });
  }

  return value;
}

function serverNotFound(name: string): SupervisorError {
  return new SupervisorError('SERVER_NOT_FOUND', 'no such server', { server: name });
}

function payloadTooLarge(c: Context<AppEnv>): Response {
  const answer = httpError('PAYLOAD_TOO_LARGE', 'the request body exceeds 1 MiB', {
    maxBytes: MAX_BODY_BYTES,
  });

  return send(c, answer);
}

function send(c: Context, answer: HttpError): Response {
  for (const [key, value] of Object.entries(answer.headers)) c.header(key, value);

  return c.json(answer.body, answer.status);
}
