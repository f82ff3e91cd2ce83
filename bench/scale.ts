/**
 * Scale: many server actors probed every second, with in-memory connect and probe actors (the
 * machines, the root supervisor machine, the real TransitionWriter and the real StreamServer
 * broadcaster attached). 1% of probes fail, so transitions flow through the writer and the
 * broadcaster too. The 1,000-server fleet runs twice: the writer on an in-memory PGlite store,
 * and on the real PostgreSQL (a database of its own, dropped after; skipped when unreachable).
 * Each fleet runs in a fresh process (bench/scale-fleet.ts), so its RSS is its own. Reports CPU
 * as a percentage of one core and RSS; the ratio is CPU % over its 25% target. 10,000 actors
 * report RSS only.
 */
import { fork } from 'node:child_process';

import postgres from 'postgres';

import { ADMIN_URL, withDatabase } from './database.js';
import type { BenchResult } from './report.js';
import type { FleetFigures, FleetSpec } from './scale-fleet.js';

export interface ScaleBenchOptions {
  /** Servers in the measured fleet. Default 1000. */
  servers?: number;
  /** Actors in the memory-only fleet; 0 skips it. Default 10000. */
  largeServers?: number;
  /** How long CPU is measured (ms, real time). Default 10000. */
  measureMs?: number;
  /** Share of probes that fail. Default 0.01. */
  failureRate?: number;
  /** Whether the measured fleet also runs against PostgreSQL. Default true. */
  postgres?: boolean;
}

const CPU_TARGET_PERCENT = 25;
const RSS_TARGET_BYTES = 300 * 1000 * 1000;
const MiB = 1024 * 1024;

/** Runs the scale bench; `npm run bench` calls it as `{ name: 'scale', run: benchScale }`. */
export async function benchScale(options: ScaleBenchOptions = {}): Promise<BenchResult[]> {
  const servers = options.servers ?? 1000;
  const largeServers = options.largeServers ?? 10_000;
  const measureMs = options.measureMs ?? 10_000;
  const failureRate = options.failureRate ?? 0.01;
  const base = { servers, measureMs, failureRate, intervalMs: 1_000 };
  const results: BenchResult[] = [];

  const memory = await runFleet({ ...base, store: 'memory' });
  results.push(measuredResult(`${servers} servers probed every second, PGlite in memory`, memory));

  if ((options.postgres ?? true) && (await canReach(ADMIN_URL))) {
    const pg = await withDatabase((databaseUrl) => runFleet({ ...base, store: { databaseUrl } }));
    results.push(measuredResult(`${servers} servers probed every second, PostgreSQL`, pg));
  }

  if (largeServers > 0) {
    // Probed every second, 10,000 actors would need several cores: they run at the default
    // `health.intervalMs`, so the figure is what the actors hold, not a saturated event loop.
    const large = await runFleet({
      ...base,
      servers: largeServers,
      measureMs: Math.min(measureMs, 5_000),
      intervalMs: 30_000,
      store: 'memory',
    });
    results.push({
      name: `scale: ${largeServers} actors probed every 30 s, PGlite in memory`,
      rows: [
        { label: 'rss', value: large.rssBytes / MiB, unit: 'MiB' },
        { label: 'rss before the actors', value: large.baseRssBytes / MiB, unit: 'MiB' },
        { label: 'cpu (one core)', value: large.cpuPercent, unit: '%' },
        { label: 'transitions/s', value: large.transitionsPerSecond, unit: '/s' },
      ],
      // Reported, not targeted: what the actors add, per actor, against the 1,000-server fleet's.
      ratio:
        (large.rssBytes - large.baseRssBytes) /
        largeServers /
        ((memory.rssBytes - memory.baseRssBytes) / servers),
    });
  }

  return results;
}

function measuredResult(name: string, figures: FleetFigures): BenchResult {
  return {
    name: `scale: ${name}`,
    rows: [
      { label: 'cpu (one core)', value: figures.cpuPercent, unit: '%' },
      { label: 'rss', value: figures.rssBytes / MiB, unit: 'MiB' },
      { label: 'rss before the servers', value: figures.baseRssBytes / MiB, unit: 'MiB' },
      { label: 'transitions/s', value: figures.transitionsPerSecond, unit: '/s' },
    ],
    ratio: figures.cpuPercent / CPU_TARGET_PERCENT,
    target: `cpu < ${CPU_TARGET_PERCENT}% (ratio < 1), rss < 300 MB`,
    pass: figures.cpuPercent < CPU_TARGET_PERCENT && figures.rssBytes < RSS_TARGET_BYTES,
  };
}

/** Measures one fleet in a fresh process that loads TypeScript as this one does. */
function runFleet(spec: FleetSpec): Promise<FleetFigures> {
  const child = fork(new URL('./scale-fleet.ts', import.meta.url), [JSON.stringify(spec)], {
    execArgv: ['--import', 'tsx', '--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });

  return new Promise((resolve, reject) => {
    let figures: FleetFigures | null = null;
    child.once('message', (message) => {
      figures = message as FleetFigures;
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (figures) resolve(figures);
      else reject(new Error(`scale fleet exited with code ${code} and no figures`));
    });
  });
}

async function canReach(url: string): Promise<boolean> {
  const sql = postgres(url, { max: 1, connect_timeout: 2, onnotice: () => {} });
  try {
    await sql`SELECT 1`;
    return true;
  } catch {
    return false;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { printReport } = await import('./report.js');
  printReport(await benchScale());
}
