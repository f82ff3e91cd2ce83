import type { InspectionEvent } from 'xstate';

import { StreamServer } from '../broadcast/stream.js';
import { ConfigError, type ConfigProblem } from '../config/problems.js';
import { parseServerEntry } from '../config/entry.js';
import { mergeSettings, parseSettings, type Settings } from '../config/settings.js';
import type { ServerEntry } from '../config/types.js';
import { SupervisorError } from '../errors.js';
import { createApp } from '../http/app.js';
import type { HttpUser } from '../http/auth.js';
import { startHttpServer, type HttpServerHandle } from '../http/server.js';
import { serviceLogger, silentLogger, type Logger } from '../log.js';
import { reapOrphans } from '../mcp/process-group.js';
import { openStore, type StoreSpec } from '../store/open.js';
import type { Store } from '../store/store.js';
import { TransitionWriter } from '../store/writer.js';
import { SupervisorCore, type SupervisorClock } from './supervisor.js';

/** Options of {@link createSupervisor}. */
export interface SupervisorOptions {
  /** `mcpServers` entries as in a config file (name → entry), or entries already validated. */
  servers?: Record<string, unknown> | ServerEntry[];
  /** The `supervisor` block: settings by dotted key or nested objects. */
  settings?: Record<string, unknown>;
  /** Where state and history live (default `'memory'`: nothing is written anywhere). */
  store?: StoreSpec;
  /** Serve the HTTP API and WebSocket stream (default `false`: no port is opened). */
  http?: false | { host?: string; port?: number; users?: HttpUser[] };
  /** A pino logger (default: silent). */
  logger?: Logger;
  /** Drives every timer of the supervisor (XState's SimulatedClock fits). */
  clock?: SupervisorClock;
  /** In `[0, 1)`: the backoff jitter source (default `Math.random`). */
  random?: () => number;
  /** Receives XState inspection events of the root actor and every server actor. */
  inspect?: (event: InspectionEvent) => void;
  /** The environment `${VAR}` references resolve from (default `process.env`). */
  env?: NodeJS.ProcessEnv;
}

/** A running supervisor: the API of {@link SupervisorCore} plus its listener and `stop()`. */
export class Supervisor extends SupervisorCore {
  /** The HTTP API's base URL, when `http` was asked for. */
  url: string | null = null;
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

  const store =
    options.store && options.store !== 'memory' ? await openStore(options.store, logger) : null;
  try {
    const tableSettings = store ? await loadTableSettings(store, logger) : {};
    const settings = mergeSettings(fileSettings, tableSettings);

    if (store) await reapRecordedGroups(store, logger);

    const writer = store
      ? new TransitionWriter(store, {
          maxPendingWrites: settings['store.maxPendingWrites'],
          logger,
        })
      : null;
    const supervisor = new Supervisor({
      servers,
      settings,
      logger,
      store,
      writer,
      startSeq: store ? await store.maxSeq() : 0,
      restore: store ? await store.serverStates() : [],
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.random ? { random: options.random } : {}),
      ...(options.inspect ? { inspect: options.inspect } : {}),
      secrets: storeSecrets(options.store),
    });

    if (store) {
      supervisor.closeStoreOnStop(async () => {
        await writer?.flush();
        await store.close();
      });
    }

    supervisor.start();

    if (options.http) {
      const handle = await listen(supervisor, options.http, logger);
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
  http: { host?: string; port?: number; users?: HttpUser[] },
  logger: Logger,
): Promise<HttpServerHandle> {
  const host = http.host ?? DEFAULT_HOST;
  const users = http.users ?? [];

  if (users.length === 0 && !isLoopback(host)) {
    throw new SupervisorError(
      'INVALID_CONFIG',
      `refusing to bind ${host} without users: configure users or bind a loopback address`,
    );
  }

  const httpLog = serviceLogger(logger, 'Http');
  const stream = new StreamServer({
    api: supervisor,
    logger: serviceLogger(logger, 'WebSocket'),
    users,
  });
  const handle = await startHttpServer({
    app: createApp(supervisor, { logger: httpLog, users }),
    host,
    port: http.port ?? DEFAULT_PORT,
    logger: httpLog,
    onUpgrade: (request, socket, head) => stream.handleUpgrade(request, socket, head),
  });

  supervisor.closeListenerOnStop(async () => {
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

/** The settings table; a bad value (written by SQL) is logged and ignored. */
async function loadTableSettings(store: Store, logger: Logger): Promise<Partial<Settings>> {
  const raw = await store.settings();
  const { values, problems } = parseSettings(raw);

  if (problems.length === 0) return values;

  const log = serviceLogger(logger, 'Store');
  const good: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    const one = parseSettings({ [key]: value });
    if (one.problems.length === 0) Object.assign(good, one.values);
    else log.warn({ key, problem: one.problems[0]?.message }, 'stored setting refused');
  }

  return good as Partial<Settings>;
}

async function reapRecordedGroups(store: Store, logger: Logger): Promise<void> {
  const records = await store.processGroups();
  if (records.length === 0) return;

  const reaped = await reapOrphans(records, serviceLogger(logger, 'Supervisor'));
  for (const record of records) await store.deleteProcessGroup(record.pgid);
  if (reaped.length > 0) serviceLogger(logger, 'Main').warn({ pgids: reaped }, 'orphans reaped');
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

function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === 'localhost' || host === '::1' || host.startsWith('127.');
}
