import path from 'node:path';

import { z } from 'zod';

import type { ServerEntry } from './types.js';
import { entrySettings, entryTools } from './entry-options.js';
import { interpolate, type InterpolationScope } from './interpolate.js';
import { joinPath, ProblemList, type ConfigProblem } from './problems.js';
import { argSecrets, credential, urlSecrets } from './secrets.js';
import { chooseTransport } from './transport.js';

/** How to read one server entry. */
export interface ParseEntryOptions {
  /** Where `${VAR}` looks after the entry's own `env` (default: `process.env`). */
  env?: NodeJS.ProcessEnv;
  source: 'config' | 'api';
  /** JSON path of the entry, such as `mcpServers.github` (default: empty, paths relative). */
  basePath?: string;
  /** Directory a relative `cwd` is resolved against (the config file's directory). */
  baseDir?: string;
}

/** The validated entry (absent when there are errors) and every finding. */
export interface ParsedEntry {
  entry?: ServerEntry;
  problems: ConfigProblem[];
}

/** Server names used as they are; others get a derived safe name. */
export const SERVER_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

const NAME_LENGTH = 64;

const FIELD_SCHEMAS = {
  type: z.string(),
  transport: z.string(),
  command: z.string().min(1, 'must not be empty'),
  args: z.array(z.string()),
  env: z.record(z.string(), z.string()),
  cwd: z.string().min(1, 'must not be empty'),
  url: z.string().min(1, 'must not be empty'),
  httpUrl: z.string().min(1, 'must not be empty'),
  serverUrl: z.string().min(1, 'must not be empty'),
  headers: z.record(z.string(), z.string()),
  disabled: z.boolean(),
  enabled: z.boolean(),
  tags: z.array(z.string().min(1, 'must not be empty')),
  restart: z.union([z.string(), z.record(z.string(), z.unknown())], {
    error: 'must be a policy (permanent, transient, temporary) or an object of restart settings',
  }),
  supervisor: z.record(z.string(), z.unknown()),
  tools: z.record(z.string(), z.record(z.string(), z.unknown())),
} as const;

type FieldKey = keyof typeof FIELD_SCHEMAS;
type Fields = { [K in FieldKey]?: z.output<(typeof FIELD_SCHEMAS)[K]> };

const TRANSPORT_KEYS: FieldKey[] = ['type', 'transport', 'command', 'url', 'httpUrl', 'serverUrl'];

const PLAIN = { enumerable: true, writable: true, configurable: true } as const;

const IGNORED = 'belongs to other MCP clients and is ignored';

/** Keys other MCP clients write, each with why we ignore it. */
const FOREIGN_KEYS: Record<string, string> = {
  alwaysAllow: `${IGNORED} (tool approval is the client's business)`,
  autoApprove: `${IGNORED} (tool approval is the client's business)`,
  disabledTools: `${IGNORED} (tool filtering is the client's business)`,
  includeTools: `${IGNORED} (tool filtering is the client's business)`,
  excludeTools: `${IGNORED} (tool filtering is the client's business)`,
  timeout:
    `${IGNORED}: it means seconds in some clients and milliseconds in others; ` +
    'set supervisor.call.timeoutMs or tools.<name>.timeoutMs instead',
  envFile: `${IGNORED}: env files are not read; put the variables in env`,
  trust: IGNORED,
  oauth: IGNORED,
  description: IGNORED,
};

/**
 * Validates one server entry as MCP clients write it and resolves its `${VAR}` references.
 * Problems carry JSON paths under `basePath`; there is an entry only when there are no errors.
 */
export function parseServerEntry(
  name: string,
  raw: unknown,
  options: ParseEntryOptions,
): ParsedEntry {
  const base = options.basePath ?? '';
  const problems = new ProblemList();
  const naming = nameServer(name, base, problems);

  if (!isRecord(raw)) {
    problems.error(base, 'a server entry must be an object');
    return { problems: problems.items };
  }

  const { fields, invalid } = readFields(raw, base, problems);
  // A transport field of the wrong type is already reported; guessing past it would mislead.
  const transportReadable = !TRANSPORT_KEYS.some((key) => invalid.has(key));
  const choice = transportReadable ? chooseTransport(fields, base, problems) : undefined;
  const resolved = resolveValues(fields, base, options, problems);
  const settings = entrySettings(fields.supervisor, fields.restart, base, problems);
  const tools = entryTools(fields.tools ?? {}, joinPath(base, 'tools'), problems);

  if (choice) warnIgnored(fields, choice.transport === 'stdio', base, problems);
  if (!naming || !choice || problems.hasErrors) return { problems: problems.items };

  const stdio = choice.transport === 'stdio';

  const entry: ServerEntry = {
    ...naming,
    transport: choice.transport,
    fallbackToSse: choice.fallbackToSse,
    ...(stdio ? { command: resolved.command } : {}),
    args: stdio ? resolved.args : [],
    env: resolved.env,
    ...(stdio && resolved.cwd !== undefined ? { cwd: resolved.cwd } : {}),
    ...(stdio ? {} : { url: resolved.url }),
    headers: stdio ? {} : resolved.headers,
    enabled: fields.disabled !== true && fields.enabled !== false,
    tags: [...new Set(fields.tags ?? [])],
    settings,
    tools,
    secrets: [...resolved.secrets],
    source: options.source,
  };

  return { entry, problems: problems.items };
}

