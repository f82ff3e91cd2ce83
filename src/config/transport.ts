import type { TransportKind } from './types.js';
import { joinPath, ProblemList } from './problems.js';

/** The spellings clients use for each transport, compared case-insensitively. */
const SPELLINGS: Record<string, TransportKind> = {
  stdio: 'stdio',
  http: 'http',
  'streamable-http': 'http',
  streamablehttp: 'http',
  streamable_http: 'http',
  sse: 'sse',
};

/** Normalizes a `type`/`transport` spelling (`streamableHttp`, `SSE`, ...), or undefined. */
export function normalizeTransport(spelling: string): TransportKind | undefined {
  const key = spelling.trim().toLowerCase();

  return Object.hasOwn(SPELLINGS, key) ? SPELLINGS[key] : undefined;
}

/** The fields of an entry that decide its transport, as written. */
export interface TransportFields {
  type?: string;
  transport?: string;
  command?: string;
  url?: string;
  /** Gemini CLI's spelling of a Streamable HTTP url. */
  httpUrl?: string;
  /** Windsurf's spelling of a remote url. */
  serverUrl?: string;
}

/** The decided transport and the url field in use. */
export interface TransportChoice {
  transport: TransportKind;
  fallbackToSse: boolean;
  url?: string;
}

/**
 * Decides an entry's transport: an explicit `type` (or `transport`) wins, else a `command`
 * means stdio and a url means Streamable HTTP with SSE as the fallback. Mixing a command and
 * a url, or having neither, is an error.
 */
export function chooseTransport(
  fields: TransportFields,
  base: string,
  problems: ProblemList,
): TransportChoice | undefined {
  const explicit = explicitKind(fields, base, problems);
  const url = pickUrl(fields, base, problems);
  if (explicit === null || url === null) return undefined;

  const hasCommand = fields.command !== undefined;
  const hasUrl = url !== undefined;

  if (hasCommand && hasUrl) {
    problems.error(base, 'mixes a stdio command with a remote url: keep one of them');
    return undefined;
  }

  const kind = explicit ?? (hasCommand ? 'stdio' : hasUrl ? 'http' : undefined);
  if (kind === undefined) {
    problems.error(base, 'needs a command (stdio) or a url (Streamable HTTP or SSE)');
    return undefined;
  }

  if (kind === 'stdio' && !hasCommand) {
    if (hasUrl) problems.error(joinPath(base, 'url'), 'type stdio takes a command, not a url');
    else problems.error(joinPath(base, 'command'), 'a stdio entry needs a command');
    return undefined;
  }

  if (kind !== 'stdio' && !hasUrl) {
    if (hasCommand)
      problems.error(joinPath(base, 'command'), `type ${kind} takes a url, not a command`);
    else problems.error(joinPath(base, 'url'), `a ${kind} entry needs a url`);
    return undefined;
  }

  const fallbackToSse = explicit === undefined && kind === 'http' && fields.httpUrl === undefined;

  return { transport: kind, fallbackToSse, ...(hasUrl ? { url } : {}) };
}

/** The explicit kind, undefined when none is given, null when it is unusable. */
function explicitKind(
  fields: TransportFields,
  base: string,
  problems: ProblemList,
): TransportKind | undefined | null {
  const kinds: TransportKind[] = [];

  for (const key of ['type', 'transport'] as const) {
    const spelling = fields[key];
    if (spelling === undefined) continue;

    const kind = normalizeTransport(spelling);
    if (!kind) {
      const shown = JSON.stringify(spelling.slice(0, 40));
      problems.error(joinPath(base, key), `unknown transport ${shown}: use stdio, http or sse`);
      return null;
    }

    kinds.push(kind);
  }

  if (kinds.length === 2 && kinds[0] !== kinds[1]) {
    problems.error(joinPath(base, 'transport'), 'type and transport name different transports');
    return null;
  }

  return kinds[0];
}

/** The url under whichever spelling is used, undefined when none, null when several. */
function pickUrl(
  fields: TransportFields,
  base: string,
  problems: ProblemList,
): string | undefined | null {
  const given = (['url', 'httpUrl', 'serverUrl'] as const).filter((k) => fields[k] !== undefined);

  if (given.length > 1) {
    problems.error(joinPath(base, given[1]), `gives a url twice (${given.join(', ')}): keep one`);
    return null;
  }

  return given[0] === undefined ? undefined : fields[given[0]];
}
