/**
 * The wire shapes of our values: inside the supervisor times are epoch ms, on the wire (HTTP
 * answers and stream frames) they are ISO-8601 UTC strings.
 */
import type { ServerState, Transition, TransitionDetail } from '../../machines/vocabulary.js';
import type { ServerDetail, ServerStatus } from '../supervisor/types.js';

/** A server status with ISO times. */
export type WireServerStatus = Omit<ServerStatus, 'since' | 'retryAt'> & {
  since: string;
  retryAt: string | null;
};

/** A server detail with ISO times. */
export type WireServerDetail = Omit<ServerDetail, 'since' | 'retryAt'> & {
  since: string;
  retryAt: string | null;
};

/** A transition with ISO times (`at`, and `detail.retryAt` when present). */
export interface WireTransition {
  seq: number;
  server: string;
  from: ServerState | null;
  to: ServerState;
  reason: string;
  at: string;
  detail: Record<string, unknown>;
}

/** Epoch ms to ISO-8601 UTC. */
export function toIso(epochMs: number): string {
  return new Date(epochMs).toISOString();
}

/** Nullable epoch ms to ISO-8601 UTC. */
export function toIsoOrNull(epochMs: number | null): string | null {
  return epochMs === null ? null : toIso(epochMs);
}

/** A server status as the wire shows it. */
export function formatStatus(status: ServerStatus): WireServerStatus {
  return { ...status, since: toIso(status.since), retryAt: toIsoOrNull(status.retryAt) };
}

/** A server detail as the wire shows it. */
export function formatDetail(detail: ServerDetail): WireServerDetail {
  return { ...detail, since: toIso(detail.since), retryAt: toIsoOrNull(detail.retryAt) };
}

/** A transition as the wire shows it. */
export function formatTransition(transition: Transition): WireTransition {
  return {
    seq: transition.seq,
    server: transition.server,
    from: transition.from,
    to: transition.to,
    reason: transition.reason,
    at: toIso(transition.at),
    detail: formatTransitionDetail(transition.detail),
  };
}

function formatTransitionDetail(detail: TransitionDetail): Record<string, unknown> {
  if (typeof detail.retryAt !== 'number') return { ...detail };

  return { ...detail, retryAt: toIso(detail.retryAt) };
}