/** The safe form of a server name: characters outside `[A-Za-z0-9_.-]` become `-`, 64 at most. */
export function safeServerName(name: string): string {
  if (SERVER_NAME_PATTERN.test(name)) return name;

  return Array.from(name, (ch) => (/[A-Za-z0-9_.-]/.test(ch) ? ch : '-'))
    .join('')
    .slice(0, NAME_LENGTH);
}

function nameServer(
  name: string,
  base: string,
  problems: ProblemList,
): { name: string; originalName?: string } | undefined {
  const safe = safeServerName(name);

  if (safe === '' || /^\.+$/.test(safe)) {
    problems.error(base, 'a server name must not be empty or only dots');
    return undefined;
  }

  if (safe === name) return { name };

  problems.warn(
    base,
    `server name ${JSON.stringify(name)} is not [A-Za-z0-9_.-]{1,64}; ` +
      `it is used as ${JSON.stringify(safe)}`,
  );
  return { name: safe, originalName: name };
}

function readFields(
  raw: Record<string, unknown>,
  base: string,
  problems: ProblemList,
): { fields: Fields; invalid: Set<string> } {
  const fields: Record<string, unknown> = {};
  const invalid = new Set<string>();

  for (const [key, value] of Object.entries(raw)) {
    const at = joinPath(base, key);

    if (!Object.hasOwn(FIELD_SCHEMAS, key)) {
      const foreign = Object.hasOwn(FOREIGN_KEYS, key) ? FOREIGN_KEYS[key] : undefined;
      problems.warn(at, foreign ? `"${key}" ${foreign}` : `unknown key "${key}"; ignored`);
      continue;
    }

    const parsed = FIELD_SCHEMAS[key as FieldKey].safeParse(value);
    if (parsed.success) {
      fields[key] = parsed.data;
      continue;
    }

    invalid.add(key);
    problems.issues(at, parsed.error.issues);
  }

  return { fields: fields as Fields, invalid };
}

interface ResolvedValues {
  command?: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
  url?: string;
  headers: Record<string, string>;
  secrets: Set<string>;
}

/**
 * Resolves references: `env` values from the supervisor's environment only (so that
 * `"TOKEN": "${TOKEN}"` passes a variable through), everything else from `env` first.
 */
function resolveValues(
  fields: Fields,
  base: string,
  options: ParseEntryOptions,
  problems: ProblemList,
): ResolvedValues {
  const outer = options.env ?? process.env;
  const secrets = new Set<string>();
  const resolve = (text: string, at: string, scope: InterpolationScope): string => {
    const result = interpolate(text, at, scope);
    problems.add(result.problems);
    for (const secret of result.secrets) secrets.add(secret);
    return result.value;
  };

  const env = mapValues(fields.env ?? {}, (value, key) =>
    resolve(value, joinPath(base, 'env', key), { env: outer }),
  );
  const scope = { local: env, env: outer };
  const text = (value: string, ...at: Array<string | number>): string =>
    resolve(value, joinPath(base, ...at), scope);

  const command = fields.command === undefined ? undefined : text(fields.command, 'command');
  const args = (fields.args ?? []).map((arg, i) => text(arg, 'args', i));
  const headers = mapValues(fields.headers ?? {}, (value, key) => text(value, 'headers', key));
  const cwd = fields.cwd === undefined ? undefined : text(fields.cwd, 'cwd');
  const urlKey = (['url', 'httpUrl', 'serverUrl'] as const).find((k) => fields[k] !== undefined);
  const url = urlKey === undefined ? undefined : text(fields[urlKey] ?? '', urlKey);

  for (const value of [...Object.values(env), ...Object.values(headers)]) {
    for (const part of credential(value)) secrets.add(part);
  }
  for (const secret of argSecrets(args)) secrets.add(secret);
  if (url !== undefined && urlKey !== undefined) {
    for (const secret of checkUrl(url, joinPath(base, urlKey), problems)) secrets.add(secret);
  }
  secrets.delete('');

  const absoluteCwd = cwd && options.baseDir ? path.resolve(options.baseDir, cwd) : cwd;

  return { command, args, env, cwd: absoluteCwd, url, headers, secrets };
}

/** Checks a resolved url (never echoing it: it may hold credentials) and lists its secrets. */
function checkUrl(url: string, at: string, problems: ProblemList): string[] {
  if (url.includes('${')) return [];

  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    problems.error(at, 'is not a valid URL');
    return [];
  }

  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    problems.error(at, 'must be an http or https URL');
  }

  return urlSecrets(parsed);
}

function warnIgnored(fields: Fields, stdio: boolean, base: string, problems: ProblemList): void {
  const ignored: FieldKey[] = stdio ? ['headers'] : ['args', 'cwd'];
  const kind = stdio ? 'a stdio' : 'a remote';

  for (const key of ignored) {
    if (fields[key] !== undefined)
      problems.warn(joinPath(base, key), `is ignored for ${kind} entry`);
  }
}

function mapValues(
  input: Record<string, string>,
  fn: (value: string, key: string) => string,
): Record<string, string> {
  const out: Record<string, string> = {};

  for (const [key, value] of Object.entries(input)) {
    // defineProperty, so that a key named __proto__ stays a plain key.
    Object.defineProperty(out, key, { ...PLAIN, value: fn(value, key) });
  }

  return out;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
