import type { ServerState } from '../../machines/vocabulary.js';
import { createFailureWindow } from '../breaker/create-window.js';
import type { FailureWindow, WindowOptions, WindowStats, WindowTrip } from '../breaker/window.js';
import { SupervisorError } from '../errors.js';

/** What the gate tells the machine after a call: nothing, a trip, or a trial verdict. */
export type GateSignal =
  { kind: 'none' } | { kind: 'trip'; trip: WindowTrip } | { kind: 'trial'; ok: boolean };

/** How a call ended: `ignored` says nothing of the server's health (isError, bad params, abort). */
export type GateOutcome = 'success' | 'failure' | 'ignored';

/** A ticket for one admitted call; hand it back with the outcome. */
export interface Admission {
  readonly trial: boolean;
  /** The breaker generation the call was admitted in: late results only update statistics. */
  readonly generation: number;
  /** Epoch ms of admission, for the slow-call threshold. */
  readonly startedAt: number;
}

/** The `breaker.*` settings of the gate. */
export interface GateOptions extends WindowOptions {
  /** Trial calls admitted in `halfOpen`; that many successes close. Default 1. */
  halfOpenMaxCalls: number;
  /** A call slower than this (ms) is slow. Default 10000. */
  slowCallMs: number;
}

/** The gate's books, for the status and the tests. */
export interface GateStats {
  window: WindowStats;
  trialsInFlight: number;
  /** Results that arrived after the state they were admitted in had ended. */
  lateResults: number;
}

/**
 * The synchronous gate beside a server actor: decides admission from the actor's state and
 * keeps per-call accounting in plain fields, so a call costs no actor event. The machine hears
 * only of crossings (one trip per generation) and trial verdicts.
 *
 * A generation is one stay in one state. A result from an earlier generation is late: it is
 * counted in `lateResults` and changes nothing else, so a late success never closes an open
 * breaker and a late failure never re-opens a closed one.
 */
export class CallGate {
  private window: FailureWindow;
  private trialsInFlight = 0;
  private trialSuccesses = 0;
  private generation = 0;
  /** This generation already sent its one signal (a trip or a verdict): the rest fail fast. */
  private decided = false;
  private lateResults = 0;
  private lastState: ServerState | null = null;

  constructor(
    private options: GateOptions,
    private readonly now: () => number = Date.now,
  ) {
    this.window = createFailureWindow(options);
  }

  /** New settings; the window starts over when one of its settings changed. */
  configure(options: GateOptions): void {
    const reshaped = windowKey(options) !== windowKey(this.options);

    this.options = options;
    if (reshaped) this.window = createFailureWindow(options);
  }

  /**
   * Admits a call or throws the fail-fast error of DESIGN.md's calls-by-state table.
   * `retryAt` is the epoch ms of the next attempt while `open`.
   */
  admit(state: ServerState, retryAt: number | null): Admission {
    this.observe(state);

    switch (state) {
      case 'closed':
        if (this.decided) throw circuitOpen(retryAt);
        return this.ticket(false);
      case 'halfOpen':
        if (this.decided || this.trialsInFlight >= this.options.halfOpenMaxCalls) {
          throw circuitOpen(retryAt);
        }
        this.trialsInFlight += 1;
        return this.ticket(true);
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

  /** Records a call's outcome; returns the signal the machine must hear, if any. */
  settle(admission: Admission, outcome: GateOutcome): GateSignal {
    if (admission.generation !== this.generation) {
      this.lateResults += 1;
      return NONE;
    }

    if (admission.trial) return this.settleTrial(outcome);
    if (outcome === 'ignored' || this.decided) return NONE;

    const at = this.now();
    const slow = at - admission.startedAt > this.options.slowCallMs;
    const trip = this.window.record({ failed: outcome === 'failure', slow, at });
    if (!trip) return NONE;

    this.decided = true;
    return { kind: 'trip', trip };
  }

  /** A new breaker state starts a new generation: counts and permits start over. */
  observe(state: ServerState): void {
    if (state === this.lastState) return;

    this.lastState = state;
    this.generation += 1;
    this.decided = false;
    this.trialsInFlight = 0;
    this.trialSuccesses = 0;
    this.window.reset();
  }

  stats(): GateStats {
    return {
      window: this.window.stats(this.now()),
      trialsInFlight: this.trialsInFlight,
      lateResults: this.lateResults,
    };
  }

  private ticket(trial: boolean): Admission {
    return { trial, generation: this.generation, startedAt: this.now() };
  }

  private settleTrial(outcome: GateOutcome): GateSignal {
    // An ignored or aborted trial gives its permit back without a verdict.
    if (outcome === 'ignored') {
      this.trialsInFlight = Math.max(0, this.trialsInFlight - 1);
      return NONE;
    }

    if (this.decided) return NONE;

    // Any counted failure re-opens at once, whatever the minimum number of calls.
    if (outcome === 'failure') {
      this.decided = true;
      return { kind: 'trial', ok: false };
    }

    this.trialSuccesses += 1;
    if (this.trialSuccesses < this.options.halfOpenMaxCalls) return NONE;

    this.decided = true;
    return { kind: 'trial', ok: true };
  }
}

const NONE: GateSignal = { kind: 'none' };

function windowKey(options: GateOptions): string {
  const { window, failureThreshold, windowSize, windowMs, failureRate } = options;

  return (
    [window, failureThreshold, windowSize, windowMs, failureRate, options.minimumCalls].join(':') +
    `:${options.slowCallRate}`
  );
}

function circuitOpen(retryAt: number | null): SupervisorError {
  const fields = retryAt === null ? {} : { retryAt };

  return new SupervisorError(
    'CIRCUIT_OPEN',
    'the circuit breaker is open: calls fail fast',
    fields,
  );
}
