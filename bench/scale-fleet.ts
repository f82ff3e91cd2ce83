/**
 * One fleet of the scale bench, measured in a process of its own (bench/scale.ts forks it), so
 * that one fleet's RSS never carries what an earlier one left behind. The machines, the root
 * supervisor machine, the real TransitionWriter on the store the parent names and the real
 * StreamServer broadcaster; in-memory connect and probe actors. Reports CPU as a percentage of
 * one core and RSS, through the IPC channel.
 */
import { createActor, fromPromise } from 'xstate';

import { proberFrom } from '../machines/prober.js';
import type { ServerPolicy } from '../machines/server.events.js';
import { serverMachine, type ConnectInput } from '../machines/server.machine.js';
import { spawnServer, supervisorMachine } from '../machines/supervisor.machine.js';
import type { Transition } from '../machines/vocabulary.js';
import { StreamServer } from '../src/broadcast/stream.js';
import { silentLogger } from '../src/log.js';
import { openStore, type StoreSpec } from '../src/store/open.js';
import { stateRecordOf } from '../src/store/state-record.js';
import { TransitionWriter } from '../src/store/writer.js';
import type { TransitionListener } from '../src/supervisor/types.js';
import { FakeSupervisor } from '../test/helpers/fake-supervisor.js';

/** What the parent asks for. */
export interface FleetSpec {
  servers: number;
  measureMs: number;
  failureRate: number;
  intervalMs: number;
  store: StoreSpec;
}

/** What the child answers. */
export interface FleetFigures {
  cpuPercent: number;
  rssBytes: number;
  /** RSS with the store, writer and broadcaster open, before any server actor. */
  baseRssBytes: number;
  transitionsPerSecond: number;
}

const POLICY: ServerPolicy = {
  healthIntervalMs: 1_000,
  healthTimeoutMs: 500,
  healthFailureThreshold: 1,
  connectTimeoutMs: 1_000,
  halfOpenDeadlineMs: 5_000,
  backoffBaseMs: 1_000,
  backoffCapMs: 2_000,
  maxRestarts: 1_000_000,
  restartPeriodMs: 60_000,
  failedRetryMs: 60_000,
  restartPolicy: 'permanent',
};

/** The supervisor side the broadcaster needs, fed with the root actor's real transitions. */
class FleetApi extends FakeSupervisor {
  private readonly fleetListeners = new Set<TransitionListener>();
  private high = 0;

  override subscribe(listener: TransitionListener): () => void {
    this.fleetListeners.add(listener);
    return () => this.fleetListeners.delete(listener);
  }

  override seq(): number {
    return this.high;
  }

  publish(transition: Transition): void {
    this.high = transition.seq;
    for (const listener of this.fleetListeners) listener(transition);
  }
}

interface Fleet {
  transitions: () => number;
  baseRssBytes: number;
  stop(): Promise<void>;
}

/** Starts the fleet, waits out a warm-up, measures for `measureMs`, stops it. */
export async function measureFleet(spec: FleetSpec): Promise<FleetFigures> {
  const fleet = await startFleet(spec);

  try {
    // Two probe intervals of warm-up: every actor connected and on its timer.
    await sleep(2_000);
    const before = fleet.transitions();
    const cpu = process.cpuUsage();
    const startedAt = process.hrtime.bigint();
    await sleep(spec.measureMs);
    const used = process.cpuUsage(cpu);
    const elapsedMs = Number(process.hrtime.bigint() - startedAt) / 1e6;

    return {
      cpuPercent: ((used.user + used.system) / 1000 / elapsedMs) * 100,
      rssBytes: process.memoryUsage().rss,
      baseRssBytes: fleet.baseRssBytes,
      transitionsPerSecond: ((fleet.transitions() - before) * 1000) / elapsedMs,
    };
  } finally {
    await fleet.stop();
  }
}

async function startFleet(spec: FleetSpec): Promise<Fleet> {
  const logger = silentLogger();
  const store = await openStore(spec.store, logger);
  const writer = new TransitionWriter(store, { maxPendingWrites: 100_000, logger });
  const api = new FleetApi();
  const stream = new StreamServer({ api, logger });
  const policy = { ...POLICY, healthIntervalMs: spec.intervalMs };
  let transitions = 0;

  const probe = async (): Promise<void> => {
    if (Math.random() < spec.failureRate) throw new Error('probe failed');
  };
  const server = serverMachine.provide({
    actors: {
      connect: fromPromise<unknown, ConnectInput>(async () => ({})),
      probe: fromPromise<void, { name: string }>(probe),
      prober: proberFrom(probe),
    },
    guards: { hasConnection: () => true },
  });
  const root = createActor(supervisorMachine.provide({ actors: { server } }), {
    systemId: 'supervisor',
    input: { startSeq: 0 },
  });

  root.on('transition', ({ transition, facts }) => {
    transitions += 1;
    writer.enqueue(transition);
    writer.putState(stateRecordOf(transition, facts, false));
    api.publish(transition);
  });
  const baseRssBytes = await settledRss();
  root.start();
  for (let i = 0; i < spec.servers; i += 1) {
    const name = `server-${i}`;
    root.send(spawnServer(name, { name, policy }));
  }

  return {
    transitions: () => transitions,
    baseRssBytes,
    stop: async () => {
      root.stop();
      await stream.close();
      await writer.close();
      await store.close();
    },
  };
}

/** RSS once the store's start-up garbage (PGlite's initdb instance) is collected. */
async function settledRss(): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 5; i += 1) {
    await sleep(200);
    gc?.();
  }

  return process.memoryUsage().rss;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Forked by bench/scale.ts: one spec in through argv, the figures out through IPC.
if (import.meta.url === `file://${process.argv[1]}` && process.send) {
  const spec = JSON.parse(process.argv[2] ?? '{}') as FleetSpec;
  const figures = await measureFleet(spec);
  process.send(figures, () => process.exit(0));
}
