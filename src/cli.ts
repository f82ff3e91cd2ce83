#!/usr/bin/env node
import { createRequire } from 'node:module';

import { Command, InvalidArgumentError } from 'commander';

import {
  renderStatechart,
  STATECHART_FORMATS,
  type StatechartFormat,
} from '../machines/statechart.js';

import { formatProblems, hasErrors, loadConfigFile, type LoadedConfig } from './config/load.js';
import { ConfigReloader } from './config/reload.js';
import { parseUsers } from './config/users.js';
import type { HttpUser } from './http/auth.js';
import { isSupervisorError } from './errors.js';
import { createLogger, serviceLogger, type Logger } from './log.js';
import type { StoreSpec } from './store/open.js';
import { createSupervisor, type Supervisor } from './supervisor/create.js';
import { startInspectRelay } from './supervisor/inspect.js';

const DEFAULT_DATA_DIR = '.mcp-supervisor';

interface StartFlags {
  config: string;
  dataDir: string;
  databaseUrl?: string;
  memory?: boolean;
  databaseWaitMs: number;
  host: string;
  port: number;
  allowedHost?: string[];
  logLevel?: string;
  /** `true` for a local relay; a `ws://` URL for a relay already running. */
  inspect?: string | boolean;
}

const program = new Command('mcp-supervisor')
  .version(packageVersion(), '-V, --version')
  .description('Supervise a fleet of MCP servers: breakers, backoff, cache, live state')
  .showHelpAfterError();

program
  .command('start')
  .description('supervise the servers of an mcpServers config file')
  .option('-c, --config <file>', 'the mcpServers JSON (or JSONC) file', 'mcp.json')
  .option('--data-dir <dir>', 'embedded database directory', DEFAULT_DATA_DIR)
  .option('--database-url <url>', 'PostgreSQL URL (default: $DATABASE_URL; else embedded)')
  .option('--memory', 'keep nothing on disk')
  .option('--database-wait-ms <ms>', 'retry an unreachable database at start', parseMs, 30_000)
  .option('--host <host>', 'address of the HTTP API and WebSocket stream', '127.0.0.1')
  .option('--port <port>', 'port (0 picks a free one)', parsePort, 7300)
  .option('--allowed-host <name...>', 'Host/Origin names to accept besides loopback and --host')
  .option('--log-level <level>', 'trace, debug, info, warn, error (default: $LOG_LEVEL or info)')
  .option('--inspect [url]', 'stream XState inspection to a relay (none given: start one)')
  .action(async (flags: StartFlags) => {
    await start(flags);
  });

program
  .command('statechart')
  .description('print the server statechart: a Mermaid diagram, or JSON with its definitions')
  .option('--format <format>', 'mermaid or json', parseStatechartFormat, 'mermaid')
  .action((flags: { format: StatechartFormat }) => {
    process.stdout.write(renderStatechart(flags.format));
  });

program
  .command('check')
  .description('validate a config file: every error and warning with its JSON path')
  .option('-c, --config <file>', 'the mcpServers JSON (or JSONC) file', 'mcp.json')
  .action(async (flags: { config: string }) => {
    const loaded = await loadWithUsers(flags.config);

    if (loaded.problems.length > 0) process.stdout.write(`${formatProblems(loaded.problems)}\n`);

    if (hasErrors(loaded.problems)) {
      process.exitCode = 1;
      return;
    }

    const count = loaded.servers.length;
    process.stdout.write(`${flags.config}: ok, ${count} server${count === 1 ? '' : 's'}\n`);
  });

async function start(flags: StartFlags): Promise<void> {
  const fixedLevel = flags.logLevel ?? (process.env.LOG_LEVEL || undefined);
  const level = parseLevel(fixedLevel ?? 'info');
  if (!level) {
    process.stderr.write(
      `mcp-supervisor: log level "${fixedLevel}" is not one of ${LEVELS.join(', ')}\n`,
    );
    process.exitCode = 1;
    return;
  }

  const root = createLogger({ level });
  const log = serviceLogger(root, 'Main');
  const loaded = await loadWithUsers(flags.config);

  for (const problem of loaded.problems) {
    const fields = { path: problem.path, problem: problem.message };
    if (problem.severity === 'error') log.error(fields, 'config error');
    else log.warn(fields, 'config warning');
  }

  if (hasErrors(loaded.problems)) {
    log.fatal({ config: flags.config }, 'config refused');
    return exit(root, 1);
  }

  let supervisor: Supervisor;
  try {
    const inspect = await inspectTarget(flags, log);
    supervisor = await createSupervisor({
      fixedLogLevel: fixedLevel !== undefined,
      ...(inspect ? { inspect: { url: inspect.url } } : {}),
      servers: loaded.servers,
      settings: loaded.settings,
      store: storeSpec(flags),
      databaseWaitMs: flags.databaseWaitMs,
      http: {
        host: flags.host,
        port: flags.port,
        users: loaded.httpUsers,
        ...(flags.allowedHost ? { allowedHosts: flags.allowedHost } : {}),
      },
      logger: root,
    });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    if (isSupervisorError(err)) log.fatal({ code: err.code }, message);
    else if (err instanceof InvalidArgumentError) log.fatal(message);
    else if (code === 'EADDRINUSE') log.fatal({ port: flags.port }, `port ${flags.port} is in use`);
    else log.fatal({ err }, 'start-up failed');
    return exit(root, 1);
  }

  if (relay) supervisor.closeStoreOnStop(async () => relay?.stop());
  log.info({ servers: loaded.servers.length, config: flags.config }, 'supervising');
  stopOnSignals(supervisor, root);
  reloadOnChange(supervisor, flags.config, root);
}

