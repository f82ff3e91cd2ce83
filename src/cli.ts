#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';

import { formatProblems, hasErrors, loadConfigFile } from './config/load.js';
import { isSupervisorError } from './errors.js';
import { createLogger, serviceLogger, type Logger } from './log.js';
import type { StoreSpec } from './store/open.js';
import { createSupervisor, type Supervisor } from './supervisor/create.js';

const DEFAULT_DATA_DIR = '.mcp-supervisor';

interface StartFlags {
  config: string;
  dataDir: string;
  databaseUrl?: string;
  memory?: boolean;
  host: string;
  port: number;
  logLevel?: string;
}

const program = new Command('mcp-supervisor')
  .description('Supervise a fleet of MCP servers: breakers, backoff, cache, live state')
  .showHelpAfterError();

program
  .command('start')
  .description('supervise the servers of an mcpServers config file')
  .option('-c, --config <file>', 'the mcpServers JSON (or JSONC) file', 'mcp.json')
  .option('--data-dir <dir>', 'embedded database directory', DEFAULT_DATA_DIR)
  .option('--database-url <url>', 'PostgreSQL URL (default: $DATABASE_URL; else embedded)')
  .option('--memory', 'keep nothing on disk')
  .option('--host <host>', 'address of the HTTP API and WebSocket stream', '127.0.0.1')
  .option('--port <port>', 'port (0 picks a free one)', parsePort, 7300)
  .option('--log-level <level>', 'trace, debug, info, warn, error (default: $LOG_LEVEL or info)')
  .action(async (flags: StartFlags) => {
    await start(flags);
  });

program
  .command('check')
  .description('validate a config file: every error and warning with its JSON path')
  .option('-c, --config <file>', 'the mcpServers JSON (or JSONC) file', 'mcp.json')
  .action(async (flags: { config: string }) => {
    const loaded = await loadConfigFile(flags.config);

    if (loaded.problems.length > 0) process.stdout.write(`${formatProblems(loaded.problems)}\n`);

    if (hasErrors(loaded.problems)) {
      process.exitCode = 1;
      return;
    }

    const count = loaded.servers.length;
    process.stdout.write(`${flags.config}: ok, ${count} server${count === 1 ? '' : 's'}\n`);
  });

async function start(flags: StartFlags): Promise<void> {
  const level = (flags.logLevel ?? process.env.LOG_LEVEL ?? 'info') as 'info';
  const root = createLogger({ level });
  const log = serviceLogger(root, 'Main');
  const loaded = await loadConfigFile(flags.config);

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
    supervisor = await createSupervisor({
      servers: loaded.servers,
      settings: loaded.settings,
      store: storeSpec(flags),
      http: { host: flags.host, port: flags.port },
      logger: root,
    });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (isSupervisorError(err)) log.fatal({ code: err.code }, message);
    else log.fatal({ err }, 'start-up failed');
    return exit(root, 1);
  }

  log.info({ servers: loaded.servers.length, config: flags.config }, 'supervising');
  stopOnSignals(supervisor, root);
}

function stopOnSignals(supervisor: Supervisor, root: Logger): void {
  const log = serviceLogger(root, 'Main');
  let stopping = false;

  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
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
  if (flags.memory) return 'memory';

  const databaseUrl = flags.databaseUrl ?? process.env.DATABASE_URL;
  return databaseUrl ? { databaseUrl } : { dataDir: flags.dataDir };
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
