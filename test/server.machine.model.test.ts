/**
 * Model-based: fast-check drives the server statechart on a simulated clock with random
 * sequences of connection losses, trips, trial results, timer expiries, operator events and
 * changing connect and probe outcomes, and after every step the machine must agree with the
 * small reference model below (which imports nothing from machines/ or src/): the same state,
 * the same transitions with the same reasons, the same backoff attempt.
 */
import fc from 'fast-check';
import { createActor, fromPromise, SimulatedClock } from 'xstate';
import { describe, expect, it } from 'vitest';

import { backoffDelayMs } from '../machines/backoff.js';
import { proberFrom } from '../machines/prober.js';
import {
  breakerTrip,
  connectionLost,
  operatorCommand,
  trialResult,
  type ServerPolicy,
} from '../machines/server.events.js';
import { serverMachine } from '../machines/server.machine.js';
import { CallGate } from '../src/supervisor/gate.js';

const POLICY: ServerPolicy = {
  healthIntervalMs: 30_000,
  healthTimeoutMs: 5_000,
  healthFailureThreshold: 2,
  connectTimeoutMs: 15_000,
  halfOpenDeadlineMs: 30_000,
  backoffBaseMs: 1_000,
  backoffCapMs: 60_000,
  maxRestarts: 2,
  // Not a multiple of 5 s: the stable-stay timer never ties with a probe timer.
  restartPeriodMs: 300_001,
  failedRetryMs: 300_000,
  restartPolicy: 'permanent',
};

const SIX = ['connecting', 'closed', 'open', 'halfOpen', 'failed', 'stopped'];

type ProbeMode = 'ok' | 'fail' | 'hang';
type Operator = 'open' | 'close' | 'reset' | 'restart' | 'probe' | 'disable';
type Command =
  | { kind: 'tick' }
  | { kind: 'wait'; fraction: number }
  | { kind: 'lost' }
  | { kind: 'trip' }
  | { kind: 'trial'; ok: boolean }
  | { kind: 'operator'; command: Operator }
  | { kind: 'connectOk'; ok: boolean }
  | { kind: 'probeMode'; mode: ProbeMode };

// --- the reference model -------------------------------------------------------------------

type Top = 'connecting' | 'closed' | 'open' | 'halfOpen' | 'failed' | 'stopped';
type Op = { op: 'connect' | 'probe' | 'reconnect' | 'trial'; ok: boolean; hang: boolean };

/** What DESIGN.md says a server does, written plainly, with its own timers. */
class Model {
  now = 0;
  top: Top = 'connecting';
  sub = '';
  connected = false;
  attempt = 0;
  restarts: number[] = [];
  misses = 0;
  log: string[] = [];
  connectOk = true;
  probeMode: ProbeMode = 'ok';
  private timers = new Map<string, number>();
  private pending: Op | null = null;
  private from: Top = 'connecting';

  constructor() {
    this.enterConnecting(false, null);
    this.drain();
  }

  nextDue(): number | null {
    const dues = [...this.timers.values()];
    return dues.length === 0 ? null : Math.min(...dues);
  }

  tick(): void {
    const due = this.nextDue();
    if (due === null) return;

    this.now = due;
    for (const name of ['stableStay', ...this.timers.keys()]) {
      if (this.timers.get(name) === due) {
        this.timers.delete(name);
        this.fire(name);
      }
    }
    this.drain();
  }

  wait(fraction: number): void {
    const due = this.nextDue();
    if (due !== null) this.now += Math.floor(fraction * (due - this.now));
  }

  lost(): void {
    this.connected = false;
    if (this.top === 'closed') this.recover('process_exited');
    else if (this.top === 'halfOpen') this.enterOpen('process_exited');
    this.drain();
  }

  trip(): void {
    if (this.top === 'closed') this.recover('threshold_reached');
    this.drain();
  }

  trial(ok: boolean): void {
    if (this.top !== 'halfOpen') return;
    if (ok) this.enterClosed('trial_succeeded');
    else this.enterOpen('trial_failed');
    this.drain();
  }

