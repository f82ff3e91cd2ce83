/**
 * `npm run bench`: every benchmark in turn, then one report. Targets are reported as PASS or
 * FAIL but never decide the exit code (machines are noisy); only a crash exits non-zero.
 */
import { benchBreaker } from './breaker.js';
import { benchCache } from './cache.js';
import { benchCalls } from './calls.js';
import { benchFanout } from './fanout.js';
import { printReport, type BenchResult } from './report.js';
import { benchScale } from './scale.js';
import { benchStore } from './store.js';

const BENCHES: Array<{ name: string; run: () => Promise<BenchResult | BenchResult[]> }> = [
  { name: 'cache', run: benchCache },
  { name: 'calls', run: benchCalls },
  { name: 'breaker', run: benchBreaker },
  { name: 'fanout', run: () => benchFanout() },
  { name: 'store', run: benchStore },
  { name: 'scale', run: () => benchScale() },
];

async function main(): Promise<void> {
  const results: BenchResult[] = [];

  try {
    for (const bench of BENCHES) {
      const startedAt = process.hrtime.bigint();
      process.stderr.write(`bench ${bench.name}...`);
      results.push(...[await bench.run()].flat());

      const seconds = Number(process.hrtime.bigint() - startedAt) / 1e9;
      process.stderr.write(` ${seconds.toFixed(1)} s\n`);
    }
  } finally {
    // Whatever finished is still worth seeing when a later bench crashed.
    printReport(results);
  }
}

main().catch((err: unknown) => {
  process.stderr.write('\n');
  console.error(err);
  process.exitCode = 1;
});
