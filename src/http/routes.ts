/**
 * Every route of the API with the least role it needs. Requests are checked against this list
 * before any handler runs: a viewer reaches only the routes listed as `viewer`, so a route
 * added to the app but not here is closed to viewers, and the test matrix (generated from this
 * list) fails until it is listed and tested.
 */
import { OPERATOR_EVENTS } from '../../machines/vocabulary.js';

/** `open`: no token needed; `viewer`: any user; `admin`: admins only. */
export type RouteAccess = 'open' | 'viewer' | 'admin';

export type RouteMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface RouteSpec {
  method: RouteMethod;
  /** Hono's path pattern; `:name` is always a server name (visibility applies to it). */
  path: string;
  access: RouteAccess;
}

/** The API's routes, as DESIGN.md lists them. */
export const ROUTES: readonly RouteSpec[] = [
  { method: 'GET', path: '/healthz', access: 'open' },
  { method: 'GET', path: '/api/servers', access: 'viewer' },
  { method: 'GET', path: '/api/servers/:name', access: 'viewer' },
  { method: 'PUT', path: '/api/servers/:name', access: 'admin' },
  { method: 'DELETE', path: '/api/servers/:name', access: 'admin' },
  { method: 'POST', path: '/api/servers/:name/tools/:tool', access: 'viewer' },
  ...OPERATOR_EVENTS.map((event): RouteSpec => ({
    method: 'POST',
    path: `/api/servers/:name/${event}`,
    access: 'admin',
  })),
  { method: 'GET', path: '/api/transitions', access: 'viewer' },
  // Cache stats are fleet-wide sums, which would tell a viewer about servers it cannot see.
  { method: 'GET', path: '/api/cache', access: 'admin' },
  { method: 'DELETE', path: '/api/cache', access: 'admin' },
  { method: 'GET', path: '/api/settings', access: 'viewer' },
  { method: 'PUT', path: '/api/settings', access: 'admin' },
  { method: 'GET', path: '/api/store', access: 'admin' },
  { method: 'GET', path: '/api/users', access: 'admin' },
  { method: 'PUT', path: '/api/users/:user', access: 'admin' },
  { method: 'DELETE', path: '/api/users/:user', access: 'admin' },
];

/** A request matched to its route, with the server name it names (if any). */
export interface RouteMatch {
  spec: RouteSpec;
  server: string | undefined;
}

const COMPILED = ROUTES.map((spec) => ({ spec, pattern: compile(spec.path) }));

/** The route a request is for, or undefined when no listed route matches. */
export function matchRoute(method: string, path: string): RouteMatch | undefined {
  for (const { spec, pattern } of COMPILED) {
    if (spec.method !== method) continue;

    const match = pattern.exec(path);
    if (!match) continue;

    const raw = match.groups?.name;
    return { spec, server: raw === undefined ? undefined : safeDecode(raw) };
  }

  return undefined;
}

function compile(path: string): RegExp {
  const source = path
    .split('/')
    .map((part) => (part.startsWith(':') ? `(?<${part.slice(1)}>[^/]+)` : escape(part)))
    .join('/');

  return new RegExp(`^${source}/?$`);
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