  operator(command: Operator): void {
    if (this.top === 'stopped') return;

    if (command === 'open') {
      this.report('open', 'operator_open');
      this.sub = 'held';
    } else if (command === 'close' || command === 'reset') {
      if (command === 'reset') {
        this.attempt = 0;
        this.restarts = [];
      }
      const reason = command === 'close' ? 'operator_close' : 'operator_reset';
      if (this.connected) this.enterClosed(reason);
      else this.enterConnecting(false, reason);
    } else if (command === 'restart') {
      this.enterConnecting(true, 'operator_restart');
    } else if (command === 'disable') {
      this.report('stopped', 'operator_disable');
    } else {
      this.probeNow();
    }
    this.drain();
  }

  private probeNow(): void {
    if (this.top === 'closed') {
      this.log.push('closed>closed:operator_probe');
      this.timers.delete('probeInterval');
      this.startProbe();
    } else if (this.top === 'open' || this.top === 'failed') {
      this.enterHalfOpen('operator_probe');
    } else {
      this.log.push(`${this.top}>${this.top}:operator_probe`);
    }
  }

  private fire(name: string): void {
    if (name === 'stableStay') this.attempt = 0;
    else if (name === 'connectTimeout') this.enterOpen('connect_failed');
    else if (name === 'probeInterval') this.startProbe();
    else if (name === 'probeTimeout' && this.top === 'closed') this.miss('probe_timeout');
    else if (name === 'probeTimeout') this.enterOpen('trial_failed');
    else if (name === 'backoff') this.enterHalfOpen('backoff_elapsed');
    else if (name === 'halfOpenDeadline') this.enterOpen('half_open_deadline');
    else if (name === 'failedRetry') this.enterHalfOpen('failed_retry');
  }

  /** Invoked actors settle once the step is over, each in turn. */
  private drain(): void {
    while (this.pending && !this.pending.hang) {
      const { op, ok } = this.pending;
      this.pending = null;

      if (op === 'connect' && ok) this.enterClosed('connected');
      else if (op === 'connect') this.enterOpen('connect_failed');
      else if (op === 'reconnect' && ok) this.startTrial();
      else if (op === 'reconnect') this.enterOpen('connect_failed');
      else if (op === 'trial' && ok) this.enterClosed('trial_succeeded');
      else if (op === 'trial') this.enterOpen('trial_failed');
      else if (ok) this.afterProbe();
      else this.miss('probe_failed');
    }
  }

  private report(to: Top, reason: string): void {
    this.log.push(`${this.from}>${to}:${reason}`);
    this.from = to;
    this.top = to;
    this.sub = '';
    this.timers.clear();
    this.pending = null;
  }

  private enterConnecting(kill: boolean, reason: string | null): void {
    if (reason) this.report('connecting', reason);
    if (kill) this.connected = false;
    this.timers.set('connectTimeout', this.now + POLICY.connectTimeoutMs);
    this.invoke('connect', this.connectOk);
    if (this.connectOk) this.connected = true;
  }

  private enterClosed(reason: string): void {
    this.report('closed', reason);
    this.misses = 0;
    this.timers.set('stableStay', this.now + POLICY.restartPeriodMs);
    this.idle();
  }

  private idle(): void {
    this.sub = 'idle';
    this.timers.set('probeInterval', this.now + POLICY.healthIntervalMs);
  }

  private startProbe(): void {
    this.sub = 'probing';
    this.timers.delete('probeTimeout');
    this.timers.set('probeTimeout', this.now + POLICY.healthTimeoutMs);
    this.invoke('probe', this.probeMode === 'ok');
  }

  private afterProbe(): void {
    this.timers.delete('probeTimeout');
    this.misses = 0;
    this.idle();
  }

  private miss(reason: string): void {
    this.timers.delete('probeTimeout');
    this.misses += 1;
    if (this.misses >= POLICY.healthFailureThreshold) this.recover(reason);
    else this.idle();
  }

  private recover(reason: string): void {
    this.restarts = [...this.restarts.filter((at) => this.now - at < POLICY.restartPeriodMs)];
    this.restarts.push(this.now);
    if (this.restarts.length > POLICY.maxRestarts) {
      this.report('failed', 'restart_intensity');
      this.timers.set('failedRetry', this.now + POLICY.failedRetryMs);
    } else {
      this.enterOpen(reason);
    }
  }

