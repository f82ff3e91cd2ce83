import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { ToolCache, isCacheable, type ToolCacheOptions } from '../src/cache/tool-cache.js';
import { isSupervisorError } from '../src/errors.js';
import type { CallToolResult } from '../src/mcp/types.js';

/** A cache on a clock the test moves by hand. */
function setup(options: ToolCacheOptions = {}): { cache: ToolCache; clock: { now: number } } {
  const clock = { now: 1_000_000 };
  const cache = new ToolCache({
    maxSize: 100,
    maxBytes: 1_000_000,
    ttlMs: 60_000,
    now: () => clock.now,
    ...options,
  });

  return { cache, clock };
}

function text(value: string): CallToolResult {
  return { content: [{ type: 'text', text: value }] };
}

function bytesOf(result: CallToolResult): number {
  return Buffer.byteLength(JSON.stringify(result), 'utf8');
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }

  throw new Error('expected a throw');
}

describe('ToolCache lookups', () => {
  it('serves a stored result for the same arguments in any key order', () => {
    const { cache } = setup();
    cache.set('s', 't', { a: 1, b: { c: 2, d: 3 } }, text('x'));

    expect(cache.get('s', 't', { b: { d: 3, c: 2 }, a: 1 })).toEqual(text('x'));
  });

  it('misses for other arguments, another tool or another server', () => {
    const { cache } = setup();
    cache.set('s', 't', { a: 1 }, text('x'));

    expect(cache.get('s', 't', { a: 2 })).toBeUndefined();
    expect(cache.get('s', 'u', { a: 1 })).toBeUndefined();
    expect(cache.get('r', 't', { a: 1 })).toBeUndefined();
  });

  it('treats absent arguments as an empty object', () => {
    const { cache } = setup();
    cache.set('s', 't', undefined, text('x'));

    expect(cache.get('s', 't', {})).toEqual(text('x'));
  });

  it('hands out a copy the caller cannot use to change the next hit', () => {
    const { cache } = setup();
    cache.set('s', 't', {}, text('x'));

    const first = cache.get('s', 't', {})!;
    first.content.push({ type: 'text', text: 'planted' });
    (first.content[0] as { text: string }).text = 'changed';

    expect(cache.get('s', 't', {})).toEqual(text('x'));
  });

  it('copies a __proto__ member as data, never as a prototype', () => {
    const { cache } = setup();
    const json = '{"content":[],"structuredContent":{"__proto__":{"polluted":true}}}';
    cache.set('s', 't', {}, JSON.parse(json) as CallToolResult);

    const hit = cache.get('s', 't', {})!;

    expect(JSON.stringify(hit)).toBe(json);
    expect(Object.getPrototypeOf(hit.structuredContent)).toBe(Object.prototype);
  });

  it('keeps its own copy when the caller changes the stored result afterwards', () => {
    const { cache } = setup();
    const result = text('x');
    cache.set('s', 't', {}, result);

    (result.content[0] as { text: string }).text = 'changed';

    expect(cache.get('s', 't', {})).toEqual(text('x'));
  });

  it('never stores an isError result', () => {
    const { cache } = setup();
    const stored = cache.set('s', 't', {}, { ...text('boom'), isError: true });

    expect(stored).toBe(false);
    expect(cache.get('s', 't', {})).toBeUndefined();
  });

  it('replaces the entry under the same key instead of adding one', () => {
    const { cache } = setup();
    cache.set('s', 't', {}, text('old'));
    cache.set('s', 't', {}, text('newer'));

    expect(cache.get('s', 't', {})).toEqual(text('newer'));
    expect(cache.stats()).toMatchObject({ size: 1, bytes: bytesOf(text('newer')) });
  });

  it('throws INVALID_ARGUMENTS for arguments that have no JSON form', () => {
    const { cache } = setup();
    const args: Record<string, unknown> = {};
    args.self = args;

    const err = thrown(() => cache.get('s', 't', args));

    expect(isSupervisorError(err) && err.code).toBe('INVALID_ARGUMENTS');
  });
});

