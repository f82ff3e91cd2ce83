import { fileURLToPath } from 'node:url';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { RequestOptions } from '@modelcontextprotocol/sdk/shared/protocol.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import QuickLRU from 'quick-lru';

import { canonicalJson } from '../src/cache/canonical-json.js';
import { ToolCache } from '../src/cache/tool-cache.js';
import type { CallToolResult } from '../src/mcp/types.js';
import { createSupervisor, type Supervisor } from '../src/supervisor/create.js';
import type { BenchResult } from './report.js';

export interface CallsBenchOptions {
  /**
   * Sessions, each with fresh server processes; the median session decides. Default 7. Where
   * the scheduler places a server process against its client can double a round trip for the
   * whole life of that process, so one pair of processes alone proves little.
   */
  sessions?: number;
  /** Interleaved rounds per session; each runs one batch per side. Default 20. */
  rounds?: number;
  /** Sequential calls in one batch. Default 200. */
  batch?: number;
  /** Calls per side and session before anything counts. Default 300. */
  warmup?: number;
  /** Interleaved measuring runs of the cache-hit bench. Default 15. */
  hitRuns?: number;
  /** Hits per side in one run of the cache-hit bench. Default 20000. */
  hitIterations?: number;
}

/** The supervised server's name. */
const SERVER = 'everything';

const EVERYTHING = fileURLToPath(
  new URL('../node_modules/@modelcontextprotocol/server-everything/dist/index.js', import.meta.url),
);

/**
 * `echo` is annotated read-only, so the entry opts it out of the cache: every supervised call
 * goes to the server, through the gate, the bulkhead and the transport.
 */
const CALL_TOOL = 'echo';
const CALL_ARGS = { message: 'the quick brown fox jumps over the lazy dog' };

/**
 * What LiveConnection.callTool asks of the SDK on every call (with the default settings): the
 * progress handler makes the SDK send a progress token, which lets progress extend the timeout.
 */
const SUPERVISOR_REQUEST_OPTIONS: RequestOptions = {
  timeout: 30_000,
  maxTotalTimeout: 300_000,
  resetTimeoutOnProgress: true,
  onprogress: () => undefined,
};

/** A read-only tool the cache keeps. */
const HIT_TOOL = 'get-sum';
const HIT_ARGS = { a: 17, b: 25 };

/** The supervisor's p50 over the bare SDK client's p50 should stay within this. */
const MAX_CALL_RATIO = 1.05;

/**
 * A whole `callTool` hit (runtime lookup, tool lookup, cache policy, the ToolCache hit and two
 * async returns) against a bare quick-lru `get`: about 100 to 130 times on the machines we
 * measured, ToolCache.get alone about 60 of that. The bound catches a hit that starts costing
 * an actor event or a store write, not noise.
 */
const MAX_HIT_RATIO = 250;

/** How long (ms) the supervised server may take to reach `closed`. */
const READY_TIMEOUT_MS = 20_000;

/** The measured sides of the latency bench. */
type Side = 'sdk' | 'sdkWithOptions' | 'supervisor';

const SIDES: readonly Side[] = ['sdk', 'sdkWithOptions', 'supervisor'];

interface Percentiles {
  p50: number;
  p95: number;
}

/** One supervisor and two bare SDK clients, each on its own fresh server process. */
interface Session {
  supervisor: Supervisor;
  calls: Record<Side, () => Promise<unknown>>;
  close(): Promise<void>;
}

/**
 * Tool calls through the supervisor against the MCP SDK's own client on the same server
 * command, and the supervisor's cache-hit path against a bare quick-lru `get`. Everything it
 * started is stopped before it returns.
 */
export async function benchCalls(options: CallsBenchOptions = {}): Promise<BenchResult[]> {
  const sessions = options.sessions ?? 7;
  const measured: Array<Record<Side, Percentiles>> = [];
  let hits: BenchResult | undefined;

  for (let i = 0; i < sessions; i++) {
    const session = await openSession();

    try {
      measured.push(await measureSession(session, options));
      if (i === sessions - 1) hits = await benchHitPath(session.supervisor, options);
    } finally {
      await session.close();
    }
  }

  if (!hits) throw new Error('the calls bench needs at least one session');

  return [callsResult(measured, options), hits];
}

/** Starts the three processes side by side; a failed start stops whatever did start. */
async function openSession(): Promise<Session> {
  const [supervisor, sdk, sdkWithOptions] = await Promise.allSettled([
    startSupervisor(),
    connectBaseline(),
    connectBaseline(),
  ]);

  if (
    supervisor.status === 'fulfilled' &&
    sdk.status === 'fulfilled' &&
    sdkWithOptions.status === 'fulfilled'
  ) {
    return session(supervisor.value, sdk.value, sdkWithOptions.value);
  }

  const clients = [sdk, sdkWithOptions].filter((c) => c.status === 'fulfilled');
  await Promise.all([
    supervisor.status === 'fulfilled' ? supervisor.value.stop() : undefined,
    ...clients.map((c) => c.value.close()),
  ]);

  const failed = [supervisor, sdk, sdkWithOptions].find((s) => s.status === 'rejected');
  throw failed?.reason;
}