  private enterOpen(reason: string): void {
    this.report('open', reason);
    this.sub = 'waiting';
    const ceiling = Math.min(POLICY.backoffCapMs, POLICY.backoffBaseMs * 2 ** this.attempt);
    this.timers.set('backoff', this.now + Math.floor(0.5 * ceiling));
    this.attempt += 1;
  }

  private enterHalfOpen(reason: string): void {
    this.report('halfOpen', reason);
    this.timers.set('halfOpenDeadline', this.now + POLICY.halfOpenDeadlineMs);
    if (this.connected) {
      this.startTrial();
      return;
    }

    this.connected = false;
    this.timers.set('connectTimeout', this.now + POLICY.connectTimeoutMs);
    this.invoke('reconnect', this.connectOk);
    if (this.connectOk) this.connected = true;
  }

  private startTrial(): void {
    this.timers.delete('connectTimeout');
    this.timers.set('probeTimeout', this.now + POLICY.healthTimeoutMs);
    this.invoke('trial', this.probeMode === 'ok');
  }

  private invoke(op: Op['op'], ok: boolean): void {
    const hang = (op === 'probe' || op === 'trial') && this.probeMode === 'hang';
    this.pending = { op, ok, hang };
  }
}

// --- the real machine ----------------------------------------------------------------------

class Driver {
  readonly clock = new SimulatedClock();
  readonly log: string[] = [];
  connected = false;
  connectOk = true;
  probeMode: ProbeMode = 'ok';
  readonly actor;

  constructor() {
    const machine = serverMachine.provide({
      actors: {
        connect: fromPromise(async ({ input }) => {
          if (input.killFirst) this.connected = false;
          if (!this.connectOk) throw { reason: 'connect_failed', detail: {} };
          this.connected = true;
          return {};
        }),
        probe: fromPromise(async () => this.probe()),
        prober: proberFrom(async () => this.probe()),
      },
      guards: { hasConnection: () => this.connected },
    });

    this.actor = createActor(machine, {
      clock: this.clock,
      input: { name: 'srv', policy: POLICY, now: () => this.clock.now(), random: () => 0.5 },
    });
    this.actor.on('server.transition', (t) => this.log.push(`${t.from}>${t.to}:${t.reason}`));
  }

  private probe(): Promise<void> {
    if (this.probeMode === 'hang') return new Promise<void>(() => undefined);
    if (this.probeMode === 'fail') return Promise.reject(new Error('probe failed'));

    return Promise.resolve();
  }

  get state(): string {
    const value = this.actor.getSnapshot().value;
    return typeof value === 'string' ? value : Object.keys(value)[0]!;
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 8; i += 1) await new Promise<void>((resolve) => setImmediate(resolve));
}

async function apply(command: Command, model: Model, driver: Driver): Promise<void> {
  // A stopped actor is final: nothing more is sent to it (XState would warn on the console).
  if (driver.actor.getSnapshot().status !== 'active') return;

  switch (command.kind) {
    case 'tick': {
      const due = model.nextDue();
      model.tick();
      if (due !== null) driver.clock.set(due);
      break;
    }
    case 'wait':
      model.wait(command.fraction);
      driver.clock.set(model.now);
      break;
    case 'lost':
      model.lost();
      driver.connected = false;
      driver.actor.send(connectionLost('process_exited'));
      break;
    case 'trip':
      model.trip();
      driver.actor.send(breakerTrip('threshold_reached'));
      break;
    case 'trial':
      model.trial(command.ok);
      driver.actor.send(trialResult(command.ok));
      break;
    case 'operator':
      model.operator(command.command);
      driver.actor.send(operatorCommand(command.command));
      break;
    case 'connectOk':
      model.connectOk = command.ok;
      driver.connectOk = command.ok;
      break;
    case 'probeMode':
      model.probeMode = command.mode;
      driver.probeMode = command.mode;
      break;
  }

  await settle();
}

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { weight: 8, arbitrary: fc.constant({ kind: 'tick' as const }) },
  {
    weight: 2,
    arbitrary: fc.double({ min: 0, max: 0.99, noNaN: true }).map((fraction) => ({
      kind: 'wait' as const,
      fraction,
    })),
  },
  { weight: 2, arbitrary: fc.constant({ kind: 'lost' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'trip' as const }) },
  { weight: 1, arbitrary: fc.boolean().map((ok) => ({ kind: 'trial' as const, ok })) },
  {
    weight: 3,
    arbitrary: fc
      .constantFrom<Operator>('open', 'close', 'reset', 'restart', 'probe', 'probe', 'close')
      .map((command) => ({ kind: 'operator' as const, command })),
  },
  {
    weight: 1,
    arbitrary: fc.constant({ kind: 'operator' as const, command: 'disable' as const }),
  },
  { weight: 2, arbitrary: fc.boolean().map((ok) => ({ kind: 'connectOk' as const, ok })) },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom<ProbeMode>('ok', 'fail', 'hang')
      .map((mode) => ({ kind: 'probeMode' as const, mode })),
  },
);

