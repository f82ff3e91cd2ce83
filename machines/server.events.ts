import type {
  ConnectFailureReason,
  LostReason,
  OperatorEvent,
  Reason,
  ServerState,
  TransitionDetail,
} from './vocabulary.js';

/** The runtime's settings for one server, as the machine needs them. Milliseconds throughout. */
export interface ServerPolicy {
  healthIntervalMs: number;
  healthTimeoutMs: number;
  healthFailureThreshold: number;
  connectTimeoutMs: number;
  halfOpenDeadlineMs: number;
  backoffBaseMs: number;
  backoffCapMs: number;
  maxRestarts: number;
  restartPeriodMs: number;
  failedRetryMs: number;
  restartPolicy: 'permanent' | 'transient' | 'temporary';
}

/** The live connection was lost: process exit, EOF, network, session or auth loss. */
export interface ConnectionLostEvent {
  type: 'connection.lost';
  reason: LostReason;
  /** A stdio process that exited on its own with code 0. */
  clean: boolean;
  detail: TransitionDetail;
}

/** The call gate saw its failure window cross the threshold. */
export interface BreakerTripEvent {
  type: 'breaker.trip';
  reason: Extract<Reason, 'threshold_reached' | 'slow_calls'>;
  detail: TransitionDetail;
}

/** A half-open trial call finished (only counted outcomes are reported). */
export interface TrialResultEvent {
  type: 'trial.result';
  ok: boolean;
  detail: TransitionDetail;
}

/** An operator command, recorded with the acting user. */
export interface OperatorCommandEvent {
  type: `operator.${Exclude<OperatorEvent, 'enable'>}`;
  user: string | undefined;
  /** Why the runtime itself asked (a crossed `restart.maxRssBytes`, say): merged into detail. */
  detail?: TransitionDetail;
}

/** The supervisor stops this server for good. */
export interface ServerStopEvent {
  type: 'server.stop';
  reason: Extract<Reason, 'removed' | 'shutdown' | 'config_changed'>;
  user?: string;
}

/** New settings apply from now on. */
export interface PolicyUpdateEvent {
  type: 'policy.update';
  policy: ServerPolicy;
}

/** The prober's health probe answered (any JSON-RPC reply proves the server alive). */
export interface ProbeOkEvent {
  type: 'probe.ok';
}

/** The prober's health probe failed: transport error, internal error or no live connection. */
export interface ProbeFailedEvent {
  type: 'probe.failed';
  message: string;
}

/** What the machine asks of its prober: run one probe now, or drop the one in flight. */
export type ProberEvent = { type: 'probe.run' } | { type: 'probe.cancel' };

export type ServerEvent =
  | ConnectionLostEvent
  | ProbeOkEvent
  | ProbeFailedEvent
  | BreakerTripEvent
  | TrialResultEvent
  | OperatorCommandEvent
  | ServerStopEvent
  | PolicyUpdateEvent;

/** What a server actor reports on every top-level transition. */
export interface ServerTransitionEvent {
  type: 'server.transition';
  server: string;
  from: ServerState | null;
  to: ServerState;
  reason: Reason;
  at: number;
  detail: TransitionDetail;
  /** Facts the runtime persists: the backoff attempt, sticky open, the retry time. */
  attempt: number;
  stickyOpen: boolean;
  retryAt: number | null;
}

/** What the connect actor rejects with: the reason decides the transition. */
export interface ConnectFailure {
  reason: ConnectFailureReason;
  detail: TransitionDetail;
}

/** What the probe actor rejects with. */
export interface ProbeFailure {
  timeout?: boolean;
  message: string;
}

export function connectionLost(
  reason: LostReason,
  detail: TransitionDetail = {},
  clean = false,
): ConnectionLostEvent {
  return { type: 'connection.lost', reason, clean, detail };
}

export function probeOk(): ProbeOkEvent {
  return { type: 'probe.ok' };
}

export function probeFailed(message: string): ProbeFailedEvent {
  return { type: 'probe.failed', message };
}

export function probeRun(): ProberEvent {
  return { type: 'probe.run' };
}

export function probeCancel(): ProberEvent {
  return { type: 'probe.cancel' };
}

export function breakerTrip(
  reason: BreakerTripEvent['reason'],
  detail: TransitionDetail = {},
): BreakerTripEvent {
  return { type: 'breaker.trip', reason, detail };
}

export function trialResult(ok: boolean, detail: TransitionDetail = {}): TrialResultEvent {
  return { type: 'trial.result', ok, detail };
}

export function operatorCommand(
  command: Exclude<OperatorEvent, 'enable'>,
  user?: string,
  detail?: TransitionDetail,
): OperatorCommandEvent {
  return detail
    ? { type: `operator.${command}`, user, detail }
    : { type: `operator.${command}`, user };
}

export function serverStop(reason: ServerStopEvent['reason'], user?: string): ServerStopEvent {
  return { type: 'server.stop', reason, user };
}

export function policyUpdate(policy: ServerPolicy): PolicyUpdateEvent {
  return { type: 'policy.update', policy };
}
