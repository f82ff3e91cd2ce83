/**
 * The server statechart's transition table, as data: every reported transition, with the
 * event that causes it and the guard that picks it. Written by hand beside the machine (not
 * used to build it); a path walk over the machine proves the two agree, both ways, and the
 * README shows this table through `mcp-supervisor statechart`.
 */
import type { Reason, ServerState } from './vocabulary.js';

/**
 * What causes a transition: an event sent to the actor (`connection.lost`, `operator.open`),
 * a timer (`after.<delay>`), a probe result from the `prober` (`probe.failed`), or the end of
 * an invoked actor (`done.<id>`, `error.<id>`).
 * `operator.enable` is the first entry of a fresh actor spawned by enable.
 */
export type TransitionCause =
  | 'connection.lost'
  | 'breaker.trip'
  | 'trial.result'
  | 'probe.failed'
  | 'server.stop'
  | `operator.${'open' | 'close' | 'reset' | 'restart' | 'probe' | 'disable' | 'enable'}`
  | `after.${'connectTimeout' | 'probeTimeout' | 'backoff' | 'halfOpenDeadline' | 'failedRetry'}`
  | `${'done' | 'error'}.${'connect' | 'reconnect' | 'trial'}`;

/** One row: `from` is a state, or `*` for every state but `stopped`. */
export interface TransitionRow {
  from: ServerState | '*';
  event: TransitionCause;
  /** In words; empty when the row needs no guard. */
  guard: string;
  to: ServerState;
  reason: Reason;
}

// Guards in words, kept free of the characters Mermaid reads as syntax.
const TEMPORARY = 'temporary policy';
const CONNECTED = 'transport alive';
const NOT_CONNECTED = 'transport gone';
/** At most `restart.maxRestarts` restarts within `restart.periodMs`, this one included. */
const WITHIN_BUDGET = 'restart budget left';
const OVER_BUDGET = 'restart budget spent';
const MISSES = 'health.failureThreshold misses';

/** Every transition a server actor reports. */
export const TRANSITIONS: readonly TransitionRow[] = [
  row('stopped', 'operator.enable', '', 'connecting', 'operator_enable'),

  row('connecting', 'done.connect', '', 'closed', 'connected'),
  row('connecting', 'error.connect', TEMPORARY, 'stopped', 'not_restarted'),
  row('connecting', 'error.connect', '', 'open', 'connect_failed'),
  row('connecting', 'error.connect', '', 'open', 'spawn_failed'),
  row('connecting', 'error.connect', '', 'open', 'process_exited'),
  row('connecting', 'error.connect', '', 'open', 'auth_required'),
  row('connecting', 'after.connectTimeout', '', 'open', 'connect_failed'),
  row('connecting', 'operator.probe', '', 'connecting', 'operator_probe'),

  row('closed', 'connection.lost', TEMPORARY, 'stopped', 'not_restarted'),
  row('closed', 'connection.lost', 'transient policy, clean exit', 'stopped', 'exited_clean'),
  row('closed', 'connection.lost', WITHIN_BUDGET, 'open', 'process_exited'),
  row('closed', 'connection.lost', WITHIN_BUDGET, 'open', 'connection_lost'),
  row('closed', 'connection.lost', WITHIN_BUDGET, 'open', 'session_lost'),
  row('closed', 'connection.lost', WITHIN_BUDGET, 'open', 'auth_required'),
  row('closed', 'connection.lost', OVER_BUDGET, 'failed', 'restart_intensity'),
  row('closed', 'breaker.trip', WITHIN_BUDGET, 'open', 'threshold_reached'),
  row('closed', 'breaker.trip', WITHIN_BUDGET, 'open', 'slow_calls'),
  row('closed', 'breaker.trip', OVER_BUDGET, 'failed', 'restart_intensity'),
  row('closed', 'probe.failed', `${MISSES}, ${WITHIN_BUDGET}`, 'open', 'probe_failed'),
  row('closed', 'probe.failed', `${MISSES}, ${OVER_BUDGET}`, 'failed', 'restart_intensity'),
  row('closed', 'after.probeTimeout', `${MISSES}, ${WITHIN_BUDGET}`, 'open', 'probe_timeout'),
  row('closed', 'after.probeTimeout', `${MISSES}, ${OVER_BUDGET}`, 'failed', 'restart_intensity'),
  row('closed', 'operator.probe', '', 'closed', 'operator_probe'),

  row('open', 'after.backoff', 'not held by an operator', 'halfOpen', 'backoff_elapsed'),
  row('open', 'operator.probe', '', 'halfOpen', 'operator_probe'),

  row('halfOpen', 'done.trial', '', 'closed', 'trial_succeeded'),
  row('halfOpen', 'trial.result', 'the trials succeeded', 'closed', 'trial_succeeded'),
  row('halfOpen', 'trial.result', 'a trial failed', 'open', 'trial_failed'),
  row('halfOpen', 'error.trial', '', 'open', 'trial_failed'),
  row('halfOpen', 'after.probeTimeout', '', 'open', 'trial_failed'),
  row('halfOpen', 'after.halfOpenDeadline', '', 'open', 'half_open_deadline'),
  row('halfOpen', 'error.reconnect', TEMPORARY, 'stopped', 'not_restarted'),
  row('halfOpen', 'error.reconnect', '', 'open', 'connect_failed'),
  row('halfOpen', 'error.reconnect', '', 'open', 'spawn_failed'),
  row('halfOpen', 'error.reconnect', '', 'open', 'process_exited'),
  row('halfOpen', 'error.reconnect', '', 'open', 'auth_required'),
  row('halfOpen', 'after.connectTimeout', '', 'open', 'connect_failed'),
  row('halfOpen', 'connection.lost', TEMPORARY, 'stopped', 'not_restarted'),
  row('halfOpen', 'connection.lost', '', 'open', 'process_exited'),
  row('halfOpen', 'connection.lost', '', 'open', 'connection_lost'),
  row('halfOpen', 'connection.lost', '', 'open', 'session_lost'),
  row('halfOpen', 'connection.lost', '', 'open', 'auth_required'),
  row('halfOpen', 'operator.probe', '', 'halfOpen', 'operator_probe'),

  row('failed', 'after.failedRetry', '', 'halfOpen', 'failed_retry'),
  row('failed', 'operator.probe', '', 'halfOpen', 'operator_probe'),

  row('*', 'operator.open', '', 'open', 'operator_open'),
  row('*', 'operator.close', CONNECTED, 'closed', 'operator_close'),
  row('*', 'operator.close', NOT_CONNECTED, 'connecting', 'operator_close'),
  row('*', 'operator.reset', CONNECTED, 'closed', 'operator_reset'),
  row('*', 'operator.reset', NOT_CONNECTED, 'connecting', 'operator_reset'),
  row('*', 'operator.restart', '', 'connecting', 'operator_restart'),
  row('*', 'operator.disable', '', 'stopped', 'operator_disable'),
  row('*', 'server.stop', '', 'stopped', 'removed'),
  row('*', 'server.stop', '', 'stopped', 'shutdown'),
  row('*', 'server.stop', '', 'stopped', 'config_changed'),
];

function row(
  from: TransitionRow['from'],
  event: TransitionCause,
  guard: string,
  to: ServerState,
  reason: Reason,
): TransitionRow {
  return { from, event, guard, to, reason };
}