function session(supervisor: Supervisor, sdk: Client, sdkWithOptions: Client): Session {
  return {
    supervisor,
    calls: {
      sdk: () => sdk.callTool({ name: CALL_TOOL, arguments: CALL_ARGS }),
      sdkWithOptions: () =>
        sdkWithOptions.callTool(
          { name: CALL_TOOL, arguments: CALL_ARGS },
          CallToolResultSchema,
          SUPERVISOR_REQUEST_OPTIONS,
        ),
      supervisor: () => supervisor.callTool(SERVER, CALL_TOOL, CALL_ARGS),
    },
    close: async () => {
      await Promise.all([sdk.close(), sdkWithOptions.close(), supervisor.stop()]);
    },
  };
}

/** A supervisor with one stdio server, resolved once that server is `closed`. */
async function startSupervisor(): Promise<Supervisor> {
  const supervisor = await createSupervisor({
    store: 'memory',
    http: false,
    servers: {
      [SERVER]: {
        command: process.execPath,
        args: [EVERYTHING, 'stdio'],
        tools: { [CALL_TOOL]: { cacheable: false } },
      },
    },
    // No health probe lands inside a measured batch; the SDK side has none either.
    settings: { 'health.intervalMs': 3_600_000 },
  });

  try {
    await untilClosed(supervisor, SERVER, READY_TIMEOUT_MS);
  } catch (error) {
    await supervisor.stop();
    throw error;
  }

  return supervisor;
}

/** The SDK's client on its own stdio transport, as an application without us would run it. */
async function connectBaseline(): Promise<Client> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [EVERYTHING, 'stdio'],
    stderr: 'ignore',
  });
  const client = new Client({ name: 'bench-baseline', version: '0.0.0' }, { capabilities: {} });

  await client.connect(transport);
  // A real client lists tools first; the SDK then validates results against output schemas.
  await client.listTools();

  return client;
}

/** Resolves once `server` is `closed`; rejects after `timeoutMs` (ms). */
function untilClosed(supervisor: Supervisor, server: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const finish = (error?: Error): void => {
      clearTimeout(timer);
      unsubscribe();
      if (error) reject(error);
      else resolve();
    };
    const timer = setTimeout(() => {
      const state = supervisor.server(server)?.state ?? 'unknown';
      finish(new Error(`${server} did not reach closed within ${timeoutMs} ms (${state})`));
    }, timeoutMs);
    const unsubscribe = supervisor.subscribe((t) => {
      if (t.server === server && t.to === 'closed') finish();
    });

    if (supervisor.server(server)?.state === 'closed') finish();
  });
}

/** Warm-up, then interleaved batches of every side; each side's latency percentiles (ns). */
async function measureSession(
  session: Session,
  options: CallsBenchOptions,
): Promise<Record<Side, Percentiles>> {
  const rounds = options.rounds ?? 20;
  const batch = options.batch ?? 200;
  const warmup = options.warmup ?? 300;
  const samples: Record<Side, number[]> = { sdk: [], sdkWithOptions: [], supervisor: [] };

  for (const side of SIDES) await timeBatch(session.calls[side], warmup, []);

  for (let round = 0; round < rounds; round++) {
    // Alternating the order cancels drift between the sides.
    const order = round % 2 === 0 ? SIDES : [...SIDES].reverse();
    for (const side of order) await timeBatch(session.calls[side], batch, samples[side]);
  }

  const cacheHits = session.supervisor.cacheStats().hits;
  if (cacheHits > 0) throw new Error(`the cache answered ${cacheHits} measured calls`);

  return {
    sdk: percentiles(samples.sdk),
    sdkWithOptions: percentiles(samples.sdkWithOptions),
    supervisor: percentiles(samples.supervisor),
  };
}

/** The median session of each figure; the ratio is the median of the sessions' p50 ratios. */
function callsResult(
  measured: Array<Record<Side, Percentiles>>,
  options: CallsBenchOptions,
): BenchResult {
  const of = (side: Side, p: keyof Percentiles): number =>
    median(measured.map((m) => m[side][p])) / 1000;
  const ratios = measured.map((m) => m.supervisor.p50 / m.sdk.p50);
  const p95Ratio = median(measured.map((m) => m.supervisor.p95 / m.sdk.p95));
  const ratio = median(ratios);
  const rounds = options.rounds ?? 20;
  const batch = options.batch ?? 200;
  const perSide = measured.length * rounds * batch;
  const shape = `${measured.length} sessions x ${rounds} rounds x ${batch}`;

  return {
    name: `calls: supervisor.callTool vs SDK Client.callTool (${CALL_TOOL}, stdio, uncached)`,
    rows: [
      { label: 'SDK client p50', value: of('sdk', 'p50'), unit: 'µs' },
      { label: 'SDK client p95', value: of('sdk', 'p95'), unit: 'µs' },
      {
        label: 'SDK client + progress token p50',
        value: of('sdkWithOptions', 'p50'),
        unit: 'µs',
      },
      { label: 'supervisor p50', value: of('supervisor', 'p50'), unit: 'µs' },
      { label: 'supervisor p95', value: of('supervisor', 'p95'), unit: 'µs' },
      { label: 'p95 ratio', value: p95Ratio, unit: 'x' },
      { label: 'lowest session p50 ratio', value: Math.min(...ratios), unit: 'x' },
      { label: 'highest session p50 ratio', value: Math.max(...ratios), unit: 'x' },
      { label: 'calls per side', value: perSide, unit: `(${shape})` },
    ],
    ratio,
    target: `p50 ratio <= ${MAX_CALL_RATIO}`,
    pass: ratio <= MAX_CALL_RATIO,
  };
}

