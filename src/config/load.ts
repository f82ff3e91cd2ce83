import { readFile } from 'node:fs/promises';
import path from 'node:path';

import type { Settings } from './settings.js';
import type { ServerEntry } from './types.js';
import { parseServerEntry, safeServerName } from './entry.js';
import { ConfigError, hasErrors, joinPath, ProblemList, type ConfigProblem } from './problems.js';
import { parseSettingsBlock } from './settings-block.js';
import { parseDocument, propertiesOf, toValue, warnDuplicateKeys, type Node } from './tree.js';

export { ConfigError, formatProblems, hasErrors, type ConfigProblem } from './problems.js';
export {
  parseServerEntry,
  safeServerName,
  SERVER_NAME_PATTERN,
  type ParseEntryOptions,
  type ParsedEntry,
} from './entry.js';

/** A config file read and validated: whatever was usable, and every finding. */
export interface LoadedConfig {
  /** Entries without errors, in file order. */
  servers: ServerEntry[];
  /** The top-level `supervisor` block's settings that passed validation. */
  settings: Partial<Settings>;
  /** `supervisor.users`, passed through unvalidated. */
  users: unknown[];
  problems: ConfigProblem[];
  /** The file the config came from. */
  path?: string;
}

/** How to read a config text. */
export interface ParseConfigOptions {
  /** Where `${VAR}` looks after an entry's own `env` (default: `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** The file the text came from: relative `cwd` values resolve against its directory. */
  filename?: string;
}

const SERVER_KEYS = ['mcpServers', 'servers'] as const;

const TOP_LEVEL_NOTES: Record<string, string | null> = {
  $schema: null,
  inputs:
    'VS Code inputs ask a person for values, which a supervisor cannot do; ignored ' +
    '(use ${VAR} and the environment instead)',
};

/**
 * Reads the `mcpServers` JSON (or JSONC) that MCP clients write, VS Code's `servers` form too,
 * plus the `supervisor` block of settings and users.
 */
export function parseConfigText(text: string, options: ParseConfigOptions = {}): LoadedConfig {
  const problems = new ProblemList();
  const loaded: LoadedConfig = {
    servers: [],
    settings: {},
    users: [],
    problems: problems.items,
    ...(options.filename === undefined ? {} : { path: options.filename }),
  };

  const root = parseDocument(text, problems);
  if (!root) return loaded;

  if (root.type !== 'object') {
    problems.error('', 'a config must be a JSON object with an mcpServers block');
    return loaded;
  }

  const top = topLevel(root, problems);
  if (top.supervisor) readSupervisorBlock(top.supervisor, loaded, problems);

  if (top.servers) {
    const baseDir = options.filename ? path.dirname(path.resolve(options.filename)) : undefined;
    loaded.servers = readServers(top.servers, { env: options.env, baseDir }, problems);
  }

  return loaded;
}

/** Reads and validates a config file; a file that cannot be read is an error problem. */
export async function loadConfigFile(
  file: string,
  options: { env?: NodeJS.ProcessEnv } = {},
): Promise<LoadedConfig> {
  let text: string;

  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    const problem: ConfigProblem = {
      severity: 'error',
      path: '',
      message: `cannot read config file ${file} (${reason})`,
    };
    return { servers: [], settings: {}, users: [], problems: [problem], path: file };
  }

  return parseConfigText(text, { ...options, filename: file });
}

/** Like `loadConfigFile`, but a config with errors throws a `ConfigError`. */
export async function loadConfigOrThrow(
  file: string,
  options: { env?: NodeJS.ProcessEnv } = {},
): Promise<LoadedConfig> {
  const loaded = await loadConfigFile(file, options);

  if (hasErrors(loaded.problems)) throw new ConfigError(loaded.problems, file);

  return loaded;
}

interface TopLevel {
  servers?: { key: string; node: Node };
  supervisor?: Node;
}

function topLevel(root: Node, problems: ProblemList): TopLevel {
  const top: TopLevel = {};
  const seen = new Set<string>();

  for (const { key, value } of propertiesOf(root)) {
    const at = joinPath('', key);

    if (seen.has(key)) {
      problems.error(at, `${key} is given twice: a JSON reader would keep only the last one`);
      continue;
    }
    seen.add(key);

    if ((SERVER_KEYS as readonly string[]).includes(key)) {
      if (top.servers) {
        problems.error(at, `both ${top.servers.key} and ${key} are given: keep one`);
      } else {
        top.servers = { key, node: value };
      }
    } else if (key === 'supervisor') {
      top.supervisor = value;
    } else if (Object.hasOwn(TOP_LEVEL_NOTES, key)) {
      const note = TOP_LEVEL_NOTES[key];
      if (note) problems.warn(at, note);
    } else {
      problems.warn(at, `unknown top-level key "${key}"; ignored`);
    }
  }

  if (!top.servers) problems.warn('', 'no mcpServers block: no servers are configured');

  return top;
}

function readSupervisorBlock(node: Node, loaded: LoadedConfig, problems: ProblemList): void {
  warnDuplicateKeys(node, 'supervisor', problems);
  const block = toValue(node);

  if (block === null || typeof block !== 'object' || Array.isArray(block)) {
    problems.error('supervisor', 'the supervisor block must be an object of settings');
    return;
  }

  const { users, ...rest } = block as Record<string, unknown>;
  if (users !== undefined && !Array.isArray(users)) {
    problems.error('supervisor.users', 'users must be an array');
  } else if (users) {
    loaded.users = users;
  }

  const settings = parseSettingsBlock(rest, 'supervisor');
  problems.add(settings.problems);
  loaded.settings = settings.values;
}

function readServers(
  block: { key: string; node: Node },
  options: { env?: NodeJS.ProcessEnv; baseDir?: string },
  problems: ProblemList,
): ServerEntry[] {
  if (block.node.type !== 'object') {
    problems.error(block.key, `${block.key} must be an object of server name to entry`);
    return [];
  }

  const servers: ServerEntry[] = [];
  const seen = new Set<string>();
  const safeNames = new Map<string, string>();

  for (const { key: name, value } of propertiesOf(block.node)) {
    const at = joinPath(block.key, name);

    if (seen.has(name)) {
      problems.error(at, `duplicate server name ${JSON.stringify(name)}`);
      continue;
    }
    seen.add(name);

    const safe = safeServerName(name);
    const holder = safeNames.get(safe);
    if (holder !== undefined) {
      const both = `${JSON.stringify(holder)} and ${JSON.stringify(name)}`;
      problems.error(at, `server names ${both} both become ${JSON.stringify(safe)}`);
      continue;
    }
    safeNames.set(safe, name);

    warnDuplicateKeys(value, at, problems);
    const parsed = parseServerEntry(name, toValue(value), {
      ...options,
      source: 'config',
      basePath: at,
    });
    problems.add(parsed.problems);
    if (parsed.entry) servers.push(parsed.entry);
  }

  return servers;
}