describe('ToolCache expiry', () => {
  it('serves an entry until its TTL has passed on the injected clock', () => {
    const { cache, clock } = setup({ ttlMs: 1_000 });
    cache.set('s', 't', {}, text('x'));

    clock.now += 999;
    expect(cache.get('s', 't', {})).toEqual(text('x'));

    clock.now += 1;
    expect(cache.get('s', 't', {})).toBeUndefined();
  });

  it('counts an expired lookup as an expiration and a miss, not an eviction', () => {
    const { cache, clock } = setup({ ttlMs: 1_000 });
    cache.set('s', 't', {}, text('x'));
    clock.now += 1_000;
    cache.get('s', 't', {});

    expect(cache.stats()).toMatchObject({ expirations: 1, evictions: 0, misses: 1, size: 0 });
  });

  it('gives an entry stored with its own ttlMs that lifetime', () => {
    const { cache, clock } = setup({ ttlMs: 1_000 });
    cache.set('s', 't', {}, text('x'), { ttlMs: 5_000 });

    clock.now += 4_999;
    expect(cache.get('s', 't', {})).toEqual(text('x'));

    clock.now += 1;
    expect(cache.get('s', 't', {})).toBeUndefined();
  });

  it('does not store an entry whose own ttlMs is 0', () => {
    const { cache } = setup();

    expect(cache.set('s', 't', {}, text('x'), { ttlMs: 0 })).toBe(false);
    expect(cache.stats().size).toBe(0);
  });

  it('prunes expired entries when asked for stats', () => {
    const { cache, clock } = setup({ ttlMs: 1_000 });
    cache.set('s', 'a', {}, text('x'));
    clock.now += 500;
    cache.set('s', 'b', {}, text('y'));
    clock.now += 500;

    expect(cache.stats()).toMatchObject({ size: 1, bytes: bytesOf(text('y')), expirations: 1 });
  });

  it('counts an expired entry pushed out for room as an expiration', () => {
    const { cache, clock } = setup({ maxSize: 1, ttlMs: 1_000 });
    cache.set('s', 'a', {}, text('x'));
    clock.now += 1_000;
    cache.set('s', 'b', {}, text('y'));

    expect(cache.stats()).toMatchObject({ expirations: 1, evictions: 0, size: 1 });
  });
});

describe('ToolCache bounds', () => {
  it('holds at most maxSize entries and counts each one pushed out as an eviction', () => {
    const { cache } = setup({ maxSize: 3 });

    for (let i = 0; i < 10; i++) {
      cache.set('s', 't', { i }, text(String(i)));
    }

    expect(cache.stats()).toMatchObject({ size: 3, evictions: 7, expirations: 0 });
    expect([7, 8, 9].map((i) => cache.get('s', 't', { i }) !== undefined)).toEqual([
      true,
      true,
      true,
    ]);
  });

  it('evicts the least recently used entry, counting a hit as a use', () => {
    const { cache } = setup({ maxSize: 3 });
    cache.set('s', 't', { i: 1 }, text('1'));
    cache.set('s', 't', { i: 2 }, text('2'));
    cache.set('s', 't', { i: 3 }, text('3'));
    cache.get('s', 't', { i: 1 });
    cache.set('s', 't', { i: 4 }, text('4'));

    expect(cache.get('s', 't', { i: 2 })).toBeUndefined();
    expect(cache.get('s', 't', { i: 1 })).toEqual(text('1'));
  });

  it('measures bytes as the UTF-8 length of the serialized result', () => {
    const { cache } = setup();
    const result = text('héllo ✓');
    cache.set('s', 't', {}, result);

    expect(cache.stats().bytes).toBe(bytesOf(result));
  });

  it('evicts least recently used entries to keep total bytes within maxBytes', () => {
    const size = bytesOf(text('a'));
    const { cache } = setup({ maxBytes: size * 2 });
    cache.set('s', 't', { i: 1 }, text('a'));
    cache.set('s', 't', { i: 2 }, text('b'));
    cache.set('s', 't', { i: 3 }, text('c'));

    expect(cache.stats()).toMatchObject({ size: 2, bytes: size * 2, evictions: 1 });
    expect(cache.get('s', 't', { i: 1 })).toBeUndefined();
  });

  it('does not store a result larger than maxBytes, nor evict anything for it', () => {
    const { cache } = setup({ maxBytes: bytesOf(text('small')) });
    cache.set('s', 't', { i: 1 }, text('small'));

    expect(cache.set('s', 't', { i: 2 }, text('much too large'))).toBe(false);
    expect(cache.get('s', 't', { i: 1 })).toEqual(text('small'));
  });

  it('agrees with an exact LRU model on every lookup and on its books', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({
              kind: fc.constant('set' as const),
              k: fc.integer({ min: 0, max: 9 }),
              body: fc.string({ maxLength: 60 }),
            }),
            fc.record({ kind: fc.constant('get' as const), k: fc.integer({ min: 0, max: 9 }) }),
            fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 400 }) }),
          ),
          { minLength: 20, maxLength: 200 },
        ),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 40, max: 600 }),
        (ops, maxSize, maxBytes) => checkAgainstModel(ops, maxSize, maxBytes),
      ),
    );
  });
});

