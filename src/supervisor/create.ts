import type { InspectionEvent } from 'xstate';

import { StreamServer } from '../broadcast/stream.js';
import { ConfigError, type ConfigProblem } from '../config/problems.js';
import { parseServerEntry } from '../config/entry.js';
import { defaultSettings, parseSettings, type Settings } from '../config/settings.js';
import type { ServerEntry } from '../config/types.js';
import { SupervisorError } from '../errors.js';
import { createApp } from '../http/app.js';
import type { HttpUser } from '../http/auth.js';
import { LOOPBACK_HOSTS } from '../http/hosts.js';
import { startHttpServer, type HttpServerHandle } from '../http/server.js';
import { serviceLogger, silentLogger, type Logger } from '../log.js';
import { reapOrphans } from '../mcp/process-group.js';
import { Redactor } from '../redact.js';
import { openStore, type StoreSpec } from '../store/open.js';
import { HistoryPruner } from '../store/retention.js';
import type { Store } from '../store/store.js';
import { TransitionWriter } from '../store/writer.js';
import { SupervisorAdmin } from './admin.js';
import { openInspectStream, type InspectStream } from './inspect.js';
import { ServerRegistry } from './registry.js';
import { SettingsService } from './settings-service.js';
import { SupervisorCore, type SupervisorClock } from './supervisor.js';
import { UserDirectory } from './user-directory.js';

/** Options of {@link createSupervisor}. */
export interface SupervisorOptions {
  /** `mcpServers` entries as in a config file (name → entry), or entries already validated. */
  servers?: Record<string, unknown> | ServerEntry[];
  /** The `supervisor` block: settings by dotted key or nested objects. */
  settings?: Record<string, unknown>;
  /** Where state and history live (default `'memory'`: nothing is written anywhere). */
  store?: StoreSpec;
  /** How long an unreachable PostgreSQL is retried at start (ms). Default 0: fail at once. */
  databaseWaitMs?: number;
  /** Serve the HTTP API and WebSocket stream (default `false`: no port is opened). */
  http?: false | HttpOptions;
  /** A pino logger (default: silent). */
  logger?: Logger;
  /** Drives every timer of the supervisor (XState's SimulatedClock fits). */
  clock?: SupervisorClock;
  /** In `[0, 1)`: the backoff jitter source (default `Math.random`). */
  random?: () => number;
  /**
   * XState inspection events of the root actor and every server actor: a function receives
   * them in process; `{ url }` streams them, secrets redacted, with @statelyai/inspect's
   * WebSocket inspector to a relay such as `ws://localhost:8080`.
   */
  inspect?: ((event: InspectionEvent) => void) | { url: string };
  /** Keep the logger's level whatever `log.level` says (the CLI's --log-level does). */
  fixedLogLevel?: boolean;
  /** The environment `${VAR}` references resolve from (default `process.env`). */
  env?: NodeJS.ProcessEnv;
}

/** Where and for whom the HTTP API and the WebSocket stream listen. */
export interface HttpOptions {
  /** Address to bind (default `127.0.0.1`); a non-loopback one needs `users`. */
  host?: string;
  /** Port (default 7300; 0 picks a free one). */
  port?: number;
  /**
   * Who may use the API and the stream, besides the users stored through `PUT /api/users`
   * (a name in both: this one wins). None at all leaves both open, loopback only.
   */
  users?: HttpUser[];
  /**
   * Names `Host` and `Origin` may carry besides the loopback names and the bound address
   * (unless it is a wildcard), optionally with `:port`: the defence against DNS rebinding.
   */
  allowedHosts?: string[];
}

/** A running supervisor: the API of {@link SupervisorCore} plus its listener and `stop()`. */
export class Supervisor extends SupervisorCore {
  /** The HTTP API's base URL, when `http` was asked for. */
  url: string | null = null;
  /** Settings writes, the registry and the store's books (see {@link SupervisorAdmin}). */
  admin: SupervisorAdmin | undefined;
  /** The config's users and those added through the API or the store ({@link UserDirectory}). */
  users: UserDirectory | undefined;
  private readonly listenerClosers: Array<() => Promise<void>> = [];
  private readonly storeClosers: Array<() => Promise<void>> = [];
  private stopped: Promise<void> | null = null;

  /** @internal Closed first on stop. */
  closeListenerOnStop(close: () => Promise<void>): void {
    this.listenerClosers.push(close);
  }

  /** @internal Closed last on stop, after every server is gone. */
  closeStoreOnStop(close: () => Promise<void>): void {
    this.storeClosers.push(close);
  }

