import { canonicalJson } from '../cache/canonical-json.js';
import { parseServerEntry, SERVER_NAME_PATTERN } from '../config/entry.js';
import { ConfigError } from '../config/problems.js';
import type { ServerEntry } from '../config/types.js';
import { SupervisorError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';

export interface RegistryOptions {
  store: Store | null;
  /** The config file's servers: read-only through the API. */
  configServers: ServerEntry[];
  /** The `Supervisor` service logger. */
  logger: Logger;
  /** Epoch ms (default `Date.now`). */
  now?: () => number;
}

/** What a config reload changes: entries to spawn, to restart, and names to stop. */
export interface RegistryDiff {
  added: ServerEntry[];
  changed: ServerEntry[];
  removed: string[];
}

/** The path API entries are reported under in problems. */
const API_PATH = 'servers';

/**
 * Every server the supervisor runs: the config file's entries merged with those added through
 * the API (persisted in the store's registry table). A config entry wins a name clash and is
 * read-only through the API: changing or deleting it is a 409 `CONFLICT`.
 */
export class ServerRegistry {
  private readonly store: Store | null;
  private readonly log: Logger;
  private readonly now: () => number;
  private config = new Map<string, ServerEntry>();
  private readonly api = new Map<string, ServerEntry>();

  constructor(options: RegistryOptions) {
    this.store = options.store;
    this.log = options.logger;
    this.now = options.now ?? Date.now;
    this.config = byName(options.configServers);
  }

  /**
   * Reads the API entries from the store; a stored entry that no longer validates is skipped,
   * and so is a stdio entry while `api.allowStdioServers` is off.
   */
  async load(allowStdio = false): Promise<ServerEntry[]> {
    const rows = this.store ? await this.store.registry() : [];

    for (const row of rows) {
      const parsed = parseApiEntry(row.name, row.entry);
      if (!parsed.entry) {
        this.log.warn({ server: row.name, problems: parsed.problems }, 'stored server refused');
        continue;
      }

      if (parsed.entry.transport === 'stdio' && !allowStdio) {
        this.log.warn(
          { server: row.name },
          'stored stdio server skipped: api.allowStdioServers is off',
        );
        continue;
      }

      if (this.config.has(row.name)) {
        this.log.warn({ server: row.name }, 'stored server shadowed by the config file');
        continue;
      }

      this.api.set(row.name, parsed.entry);
    }

    return this.entries();
  }

  /** Config entries first (file order), then API entries. */
  entries(): ServerEntry[] {
    return [...this.config.values(), ...this.api.values()];
  }

  get(name: string): ServerEntry | undefined {
    return this.config.get(name) ?? this.api.get(name);
  }

  /**
   * Validates and stores an API entry. Throws CONFLICT for a config server, INVALID_CONFIG for a
   * bad entry (every problem listed), FORBIDDEN for a stdio entry unless allowed.
   *
   * @returns the new entry and the one it replaces, if any.
   */
  async put(
    name: string,
    raw: Record<string, unknown>,
    allowStdio: boolean,
  ): Promise<{ entry: ServerEntry; previous: ServerEntry | undefined }> {
    this.refuseConfig(name);
    if (!SERVER_NAME_PATTERN.test(name)) {
      throw new SupervisorError('INVALID_REQUEST', 'a server name is [A-Za-z0-9_.-]{1,64}', {
        server: name,
      });
    }

    const parsed = parseApiEntry(name, raw);
    if (!parsed.entry) throw new ConfigError(parsed.problems);

    if (parsed.entry.transport === 'stdio' && !allowStdio) {
      throw new SupervisorError(
        'FORBIDDEN',
        'adding stdio servers through the API is off: it runs commands on this host ' +
          '(setting api.allowStdioServers)',
        { server: name },
      );
    }

    await this.store?.putRegistry({ name, entry: raw, updatedAt: this.now() });

    const previous = this.api.get(name);
    this.api.set(name, parsed.entry);
    return { entry: parsed.entry, previous };
  }

  /** Deletes an API entry. Throws CONFLICT for a config server, SERVER_NOT_FOUND when unknown. */
  async remove(name: string): Promise<ServerEntry> {
    this.refuseConfig(name);

    const entry = this.api.get(name);
    if (!entry) {
      throw new SupervisorError('SERVER_NOT_FOUND', `no server named ${name}`, { server: name });
    }

    await this.store?.deleteRegistry(name);
    this.api.delete(name);
    return entry;
  }

  /**
   * Takes a reloaded config's servers and says what changed. An API entry whose name the
   * config now claims is shadowed (reported as changed); one the config gave back reappears.
   */
  replaceConfig(servers: ServerEntry[]): RegistryDiff {
    const before = new Map(this.entries().map((e) => [e.name, e]));
    this.config = byName(servers);
    const after = new Map(this.entries().map((e) => [e.name, e]));
    const diff: RegistryDiff = { added: [], changed: [], removed: [] };

    for (const [name, entry] of after) {
      const old = before.get(name);
      if (!old) diff.added.push(entry);
      else if (!sameEntry(old, entry)) diff.changed.push(entry);
    }

    for (const name of before.keys()) if (!after.has(name)) diff.removed.push(name);

    return diff;
  }

  /** Whether a name is the config file's. */
  isConfig(name: string): boolean {
    return this.config.has(name);
  }

  private refuseConfig(name: string): void {
    if (!this.config.has(name)) return;

    throw new SupervisorError(
      'CONFLICT',
      `server ${name} comes from the config file and is read-only through the API; ` +
        'edit the file instead',
      { server: name },
    );
  }
}

/** Whether two entries would run the same server the same way. */
export function sameEntry(a: ServerEntry, b: ServerEntry): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

/**
 * An API entry resolves `${VAR}` from its own `env` only: the supervisor's environment holds
 * its own secrets (such as `DATABASE_URL`), which an API caller must never be able to read.
 */
function parseApiEntry(name: string, raw: unknown): ReturnType<typeof parseServerEntry> {
  return parseServerEntry(name, raw, { env: {}, source: 'api', basePath: `${API_PATH}.${name}` });
}

function byName(entries: ServerEntry[]): Map<string, ServerEntry> {
  return new Map(entries.map((e) => [e.name, e]));
}
