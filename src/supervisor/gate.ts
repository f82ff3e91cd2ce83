import type { ServerState } from '../../machines/vocabulary.js';
import { SupervisorError } from '../errors.js';

/** What the gate tells the machine after a call: nothing, a trip, or a trial result. */
export type GateSignal =
  { kind: 'none' } | { kind: 'trip'; failures: number } | { kind: 'trial'; ok: boolean };

/** A ticket for one admitted call; hand it back with the outcome. */
export interface Admission {
  readonly trial: boolean;
  /** The breaker generation the call was admitted in: late results only update statistics. */
  readonly generation: number;
}

export interface GateOptions {
  failureThreshold: number;
  halfOpenMaxCalls: number;
}

/**
 * The synchronous gate beside a server actor: decides admission from the actor's state and
 * keeps per-call accounting in plain fields, so a call costs no actor event. The machine hears
 * only of crossings (a trip) and trial results.
 */
export class CallGate {
  private consecutiveFailures = 0;
  private trialsInFlight = 0;
  private generation = 0;
  private lastState: ServerState | null = null;

  constructor(private options: GateOptions) {}

  configure(options: GateOptions): void {
    this.options = options;
  }

  /**
   * Admits a call or throws the fail-fast error of DESIGN.md's calls-by-state table.
   * `retryAt` is the epoch ms of the next attempt while `open`.
   */
  admit(state: ServerState, retryAt: number | null): Admission {
    this.observe(state);

    switch (state) {
      case 'closed':
        return { trial: false, generation: this.generation };
      case 'halfOpen':
        if (this.trialsInFlight < this.options.halfOpenMaxCalls) {
          this.trialsInFlight += 1;
          return { trial: true, generation: this.generation };
        }
        throw circuitOpen(retryAt);
      case 'open':
        throw circuitOpen(retryAt);
      case 'connecting':
        throw new SupervisorError('SERVER_CONNECTING', 'the server is still connecting');
      case 'failed':
        throw new SupervisorError(
          'SERVER_FAILED',
          'the server is in a crash loop; it is retried only now and then',
        );
      case 'stopped':
        throw new SupervisorError('SERVER_STOPPED', 'the server is stopped');
    }
  }

  /**
   * Records a call's outcome. `counted` is false for outcomes that say nothing of the
   * server's health (an `isError` result, invalid params, an abort): a trial gives its permit
   * back without a verdict.
   */
  settle(admission: Admission, outcome: 'success' | 'failure' | 'ignored'): GateSignal {
    const current = admission.generation === this.generation;

    if (admission.trial && current) this.trialsInFlight = Math.max(0, this.trialsInFlight - 1);
    if (!current || outcome === 'ignored') return { kind: 'none' };

    if (admission.trial) return { kind: 'trial', ok: outcome === 'success' };

    if (outcome === 'success') {
      this.consecutiveFailures = 0;
      return { kind: 'none' };
    }

    this.consecutiveFailures += 1;
    if (this.consecutiveFailures < this.options.failureThreshold) return { kind: 'none' };

    const failures = this.consecutiveFailures;
    this.consecutiveFailures = 0;
    this.generation += 1;

    return { kind: 'trip', failures };
  }

  /** A new breaker state starts a new generation: counts and permits start over. */
  observe(state: ServerState): void {
    if (state === this.lastState) return;

    this.lastState = state;
    this.generation += 1;
    this.consecutiveFailures = 0;
    this.trialsInFlight = 0;
  }
}

function circuitOpen(retryAt: number | null): SupervisorError {
  const fields = retryAt === null ? {} : { retryAt };

  return new SupervisorError(
    'CIRCUIT_OPEN',
    'the circuit breaker is open: calls fail fast',
    fields,
  );
}
