/**
 * Scale: many server actors probed every second, with in-memory connect and probe actors (the
 * machines, the root supervisor machine, the real TransitionWriter on an in-memory PGlite store
 * and the real StreamServer broadcaster attached). 1% of probes fail, so transitions flow
 * through the writer and the broadcaster too. Reports CPU as a percentage of one core and RSS.
 * The ratio is CPU % over its 25% target (1,000 servers); 10,000 actors report RSS only.
 */
import { createActor, fromPromise } from 'xstate';

import type { ServerPolicy } from '../machines/server.events.js';
import { serverMachine, type ConnectInput } from '../machines/server.machine.js';
import { spawnServer, supervisorMachine } from '../machines/supervisor.machine.js';
import type { Transition } from '../machines/vocabulary.js';
import { StreamServer } from '../src/broadcast/stream.js';
import { silentLogger } from '../src/log.js';
import { openStore } from '../src/store/open.js';
import { TransitionWriter } from '../src/store/writer.js';
import type { TransitionListener } from '../src/supervisor/types.js';
import { FakeSupervisor } from '../test/helpers/fake-supervisor.js';
import type { BenchResult } from './report.js';

export interface ScaleBenchOptions {
  /** Servers in the measured fleet. Default 1000. */
  servers?: number;
  /** Actors in the memory-only fleet. Default 10000. */
  largeServers?: number;
  /** How long CPU is measured (ms, real time). Default 10000. */
  measureMs?: number;
  /** Share of probes that fail. Default 0.01. */
  failureRate?: number;
}

const CPU_TARGET_PERCENT = 25;
const RSS_TARGET_BYTES = 300 * 1024 * 1024;
const MiB = 1024 * 1024;

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
  stop(): Promise<void>;
}

/** Runs the scale bench; `npm run bench` calls it as `{ name: 'scale', run: benchScale }`. */
export async function benchScale(options: ScaleBenchOptions = {}): Promise<BenchResult[]> {
  const servers = options.servers ?? 1000;
  const largeServers = options.largeServers ?? 10_000;
  const measureMs = options.measureMs ?? 10_000;
  const failureRate = options.failureRate ?? 0.01;

  const measured = await measureFleet(servers, measureMs, failureRate, 1_000);
  // Probed every second, 10,000 actors would need several cores: they run at the default
  // `health.intervalMs`, so the figure is what the actors hold, not a saturated event loop.
  const large = await measureFleet(largeServers, Math.min(measureMs, 5_000), failureRate, 30_000);

  return [
    {
      name: `scale: ${servers} servers probed every second`,
      rows: [
        { label: 'cpu (one core)', value: measured.cpuPercent, unit: '%' },
        { label: 'rss', value: measured.rssBytes / MiB, unit: 'MiB' },
        { label: 'transitions/s', value: measured.transitionsPerSecond, unit: '/s' },
      ],
      ratio: measured.cpuPercent / CPU_TARGET_PERCENT,
      target: `cpu < ${CPU_TARGET_PERCENT}% (ratio < 1), rss < 300 MiB`,
      pass: measured.cpuPercent < CPU_TARGET_PERCENT && measured.rssBytes < RSS_TARGET_BYTES,
    },
    {
      name: `scale: ${largeServers} actors probed every 30 s`,
      rows: [
        { label: 'rss', value: large.rssBytes / MiB, unit: 'MiB' },
        { label: 'cpu (one core)', value: large.cpuPercent, unit: '%' },
        { label: 'transitions/s', value: large.transitionsPerSecond, unit: '/s' },
      ],
      // Reported, not targeted: RSS per actor against the 1,000-server fleet's.
      ratio: large.rssBytes / largeServers / (measured.rssBytes / servers),
    },
  ];
}

async function measureFleet(
  servers: number,
  measureMs: number,
  failureRate: number,
  intervalMs: number,
): Promise<{ cpuPercent: number; rssBytes: number; transitionsPerSecond: number }> {
  const fleet = await startFleet(servers, failureRate, { ...POLICY, healthIntervalMs: intervalMs });

  try {
    // One full probe interval of warm-up: every actor connected and on its timer.
    await sleep(2_000);
    const before = fleet.transitions();
    const cpu = process.cpuUsage();
    const startedAt = process.hrtime.bigint();
    await sleep(measureMs);
    const used = process.cpuUsage(cpu);
    const elapsedMs = Number(process.hrtime.bigint() - startedAt) / 1e6;

    return {
      cpuPercent: ((used.user + used.system) / 1000 / elapsedMs) * 100,
      rssBytes: process.memoryUsage().rss,
      transitionsPerSecond: ((fleet.transitions() - before) * 1000) / elapsedMs,
    };
  } finally {
    await fleet.stop();
  }
}

async function startFleet(
  servers: number,
  failureRate: number,
  policy: ServerPolicy,
): Promise<Fleet> {
  const logger = silentLogger();
  const store = await openStore('memory', logger);
  const writer = new TransitionWriter(store, { maxPendingWrites: 100_000, logger });
  const api = new FleetApi();
  const stream = new StreamServer({ api, logger });
  let transitions = 0;

  const server = serverMachine.provide({
    actors: {
      connect: fromPromise<unknown, ConnectInput>(async () => ({})),
      probe: fromPromise<void, { name: string }>(async () => {
        if (Math.random() < failureRate) throw new Error('probe failed');
      }),
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
    writer.putState({
      server: transition.server,
      state: transition.to,
      reason: transition.reason,
      since: transition.at,
      retryAt: facts.retryAt,
      attempt: facts.attempt,
      stickyOpen: facts.stickyOpen,
      disabled: false,
      detail: transition.detail,
    });
    api.publish(transition);
  });
  root.start();

  for (let i = 0; i < servers; i += 1) {
    const name = `server-${i}`;
    root.send(spawnServer(name, { name, policy }));
  }

  return {
    transitions: () => transitions,
    stop: async () => {
      root.stop();
      await stream.close();
      await writer.close();
      await store.close();
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { printReport } = await import('./report.js');
  printReport(await benchScale());
}