describe('ToolCache invalidation', () => {
  function filled(): ToolCache {
    const { cache } = setup();
    cache.set('a', 'x', {}, text('1'));
    cache.set('a', 'y', {}, text('2'));
    cache.set('b', 'x', {}, text('3'));
    cache.set('b', 'y', {}, text('4'));

    return cache;
  }

  it('removes every entry of one server', () => {
    const cache = filled();

    expect(cache.invalidate({ server: 'a' })).toBe(2);
    expect(cache.get('a', 'x', {})).toBeUndefined();
    expect(cache.get('b', 'x', {})).toEqual(text('3'));
  });

  it('removes one tool across every server', () => {
    const cache = filled();

    expect(cache.invalidate({ tool: 'x' })).toBe(2);
    expect(cache.get('b', 'y', {})).toEqual(text('4'));
  });

  it('removes one tool of one server', () => {
    const cache = filled();

    expect(cache.invalidate({ server: 'b', tool: 'y' })).toBe(1);
    expect(cache.stats().size).toBe(3);
  });

  it('removes everything when given no filter and counts invalidations apart', () => {
    const cache = filled();

    expect(cache.invalidate()).toBe(4);
    expect(cache.stats()).toMatchObject({ size: 0, bytes: 0, invalidations: 4, evictions: 0 });
  });

  it('clears every entry while keeping the counters', () => {
    const cache = filled();
    cache.get('a', 'x', {});
    cache.clear();

    expect(cache.stats()).toMatchObject({ size: 0, bytes: 0, hits: 1, invalidations: 4 });
  });
});

describe('ToolCache stats', () => {
  it('counts hits and misses and derives the hit rate', () => {
    const { cache } = setup();
    cache.set('s', 't', {}, text('x'));
    cache.get('s', 't', {});
    cache.get('s', 't', {});
    cache.get('s', 't', { other: true });

    expect(cache.stats()).toMatchObject({ hits: 2, misses: 1, hitRate: 2 / 3 });
  });

  it('reports a hit rate of 0 before any lookup', () => {
    const { cache } = setup();

    expect(cache.stats().hitRate).toBe(0);
  });

  it('reports its limits', () => {
    const { cache } = setup({ maxSize: 7, maxBytes: 900 });

    expect(cache.stats()).toMatchObject({ maxSize: 7, maxBytes: 900 });
  });
});

describe('ToolCache live settings', () => {
  it('stores nothing and counts nothing when maxSize is 0', () => {
    const { cache } = setup({ maxSize: 0 });

    expect(cache.set('s', 't', {}, text('x'))).toBe(false);
    expect(cache.get('s', 't', {})).toBeUndefined();
    expect(cache.stats()).toMatchObject({ size: 0, misses: 0, hits: 0 });
  });

  it('stores nothing when ttlMs is 0, whatever the entry asks for', () => {
    const { cache } = setup({ ttlMs: 0 });

    expect(cache.set('s', 't', {}, text('x'), { ttlMs: 5_000 })).toBe(false);
    expect(cache.enabled).toBe(false);
  });

  it('evicts the least recently used entries when maxSize shrinks', () => {
    const { cache } = setup();
    for (let i = 0; i < 5; i++) {
      cache.set('s', 't', { i }, text(String(i)));
    }

    cache.resize({ maxSize: 2 });

    expect(cache.stats()).toMatchObject({ size: 2, maxSize: 2, evictions: 3 });
    expect(cache.get('s', 't', { i: 4 })).toEqual(text('4'));
  });

  it('evicts entries when maxBytes shrinks', () => {
    const size = bytesOf(text('a'));
    const { cache } = setup();
    cache.set('s', 't', { i: 1 }, text('a'));
    cache.set('s', 't', { i: 2 }, text('b'));

    cache.resize({ maxBytes: size });

    expect(cache.stats()).toMatchObject({ size: 1, bytes: size, evictions: 1 });
  });

  it('applies a lowered ttlMs at once to entries without their own', () => {
    const { cache, clock } = setup({ ttlMs: 60_000 });
    cache.set('s', 't', {}, text('x'));
    clock.now += 2_000;

    cache.resize({ ttlMs: 1_000 });

    expect(cache.get('s', 't', {})).toBeUndefined();
  });

  it('drops every entry when turned off and stores again when turned back on', () => {
    const { cache } = setup();
    cache.set('s', 't', {}, text('x'));

    cache.resize({ maxSize: 0 });
    expect(cache.stats()).toMatchObject({ size: 0, bytes: 0, evictions: 1 });

    cache.resize({ maxSize: 10 });
    cache.set('s', 't', {}, text('y'));
    expect(cache.get('s', 't', {})).toEqual(text('y'));
  });

  it('refuses a negative limit with INVALID_SETTING', () => {
    const err = thrown(() => new ToolCache({ maxSize: -1 }));

    expect(isSupervisorError(err) && err.code).toBe('INVALID_SETTING');
    expect(isSupervisorError(err) && err.fields.key).toBe('cache.maxSize');
  });
});