  /** Stops listeners, then every server (no process left), then flushes and closes the store. */
  override stop(): Promise<void> {
    this.stopped ??= (async () => {
      for (const close of this.listenerClosers.reverse()) await close();
      await super.stop();
      for (const close of this.storeClosers) await close();
    })();

    return this.stopped;
  }
}

const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_PORT = 7300;

/**
 * Creates and starts a supervisor. Start-up order: store opened, locked and migrated; settings
 * loaded; orphan process groups reaped; supervisor started; listeners opened.
 */
export async function createSupervisor(options: SupervisorOptions = {}): Promise<Supervisor> {
  const logger = options.logger ?? silentLogger();
  const log = serviceLogger(logger, 'Main');
  const servers = validateServers(options.servers, options.env ?? process.env);
  const fileSettings = validateSettings(options.settings);
  if (options.store && options.store !== 'memory' && 'databaseUrl' in options.store) {
    validateDatabaseUrl(options.store.databaseUrl);
  }

  const store =
    options.store && options.store !== 'memory'
      ? await openStore(options.store, logger, { waitMs: options.databaseWaitMs ?? 0 })
      : null;
  try {
    const storeLog = serviceLogger(logger, 'Store');
    const settingsService = new SettingsService({ store, fileSettings, logger: storeLog });
    const settings = await settingsService.load();
    // `log.level` in the config file or the settings table sets the level, unless the caller
    // fixed it (the CLI's --log-level or LOG_LEVEL).
    if (!options.fixedLogLevel && settings['log.level'] !== defaultSettings()['log.level']) {
      logger.level = settings['log.level'];
    }
    const registry = new ServerRegistry({
      store,
      configServers: servers,
      logger: serviceLogger(logger, 'Supervisor'),
    });
    const allServers = await registry.load(settings['api.allowStdioServers']);
    const users = new UserDirectory({
      store,
      configUsers: options.http ? (options.http.users ?? []) : [],
      logger: serviceLogger(logger, 'Supervisor'),
      requireUsers: options.http ? !isLoopback(options.http.host ?? DEFAULT_HOST) : false,
    });
    await users.load();

    if (store) await reapRecordedGroups(store, logger);

    const writer = store
      ? new TransitionWriter(store, {
          maxPendingWrites: settings['store.maxPendingWrites'],
          logger: serviceLogger(logger, 'Store'),
        })
      : null;
    const inspectStream = await inspectOption(options.inspect, allServers, options.store);
    const supervisor = new Supervisor({
      servers: allServers,
      settings,
      logger,
      store,
      writer,
      startSeq: store ? await store.maxSeq() : 0,
      restore: store ? await store.serverStates() : [],
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.random ? { random: options.random } : {}),
      ...(inspectStream ? { inspect: inspectStream.inspect } : {}),
      secrets: storeSecrets(options.store),
    });
    // Last of all, so the stream carries the final transitions to `stopped`.
    if (inspectStream) supervisor.closeStoreOnStop(async () => inspectStream.stop());

    supervisor.admin = new SupervisorAdmin({
      core: supervisor,
      registry,
      settings: settingsService,
      store,
      writer,
      logger: serviceLogger(logger, 'Supervisor'),
    });
    supervisor.users = users;
    const pruner = store
      ? new HistoryPruner({
          store,
          retentionMs: () => supervisor.settings()['store.historyRetentionMs'],
          logger: storeLog,
        })
      : null;
    supervisor.closeListenerOnStop(async () => {
      await settingsService.close();
      await pruner?.stop();
    });

    if (store) {
      supervisor.closeStoreOnStop(async () => {
        await writer?.close();
        await store.close();
      });
    }

    supervisor.start();
    await settingsService.start((next, changed) => {
      supervisor.applySettings(next);
      if (changed.includes('log.level') && !options.fixedLogLevel) {
        logger.level = next['log.level'];
      }
    });
    void pruner?.start();

    if (options.http) {
      const handle = await listen(supervisor, options.http, users, logger);
      supervisor.url = handle.url;
      log.info({ url: handle.url }, 'listening');
    }

    return supervisor;
  } catch (error) {
    await store?.close().catch(() => undefined);
    throw error;
  }
}