describe('the server statechart against the reference model', () => {
  it('agrees on state, transitions and backoff attempt after any sequence of events', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(commandArb, { maxLength: 60 }), async (commands) => {
        const model = new Model();
        const driver = new Driver();
        driver.actor.start();
        await settle();

        try {
          for (const command of commands) {
            await apply(command, model, driver);

            expect(SIX).toContain(driver.state);
            expect(driver.log).toEqual(model.log);
            expect(driver.state).toBe(model.top);
            expect(driver.actor.getSnapshot().context.attempt).toBe(model.attempt);
          }
        } finally {
          driver.actor.stop();
        }
      }),
      { numRuns: 150 },
    );
  });
});

describe('properties', () => {
  it('keeps every backoff delay finite and within [0, min(cap, base * 2^n)] for n to 10^6', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1_000_000 }),
        fc.integer({ min: 1, max: 60_000 }),
        fc.integer({ min: 1, max: 3_600_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, baseMs, extraMs, r) => {
          const capMs = baseMs + extraMs;
          const delay = backoffDelayMs(attempt, baseMs, capMs, () => r);

          expect(Number.isFinite(delay)).toBe(true);
          expect(delay).toBeGreaterThanOrEqual(0);
          expect(delay).toBeLessThanOrEqual(Math.min(capMs, baseMs * 2 ** Math.min(attempt, 60)));
        },
      ),
    );
  });

  it('never has more than halfOpenMaxCalls trials in flight', () => {
    type Step = { kind: 'admit' } | { kind: 'settle'; outcome: 0 | 1 | 2 } | { kind: 'reopen' };
    const stepArb: fc.Arbitrary<Step> = fc.oneof(
      fc.constant({ kind: 'admit' as const }),
      fc.constantFrom(0, 1, 2).map((outcome) => ({ kind: 'settle' as const, outcome })),
      fc.constant({ kind: 'reopen' as const }),
    );

    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.array(stepArb), (maxCalls, steps) => {
        const gate = new CallGate({
          window: 'consecutive',
          failureThreshold: 5,
          windowSize: 100,
          windowMs: 60_000,
          failureRate: 0.5,
          minimumCalls: 10,
          slowCallMs: 10_000,
          slowCallRate: 1,
          halfOpenMaxCalls: maxCalls,
        });
        const inFlight: Array<ReturnType<CallGate['admit']>> = [];
        gate.observe('halfOpen');

        for (const step of steps) {
          if (step.kind === 'admit') {
            try {
              inFlight.push(gate.admit('halfOpen', null));
            } catch {
              // Fail-fast is the point: the permit count is what is checked.
            }
          } else if (step.kind === 'settle' && inFlight.length > 0) {
            const outcomes = ['success', 'failure', 'ignored'] as const;
            gate.settle(inFlight.shift()!, outcomes[step.outcome]);
          } else if (step.kind === 'reopen') {
            gate.observe('open');
            gate.observe('halfOpen');
          }

          expect(gate.stats().trialsInFlight).toBeLessThanOrEqual(maxCalls);
        }
      }),
    );
  });
});
