import { pino, type Logger, type LevelWithSilent, type DestinationStream } from 'pino';

import type { ServerState } from '../machines/vocabulary.js';

export type { Logger } from 'pino';

/** The services that write log lines; every line carries one of these as `service`. */
export const SERVICES = [
  'Main',
  'Supervisor',
  'Server',
  'Breaker',
  'Cache',
  'Store',
  'WebSocket',
  'Http',
] as const;

export type Service = (typeof SERVICES)[number];

export interface LoggerOptions {
  level?: LevelWithSilent;
  /** Where lines go: stdout by default, stderr when stdout carries MCP. */
  destination?: 'stdout' | 'stderr' | DestinationStream;
  /** Pretty-print with pino-pretty (default: when the destination is a TTY). */
  pretty?: boolean;
}

/** Key paths pino masks whatever their values (the first layer; values are scrubbed too). */
const REDACT_PATHS = [
  'headers.authorization',
  'headers.cookie',
  '*.headers.authorization',
  'env',
  '*.env',
  'password',
  'token',
  '*.token',
];

/** Creates the root logger. Children are made with {@link serviceLogger}. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? (process.env.LOG_LEVEL as LevelWithSilent | undefined) ?? 'info';
  const destination = options.destination ?? 'stdout';
  const fd = destination === 'stderr' ? 2 : 1;
  const isTty =
    typeof destination === 'string' &&
    Boolean(fd === 2 ? process.stderr.isTTY : process.stdout.isTTY);
  const base = { level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: undefined };

  if (typeof destination !== 'string') {
    return pino(base, destination);
  }

  if (options.pretty ?? isTty) {
    return pino({
      ...base,
      transport: { target: 'pino-pretty', options: { destination: fd, messageKey: 'msg' } },
    });
  }

  return pino(base, pino.destination({ fd, sync: false }));
}

/** The child logger of one service. */
export function serviceLogger(root: Logger, service: Service, bindings: object = {}): Logger {
  return root.child({ service, ...bindings });
}

/** A logger that writes nothing: the library default when the embedder passes none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** The level a transition into `state` is logged at: decided here, nowhere else. */
export function transitionLevel(state: ServerState): 'info' | 'warn' | 'error' | 'debug' {
  switch (state) {
    case 'closed':
      return 'info';
    case 'open':
      return 'warn';
    case 'failed':
      return 'error';
    default:
      return 'info';
  }
}
