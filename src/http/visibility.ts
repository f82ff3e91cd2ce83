/**
 * What a principal may see of the fleet: the filters every answer and frame about servers
 * passes through. A server a viewer cannot see does not exist for it: its name never appears
 * and asking for it is answered exactly as for a server that does not exist.
 */
import type { Transition } from '../../machines/vocabulary.js';
import type { HistoryQuery } from '../store/store.js';
import type { ServerStatus, SupervisorApi } from '../supervisor/types.js';
import type { Principal } from './principal.js';

/** The tags of every current server, by name. */
export function tagsByServer(api: SupervisorApi): Map<string, readonly string[]> {
  return new Map(api.servers().map((status) => [status.name, status.tags]));
}

/** Whether `principal` sees the server `name` (a server no longer configured: by name only). */
export function seesServer(api: SupervisorApi, principal: Principal, name: string): boolean {
  if (principal.seesAll) return true;

  const status = api.servers().find((s) => s.name === name);
  return principal.sees(name, status?.tags ?? []);
}

/** The statuses `principal` sees. */
export function visibleServers(api: SupervisorApi, principal: Principal): ServerStatus[] {
  const all = api.servers();
  if (principal.seesAll) return all;

  return all.filter((status) => principal.sees(status.name, status.tags));
}

/**
 * History as `principal` sees it: the store is read page by page until `limit` visible rows
 * are found or history ends, so a viewer's page is as full as anyone's.
 */
export async function visibleHistory(
  api: SupervisorApi,
  principal: Principal,
  query: HistoryQuery & { limit: number },
): Promise<Transition[]> {
  if (principal.seesAll) return api.history(query);

  const tags = tagsByServer(api);
  const seen = (t: Transition): boolean => principal.sees(t.server, tags.get(t.server) ?? []);

  if (query.server !== undefined && !principal.sees(query.server, tags.get(query.server) ?? [])) {
    return [];
  }

  const out: Transition[] = [];
  let after = query.after ?? 0;

  for (;;) {
    const page = await api.history({ ...query, after, limit: query.limit });
    out.push(...page.filter(seen));

    const last = page.at(-1);
    if (out.length >= query.limit || page.length < query.limit || !last) break;
    after = last.seq;
  }

  return out.slice(0, query.limit);
}
