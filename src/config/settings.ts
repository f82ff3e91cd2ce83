import { z } from 'zod';

import { RESTART_POLICIES } from '../../machines/vocabulary.js';

/** Node timers overflow past 2^31 - 1 ms (about 24.8 days) and then fire after 1 ms. */
export const MAX_TIMER_MS = 2_147_483_647;

const tooLong =
  `must be at most ${MAX_TIMER_MS} ms (about 24.8 days): ` + 'the longest timer Node keeps';
const ms = z.number().int().nonnegative().max(MAX_TIMER_MS, tooLong);
const positiveMs = z.number().int().positive().max(MAX_TIMER_MS, tooLong);
/** A duration that is compared, never armed as a timer: no timer bound. */
const ageMs = z.number().int().nonnegative();
const count = z.number().int().positive();
const rate = z.number().gt(0).lte(1);

/**
 * Every runtime setting: one name everywhere (config `supervisor` block, settings table,
 * `PUT /api/settings`, per-server blocks). Durations are milliseconds, sizes bytes.
 */
export const SETTING_SCHEMAS = {
  'health.intervalMs': positiveMs.default(30_000),
  'health.timeoutMs': positiveMs.default(5_000),
  'health.failureThreshold': count.default(3),
  'breaker.failureThreshold': count.default(5),
  'breaker.window': z.enum(['consecutive', 'count', 'time']).default('consecutive'),
  'breaker.windowSize': count.default(100),
  'breaker.windowMs': positiveMs.default(60_000),
  'breaker.failureRate': rate.default(0.5),
  'breaker.minimumCalls': count.default(10),
  'breaker.slowCallMs': positiveMs.default(10_000),
  'breaker.slowCallRate': rate.default(1),
  'breaker.halfOpenMaxCalls': count.default(1),
  'breaker.halfOpenDeadlineMs': positiveMs.default(30_000),
  'cache.maxSize': z.number().int().nonnegative().default(1000),
  'cache.ttlMs': ageMs.default(300_000),
  'cache.maxBytes': z.number().int().nonnegative().default(67_108_864),
  'connect.timeoutMs': positiveMs.default(15_000),
  'backoff.baseMs': positiveMs.default(1_000),
  'backoff.capMs': positiveMs.default(60_000),
  'restart.maxRestarts': z.number().int().nonnegative().default(5),
  'restart.periodMs': positiveMs.default(300_000),
  'restart.failedRetryMs': positiveMs.default(300_000),
  'restart.policy': z.enum(RESTART_POLICIES).default('permanent'),
  /** A stdio server whose process group holds more resident bytes is restarted; 0: off. */
  'restart.maxRssBytes': z.number().int().nonnegative().default(0),
  /** A server connected longer than this (ms) is restarted; 0: off. */
  'restart.maxUptimeMs': ageMs.default(0),
  'call.timeoutMs': positiveMs.default(30_000),
  'call.maxTotalMs': positiveMs.default(300_000),
  'call.maxConcurrent': count.default(16),
  'stderr.tailBytes': z.number().int().nonnegative().default(65_536),
  'shutdown.graceMs': ms.default(2_000),
  'stream.pingIntervalMs': positiveMs.default(30_000),
  'stream.maxBufferedBytes': count.default(1_048_576),
  'stream.maxPayloadBytes': count.default(65_536),
  'stream.resumeBufferSize': z.number().int().nonnegative().default(10_000),
  'store.maxPendingWrites': count.default(100_000),
  'store.historyRetentionMs': ageMs.positive().default(2_592_000_000),
  'api.allowStdioServers': z.boolean().default(false),
  'log.level': z
    .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
    .default('info'),
} as const;

export type SettingKey = keyof typeof SETTING_SCHEMAS;

export type Settings = { [K in SettingKey]: z.output<(typeof SETTING_SCHEMAS)[K]> };

export const SETTING_KEYS = Object.keys(SETTING_SCHEMAS) as SettingKey[];

/** Settings a server entry's own `supervisor` block may override. */
export type ServerSettings = Settings;

/** The defaults of every setting. */
export function defaultSettings(): Settings {
  const out: Record<string, unknown> = {};

  for (const key of SETTING_KEYS) {
    out[key] = SETTING_SCHEMAS[key].parse(undefined);
  }

  return out as Settings;
}

export function isSettingKey(key: string): key is SettingKey {
  return Object.hasOwn(SETTING_SCHEMAS, key);
}

/** A refused setting: which key, and why. */
export interface SettingProblem {
  key: string;
  message: string;
}

/**
 * Validates a block of settings. Accepts flat dotted keys (`"health.intervalMs": 1000`) and
 * nested objects (`{"health": {"intervalMs": 1000}}`) alike.
 */
export function parseSettings(input: unknown): {
  values: Partial<Settings>;
  problems: SettingProblem[];
} {
  const values: Record<string, unknown> = {};
  const problems: SettingProblem[] = [];

  if (input === undefined || input === null) {
    return { values, problems };
  }

  if (typeof input !== 'object' || Array.isArray(input)) {
    problems.push({ key: '', message: 'settings must be an object of key to value' });
    return { values, problems };
  }

  for (const [key, value] of flatten(input as Record<string, unknown>)) {
    if (!isSettingKey(key)) {
      problems.push({ key, message: 'unknown setting' });
      continue;
    }

    const parsed = SETTING_SCHEMAS[key].safeParse(value);
    if (!parsed.success) {
      problems.push({ key, message: parsed.error.issues.map((i) => i.message).join('; ') });
      continue;
    }

    values[key] = parsed.data;
  }

  if (problems.length === 0) {
    checkRelations({ ...defaultSettings(), ...values } as Settings, values, problems);
  }

  return { values: values as Partial<Settings>, problems };
}

/** Merges layers of partial settings over the defaults, later layers winning. */
export function mergeSettings(...layers: Array<Partial<Settings> | undefined>): Settings {
  return Object.assign(defaultSettings(), ...layers.filter(Boolean)) as Settings;
}

function* flatten(obj: Record<string, unknown>, prefix = ''): Generator<[string, unknown]> {
  for (const [key, value] of Object.entries(obj)) {
    const path = prefix ? `${prefix}.${key}` : key;
    const nested = value !== null && typeof value === 'object' && !Array.isArray(value);

    if (nested && !isSettingKey(path)) {
      yield* flatten(value as Record<string, unknown>, path);
    } else {
      yield [path, value];
    }
  }
}

function checkRelations(
  merged: Settings,
  given: Record<string, unknown>,
  problems: SettingProblem[],
): void {
  if (merged['backoff.baseMs'] > merged['backoff.capMs']) {
    const key = 'backoff.baseMs' in given ? 'backoff.baseMs' : 'backoff.capMs';
    problems.push({ key, message: 'backoff.baseMs must not exceed backoff.capMs' });
  }

  if (merged['call.timeoutMs'] > merged['call.maxTotalMs']) {
    const key = 'call.timeoutMs' in given ? 'call.timeoutMs' : 'call.maxTotalMs';
    problems.push({ key, message: 'call.timeoutMs must not exceed call.maxTotalMs' });
  }
}