/** SIGHUP and edits of the file reload the config; a broken file changes nothing. */
function reloadOnChange(supervisor: Supervisor, file: string, root: Logger): void {
  const admin = supervisor.admin;
  if (!admin) return;

  const reloader = new ConfigReloader({
    file,
    apply: (servers, settings) => admin.applyConfig(servers, settings),
    logger: serviceLogger(root, 'Main'),
  });
  reloader.watch();
  process.on('SIGHUP', () => {
    reloader.reload().catch(() => undefined);
  });
}

/** The config with `supervisor.users` validated (tokens hashed) and their problems added. */
async function loadWithUsers(file: string): Promise<LoadedConfig & { httpUsers: HttpUser[] }> {
  const loaded = await loadConfigFile(file);
  const parsed = parseUsers(loaded.users.length > 0 ? loaded.users : undefined);

  return {
    ...loaded,
    users: [],
    problems: [...loaded.problems, ...parsed.problems],
    httpUsers: parsed.users,
  };
}

/** The relay this process started for `--inspect` without a URL. */
let relay: { stop(): void } | null = null;

const INSPECT_RELAY_PORT = 8080;

async function inspectTarget(flags: StartFlags, log: Logger): Promise<{ url: string } | null> {
  if (!flags.inspect) return null;
  if (typeof flags.inspect === 'string') return { url: flags.inspect };

  const started = await startInspectRelay(INSPECT_RELAY_PORT);
  relay = started;
  log.info({ open: started.url }, 'inspector relay started');

  return { url: `ws://localhost:${INSPECT_RELAY_PORT}` };
}

function stopOnSignals(supervisor: Supervisor, root: Logger): void {
  const log = serviceLogger(root, 'Main');
  let stopping = false;

  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: killing every server now and exiting');
      supervisor.killAllNow();
      process.exit(1);
    }

    stopping = true;
    log.info({ signal }, 'stopping');
    supervisor.stop().then(
      () => {
        log.info('stopped');
        exit(root, 0);
      },
      (err: unknown) => {
        log.error({ err }, 'stop failed');
        exit(root, 1);
      },
    );
  };

  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

function storeSpec(flags: StartFlags): StoreSpec {
  if (flags.memory && flags.databaseUrl) {
    throw new InvalidArgumentError('--memory and --database-url exclude each other');
  }

  if (flags.memory) return 'memory';

  const databaseUrl = flags.databaseUrl ?? (process.env.DATABASE_URL || undefined);
  return databaseUrl ? { databaseUrl } : { dataDir: flags.dataDir };
}

function parseStatechartFormat(value: string): StatechartFormat {
  const format = STATECHART_FORMATS.find((f) => f === value);
  if (!format) throw new InvalidArgumentError(`one of ${STATECHART_FORMATS.join(', ')}`);

  return format;
}

function parseMs(value: string): number {
  const ms = Number(value);
  if (!Number.isSafeInteger(ms) || ms < 0) {
    throw new InvalidArgumentError('a duration is a whole number of milliseconds');
  }

  return ms;
}

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

function parseLevel(value: string): (typeof LEVELS)[number] | undefined {
  return LEVELS.find((level) => level === value);
}

/** The package's version; package.json is one folder up from src/, two from dist/src/. */
function packageVersion(): string {
  const require = createRequire(import.meta.url);

  for (const candidate of ['../package.json', '../../package.json']) {
    try {
      const pkg = require(candidate) as { name?: string; version?: string };
      if (pkg.name === 'mcp-supervisor' && pkg.version) return pkg.version;
    } catch {
      // Not at this depth: try the next.
    }
  }

  return 'unknown';
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new InvalidArgumentError('a port is an integer from 0 to 65535');
  }

  return port;
}

/** Exits once the logger has written everything. */
function exit(root: Logger, code: number): void {
  root.flush(() => process.exit(code));
}

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`mcp-supervisor: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
