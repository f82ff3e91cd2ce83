/**
 * The statechart's public vocabulary: state names, reason codes and operator events.
 * Everything else (logs, API, frames, metrics, tests, docs) imports these; nothing retypes them.
 */

/** The six top-level states of a server actor. */
export const SERVER_STATES = [
  'connecting',
  'closed',
  'open',
  'halfOpen',
  'failed',
  'stopped',
] as const;

export type ServerState = (typeof SERVER_STATES)[number];

/** Why a transition happened. */
export const REASONS = [
  'connected',
  'connect_failed',
  'spawn_failed',
  'process_exited',
  'connection_lost',
  'session_lost',
  'auth_required',
  'probe_timeout',
  'probe_failed',
  'threshold_reached',
  'slow_calls',
  'backoff_elapsed',
  'trial_succeeded',
  'trial_failed',
  'half_open_deadline',
  'restart_intensity',
  'failed_retry',
  'exited_clean',
  'not_restarted',
  'config_changed',
  'removed',
  'shutdown',
  'operator_open',
  'operator_close',
  'operator_reset',
  'operator_restart',
  'operator_probe',
  'operator_disable',
  'operator_enable',
] as const;

export type Reason = (typeof REASONS)[number];

/** Operator events, each a transition with reason `operator_<event>`. */
export const OPERATOR_EVENTS = [
  'open',
  'close',
  'reset',
  'restart',
  'probe',
  'disable',
  'enable',
] as const;

export type OperatorEvent = (typeof OPERATOR_EVENTS)[number];

/** Restart policies, as in OTP. */
export const RESTART_POLICIES = ['permanent', 'transient', 'temporary'] as const;

export type RestartPolicy = (typeof RESTART_POLICIES)[number];

/** Reasons a connection attempt can fail with. */
export type ConnectFailureReason = Extract<
  Reason,
  'connect_failed' | 'spawn_failed' | 'process_exited' | 'auth_required'
>;

/** Reasons a live connection can be lost with. */
export type LostReason = Extract<
  Reason,
  'process_exited' | 'connection_lost' | 'session_lost' | 'auth_required'
>;

/** Extra facts carried by a transition; every field optional, none secret. */
export interface TransitionDetail {
  exitCode?: number | null;
  signal?: string | null;
  stderr?: string;
  message?: string;
  user?: string;
  retryAt?: number;
  attempt?: number;
  delayMs?: number;
  misses?: number;
  restarts?: number;
  [key: string]: unknown;
}

/** One transition of one server, as the supervisor streams it. */
export interface Transition {
  seq: number;
  server: string;
  from: ServerState | null;
  to: ServerState;
  reason: Reason;
  /** Epoch milliseconds. */
  at: number;
  detail: TransitionDetail;
}