async function listen(
  supervisor: Supervisor,
  http: HttpOptions,
  directory: UserDirectory,
  logger: Logger,
): Promise<HttpServerHandle> {
  const host = http.host ?? DEFAULT_HOST;
  const users = directory.users();

  if (users.length === 0 && !isLoopback(host)) {
    throw new SupervisorError(
      'INVALID_CONFIG',
      `refusing to bind ${host} without users: configure users or bind a loopback address`,
    );
  }

  const httpLog = serviceLogger(logger, 'Http');
  const allowedHosts = [...defaultAllowedHosts(host), ...(http.allowedHosts ?? [])];
  if (users.length === 0) httpLog.warn({ host }, 'no users configured: open API, loopback only');

  const stream = new StreamServer({
    api: supervisor,
    logger: serviceLogger(logger, 'WebSocket'),
    authenticate: directory.authenticate,
    allowedHosts,
  });
  // A changed or deleted user's streams close at once; anonymous ones once users exist.
  const unwatch = directory.onChange((name) => {
    stream.disconnect((principal) => principal.user === name || principal.user === undefined);
  });
  const app = createApp(supervisor, {
    logger: httpLog,
    authenticate: directory.authenticate,
    userAdmin: directory,
    allowedHosts,
  });
  const handle = await startHttpServer({
    app,
    host,
    port: http.port ?? DEFAULT_PORT,
    logger: httpLog,
    onUpgrade: (request, socket, head) => stream.handleUpgrade(request, socket, head),
  });

  supervisor.closeListenerOnStop(async () => {
    unwatch();
    await stream.close();
    await handle.close();
  });

  return handle;
}

function validateServers(
  servers: SupervisorOptions['servers'],
  env: NodeJS.ProcessEnv,
): ServerEntry[] {
  if (!servers) return [];
  if (Array.isArray(servers)) return servers;

  const entries: ServerEntry[] = [];
  const problems: ConfigProblem[] = [];

  for (const [name, raw] of Object.entries(servers)) {
    const parsed = parseServerEntry(name, raw, { env, source: 'config', basePath: 'mcpServers' });
    problems.push(...parsed.problems);
    if (parsed.entry) entries.push(parsed.entry);
  }

  const errors = problems.filter((p) => p.severity === 'error');
  if (errors.length > 0) throw new ConfigError(errors);

  const names = new Set<string>();
  for (const entry of entries) {
    if (names.has(entry.name)) {
      throw new ConfigError([
        { severity: 'error', path: `mcpServers.${entry.name}`, message: 'duplicate server name' },
      ]);
    }
    names.add(entry.name);
  }

  return entries;
}

function validateSettings(block: Record<string, unknown> | undefined): Partial<Settings> {
  const { values, problems } = parseSettings(block);

  if (problems.length > 0) {
    throw new ConfigError(
      problems.map((p) => ({ severity: 'error', path: `supervisor.${p.key}`, message: p.message })),
    );
  }

  return values;
}

async function reapRecordedGroups(store: Store, logger: Logger): Promise<void> {
  const records = await store.processGroups();
  if (records.length === 0) return;

  const reaped = await reapOrphans(records, serviceLogger(logger, 'Supervisor'));
  for (const record of records) await store.deleteProcessGroup(record.pgid);
  if (reaped.length > 0) serviceLogger(logger, 'Main').warn({ pgids: reaped }, 'orphans reaped');
}

async function inspectOption(
  inspect: SupervisorOptions['inspect'],
  servers: ServerEntry[],
  store: StoreSpec | undefined,
): Promise<Pick<InspectStream, 'inspect' | 'stop'> | null> {
  if (!inspect) return null;
  if (typeof inspect === 'function') return { inspect, stop: () => undefined };

  const redactor = new Redactor([...servers.flatMap((s) => s.secrets), ...storeSecrets(store)]);
  return openInspectStream(inspect.url, redactor);
}

/** A URL that is not a PostgreSQL one is refused at once, not waited for (never echoed). */
function validateDatabaseUrl(databaseUrl: string): void {
  let protocol = '';
  try {
    protocol = new URL(databaseUrl).protocol;
  } catch {
    protocol = '';
  }

  if (protocol !== 'postgres:' && protocol !== 'postgresql:') {
    throw new SupervisorError(
      'INVALID_CONFIG',
      'the database URL is not a postgres:// or postgresql:// URL',
    );
  }
}

function storeSecrets(spec: StoreSpec | undefined): string[] {
  if (!spec || spec === 'memory' || !('databaseUrl' in spec)) return [];

  try {
    const url = new URL(spec.databaseUrl);
    return [url.password, decodeURIComponent(url.password)].filter(Boolean);
  } catch {
    return [];
  }
}

/** The loopback names, plus the bound address unless it is a wildcard such as `0.0.0.0`. */
function defaultAllowedHosts(host: string): string[] {
  const wildcard = host === '0.0.0.0' || host === '::' || host === '';
  const name = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;

  return wildcard ? [...LOOPBACK_HOSTS] : [...new Set([...LOOPBACK_HOSTS, name.toLowerCase()])];
}

function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === 'localhost' || host === '::1' || host.startsWith('127.');
}