describe('isCacheable', () => {
  it('caches a tool whose annotations say readOnlyHint', () => {
    expect(isCacheable({ annotations: { readOnlyHint: true } })).toEqual({ cacheable: true });
  });

  it('does not cache a tool without the hint', () => {
    expect(isCacheable({})).toEqual({ cacheable: false });
    expect(isCacheable({ annotations: { readOnlyHint: false } })).toEqual({ cacheable: false });
  });

  it('caches a tool the config marks cacheable', () => {
    expect(isCacheable({}, { cacheable: true })).toEqual({ cacheable: true });
  });

  it('lets the config opt a read-only tool out', () => {
    const tool = { annotations: { readOnlyHint: true } };

    expect(isCacheable(tool, { cacheable: false })).toEqual({ cacheable: false });
  });

  it('passes on the per-tool ttlMs', () => {
    const tool = { annotations: { readOnlyHint: true } };

    expect(isCacheable(tool, { ttlMs: 5_000 })).toEqual({ cacheable: true, ttlMs: 5_000 });
  });

  it('treats a per-tool ttlMs of 0 as an opt-out', () => {
    expect(isCacheable({}, { cacheable: true, ttlMs: 0 })).toEqual({ cacheable: false });
  });
});

type Op =
  | { kind: 'set'; k: number; body: string }
  | { kind: 'get'; k: number }
  | { kind: 'tick'; ms: number };

/**
 * Runs operations against a cache and against a plain exact-LRU model with the same limits,
 * and checks they agree on every lookup and on the books.
 */
function checkAgainstModel(ops: Op[], maxSize: number, maxBytes: number): void {
  const ttlMs = 1_000;
  const { cache, clock } = setup({ maxSize, maxBytes, ttlMs });
  // Most recent last.
  let model: Array<{ k: number; body: string; at: number; bytes: number }> = [];

  for (const op of ops) {
    if (op.kind === 'tick') {
      clock.now += op.ms;
      continue;
    }

    if (op.kind === 'get') {
      const found = model.find((e) => e.k === op.k && clock.now - e.at < ttlMs);
      model = model.filter((e) => e.k !== op.k || e === found);
      if (found) {
        model = [...model.filter((e) => e !== found), found];
      }

      expect(cache.get('s', 't', { k: op.k })).toEqual(found ? text(found.body) : undefined);
      continue;
    }

    const bytes = bytesOf(text(op.body));
    model = model.filter((e) => e.k !== op.k);
    if (bytes <= maxBytes) {
      while (
        model.length + 1 > maxSize ||
        model.reduce((sum, e) => sum + e.bytes, 0) + bytes > maxBytes
      ) {
        model.shift();
      }

      model.push({ k: op.k, body: op.body, at: clock.now, bytes });
    }

    cache.set('s', 't', { k: op.k }, text(op.body));
  }

  const live = model.filter((e) => clock.now - e.at < ttlMs);
  const stats = cache.stats();

  expect(stats.size).toBe(live.length);
  expect(stats.bytes).toBe(live.reduce((sum, e) => sum + e.bytes, 0));
  expect(stats.size).toBeLessThanOrEqual(maxSize);
  expect(stats.bytes).toBeLessThanOrEqual(maxBytes);
}
