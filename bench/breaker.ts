/**
 * Breaker overhead per call on the closed path: our CallGate around an `await`, against a
 * bare `await`, cockatiel's ConsecutiveBreaker and opossum, all measured in the same run and
 * interleaved so drift hits every side alike. Target: within 2x of cockatiel's overhead.
 */
import { circuitBreaker, ConsecutiveBreaker, handleAll } from 'cockatiel';
import CircuitBreaker from 'opossum';

import { CallGate } from '../src/supervisor/gate.js';
import type { BenchResult } from './report.js';

export interface BreakerBenchOptions {
  /** Interleaved rounds; the median round decides. Default 15. */
  rounds?: number;
  /** Calls per side and round. Default 20000. */
  calls?: number;
}

type Side = () => Promise<unknown>;

const work = async (): Promise<number> => 1;

/** Runs the breaker bench and returns ns per call for each side. */
export async function benchBreaker(options: BreakerBenchOptions = {}): Promise<BenchResult> {
  const rounds = options.rounds ?? 15;
  const calls = options.calls ?? 20_000;
  const { sides, close } = createSides();
  const samples = new Map<string, number[]>(Object.keys(sides).map((k) => [k, []]));

  try {
    for (const side of Object.values(sides)) await run(side, calls);

    for (let round = 0; round < rounds; round += 1) {
      for (const [name, side] of Object.entries(sides)) {
        samples.get(name)!.push(await run(side, calls));
      }
    }
  } finally {
    close();
  }

  const ns = (name: string): number => median(samples.get(name)!);
  const bare = ns('bare');
  const ours = Math.max(ns('gate') - bare, 0);
  const cockatiel = Math.max(ns('cockatiel') - bare, 1e-9);
  const opossum = ns('opossum') - bare;
  const ratio = ours / cockatiel;

  return {
    name: 'breaker overhead per call (closed path)',
    rows: [
      { label: 'bare await', value: bare, unit: 'ns/call' },
      { label: 'CallGate overhead', value: ours, unit: 'ns/call' },
      { label: 'cockatiel overhead', value: cockatiel, unit: 'ns/call' },
      { label: 'opossum overhead', value: opossum, unit: 'ns/call' },
    ],
    ratio,
    target: 'ratio <= 2 (CallGate over cockatiel)',
    pass: ratio <= 2,
  };
}

function createSides(): { sides: Record<string, Side>; close: () => void } {
  const gate = new CallGate({
    window: 'consecutive',
    failureThreshold: 5,
    windowSize: 100,
    windowMs: 60_000,
    failureRate: 0.5,
    minimumCalls: 10,
    slowCallMs: 10_000,
    slowCallRate: 1,
    halfOpenMaxCalls: 1,
  });
  const cockatiel = circuitBreaker(handleAll, {
    halfOpenAfter: 10_000,
    breaker: new ConsecutiveBreaker(5),
  });
  const opossum = new CircuitBreaker(work, { timeout: false, volumeThreshold: 5 });

  const sides: Record<string, Side> = {
    bare: work,
    gate: async () => {
      const admission = gate.admit('closed', null);
      try {
        const result = await work();
        gate.settle(admission, 'success');
        return result;
      } catch (error) {
        gate.settle(admission, 'failure');
        throw error;
      }
    },
    cockatiel: () => cockatiel.execute(work),
    opossum: () => opossum.fire(),
  };

  // opossum keeps a rolling-stats interval alive until it is shut down.
  return { sides, close: () => opossum.shutdown() };
}

/** Mean ns per call over `calls` sequential calls. */
async function run(side: Side, calls: number): Promise<number> {
  const startedAt = process.hrtime.bigint();
  for (let i = 0; i < calls; i += 1) await side();

  return Number(process.hrtime.bigint() - startedAt) / calls;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}
