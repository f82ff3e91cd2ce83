import { createActor, fromPromise, SimulatedClock, type Actor } from 'xstate';

import { proberFrom } from '../../machines/prober.js';
import type { ServerPolicy, ServerTransitionEvent } from '../../machines/server.events.js';
import { serverMachine, type ServerInput } from '../../machines/server.machine.js';

export const POLICY: ServerPolicy = {
  healthIntervalMs: 30_000,
  healthTimeoutMs: 5_000,
  healthFailureThreshold: 3,
  connectTimeoutMs: 15_000,
  halfOpenDeadlineMs: 30_000,
  backoffBaseMs: 1_000,
  backoffCapMs: 60_000,
  maxRestarts: 5,
  restartPeriodMs: 300_000,
  failedRetryMs: 300_000,
  restartPolicy: 'permanent',
};

type Outcome = { ok: true } | { ok: false; error: unknown } | 'hang';

/** A server machine on a simulated clock, with connect and probe results the test scripts. */
export class MachineHarness {
  readonly clock = new SimulatedClock();
  readonly transitions: ServerTransitionEvent[] = [];
  readonly connects: Array<{ killFirst: boolean }> = [];
  connectOutcomes: Outcome[] = [];
  probeOutcomes: Outcome[] = [];
  connected = false;
  probes = 0;
  readonly actor: Actor<typeof serverMachine>;

  constructor(input: Partial<ServerInput> = {}, policy: Partial<ServerPolicy> = {}, startAtMs = 0) {
    // XState resolves the initial state (and its delays) when the actor is created.
    this.clock.set(startAtMs);
    const machine = serverMachine.provide({
      actors: {
        connect: fromPromise(async ({ input: connectInput }) => {
          this.connects.push({ killFirst: connectInput.killFirst });
          if (connectInput.killFirst) this.connected = false;
          await this.settle(this.connectOutcomes.shift() ?? { ok: true });
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
      input: {
        name: 'srv',
        policy: { ...POLICY, ...policy },
        now: () => this.clock.now(),
        random: () => 0.5,
        ...input,
      },
    });
    this.actor.on('server.transition', (t) => this.transitions.push(t));
  }

  start(): this {
    this.actor.start();
    return this;
  }

  get state(): string {
    const value = this.actor.getSnapshot().value;
    return typeof value === 'string' ? value : Object.keys(value)[0]!;
  }

  /** Moves simulated time and lets promise actors settle. */
  async advance(ms: number): Promise<void> {
    await flush();
    this.clock.increment(ms);
    await flush();
  }

  async flush(): Promise<void> {
    await flush();
  }

  /** The transitions as `from>to:reason` strings. */
  path(): string[] {
    return this.transitions.map((t) => `${t.from}>${t.to}:${t.reason}`);
  }

  private async probe(): Promise<void> {
    this.probes += 1;
    await this.settle(this.probeOutcomes.shift() ?? { ok: true });
  }

  private async settle(outcome: Outcome): Promise<void> {
    if (outcome === 'hang') return new Promise(() => {});
    if (!outcome.ok) throw outcome.error;
  }
}

/** Lets every settled promise actor deliver its result (no time passes). */
async function flush(): Promise<void> {
  for (let i = 0; i < 3; i += 1) await new Promise<void>((resolve) => setImmediate(resolve));
}