/** Runs `count` calls one after another, pushing each one's latency (ns) into `into`. */
async function timeBatch(
  call: () => Promise<unknown>,
  count: number,
  into: number[],
): Promise<void> {
  for (let i = 0; i < count; i++) {
    const start = process.hrtime.bigint();
    const result = (await call()) as CallToolResult;
    into.push(Number(process.hrtime.bigint() - start));

    if (result.isError === true) throw new Error('a measured call answered isError');
  }
}

async function benchHitPath(
  supervisor: Supervisor,
  options: CallsBenchOptions,
): Promise<BenchResult> {
  const runs = options.hitRuns ?? 15;
  const iterations = options.hitIterations ?? 20_000;

  const miss = await supervisor.callToolWithCache(SERVER, HIT_TOOL, HIT_ARGS);
  const hit = await supervisor.callToolWithCache(SERVER, HIT_TOOL, HIT_ARGS);
  if (miss.cache !== 'miss' || hit.cache !== 'hit') {
    throw new Error(`${HIT_TOOL} is not cached (${miss.cache}, then ${hit.cache})`);
  }

  // The same key the supervisor's cache builds, holding the same result.
  const key = SERVER + '\u0000' + HIT_TOOL + '\u0000' + canonicalJson(HIT_ARGS);
  const raw = new QuickLRU<string, CallToolResult>({ maxSize: 1000 });
  raw.set(key, miss.result);
  const own = new ToolCache({ maxSize: 1000, maxBytes: 64 * 1024 * 1024, ttlMs: 3_600_000 });
  own.set(SERVER, HIT_TOOL, HIT_ARGS, miss.result);

  const samples = { raw: [] as number[], toolCache: [] as number[], callTool: [] as number[] };
  const hitsBefore = supervisor.cacheStats().hits;
  const measureAll = async (into: typeof samples | null): Promise<void> => {
    into?.raw.push(measureSync(() => raw.get(key), iterations));
    into?.toolCache.push(measureSync(() => own.get(SERVER, HIT_TOOL, HIT_ARGS), iterations));
    const ns = await measureAsync(
      () => supervisor.callTool(SERVER, HIT_TOOL, HIT_ARGS),
      iterations,
    );
    into?.callTool.push(ns);
  };

  await measureAll(null);
  for (let run = 0; run < runs; run++) await measureAll(samples);

  const hits = supervisor.cacheStats().hits - hitsBefore;
  if (hits !== (runs + 1) * iterations) throw new Error('a measured callTool missed the cache');

  const rawNs = median(samples.raw);
  const callNs = median(samples.callTool);
  const ratio = callNs / rawNs;

  return {
    name: `cache: supervisor.callTool hit vs quick-lru get (${HIT_TOOL})`,
    rows: [
      { label: 'quick-lru get (same key)', value: rawNs, unit: 'ns/hit' },
      {
        label: 'ToolCache.get (same key, own instance)',
        value: median(samples.toolCache),
        unit: 'ns/hit',
      },
      { label: 'supervisor.callTool hit', value: callNs, unit: 'ns/hit' },
      { label: 'runs x iterations', value: runs * iterations, unit: 'hits per side' },
    ],
    ratio,
    target: `ratio <= ${MAX_HIT_RATIO}`,
    pass: ratio <= MAX_HIT_RATIO,
  };
}

let sink: unknown;

/** Mean ns per call of a synchronous `fn` over `iterations` calls. */
function measureSync(fn: () => unknown, iterations: number): number {
  const start = process.hrtime.bigint();

  for (let i = 0; i < iterations; i++) {
    sink = fn();
  }

  const elapsed = process.hrtime.bigint() - start;
  if (sink === undefined) throw new Error('a measured lookup missed');

  return Number(elapsed) / iterations;
}

/** Mean ns per call of an async `fn` over `iterations` calls awaited one after another. */
async function measureAsync(fn: () => Promise<unknown>, iterations: number): Promise<number> {
  const start = process.hrtime.bigint();

  for (let i = 0; i < iterations; i++) {
    sink = await fn();
  }

  const elapsed = process.hrtime.bigint() - start;
  if (sink === undefined) throw new Error('a measured call returned nothing');

  return Number(elapsed) / iterations;
}

/** Nearest-rank p50 and p95 of `values`. */
function percentiles(values: number[]): { p50: number; p95: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number): number =>
    sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;

  return { p50: at(0.5), p95: at(0.95) };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);

  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
