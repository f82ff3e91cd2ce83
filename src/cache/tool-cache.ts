import QuickLRU from 'quick-lru';

import { defaultSettings } from '../config/settings.js';
import type { ToolOptions } from '../config/types.js';
import { SupervisorError } from '../errors.js';
import type { Logger } from '../log.js';
import type { CallToolResult, Tool } from '../mcp/types.js';
import { canonicalJson } from './canonical-json.js';
import type { CacheStats } from './types.js';

/** How a {@link ToolCache} is bounded: maxSize or ttlMs 0 turns caching off. */
export interface CacheLimits {
  /** Most entries held (`cache.maxSize`); 0 turns caching off. Default 1000. */
  maxSize?: number;
  /** Most bytes of serialized results held (`cache.maxBytes`). Default 67108864 (64 MiB). */
  maxBytes?: number;
  /**
   * Lifetime of an entry in ms (`cache.ttlMs`) unless it was stored with its own; 0 turns
   * caching off. Default 300000.
   */
  ttlMs?: number;
}

export interface ToolCacheOptions extends CacheLimits {
  /** The clock, epoch ms. Default `Date.now`. */
  now?: () => number;
  /** Gets `Cache` lines for resizes and invalidations; never called on a hit. */
  logger?: Logger;
}

export interface SetOptions {
  /** This entry's lifetime in ms (a per-tool `ttlMs`); 0 means do not cache it. */
  ttlMs?: number;
}

/** What {@link isCacheable} decided for one tool. */
export interface CachePolicy {
  cacheable: boolean;
  /** The tool's own lifetime in ms, when its config gives one. */
  ttlMs?: number;
}

/**
 * Whether a tool's results may be cached: its annotations say `readOnlyHint: true`, or its
 * config says `cacheable: true`; `cacheable: false` or a per-tool `ttlMs` of 0 opts out.
 */
export function isCacheable(tool: Pick<Tool, 'annotations'>, options?: ToolOptions): CachePolicy {
  if (options?.cacheable === false || options?.ttlMs === 0) {
    return { cacheable: false };
  }

  if (options?.cacheable !== true && tool.annotations?.readOnlyHint !== true) {
    return { cacheable: false };
  }

  return options?.ttlMs === undefined
    ? { cacheable: true }
    : { cacheable: true, ttlMs: options.ttlMs };
}

interface Entry {
  readonly server: string;
  readonly tool: string;
  readonly result: CallToolResult;
  readonly bytes: number;
  readonly storedAt: number;
  /** Its own lifetime; otherwise the cache's current `ttlMs` applies. */
  readonly ttlMs: number | undefined;
  /** Cleared once the entry leaves our books, so a late library callback cannot count it twice. */
  live: boolean;
}

/**
 * The tool-result cache: quick-lru bounded by entries and by bytes, entries expiring by their
 * TTL on the injected clock. Keys are server, tool and the canonical JSON of the arguments, so
 * key order never matters. A hit hands out a deep copy. Hits, misses, capacity evictions,
 * expirations and invalidations are counted apart in our own books: quick-lru's `onEviction`
 * cannot tell an eviction from an expiry, and its own `maxAge` reads `Date.now`.
 * The entry bound is ours and exact (quick-lru alone may hold up to twice its `maxSize`).
 */
export class ToolCache {
  #maxSize: number;
  #maxBytes: number;
  #ttlMs: number;
  readonly #now: () => number;
  readonly #logger: Logger | undefined;
  #lru: QuickLRU<string, Entry>;
  #count = 0;
  #bytes = 0;
  #hits = 0;
  #misses = 0;
  #evictions = 0;
  #expirations = 0;
  #invalidations = 0;

  constructor(options: ToolCacheOptions = {}) {
    const defaults = defaultSettings();

    this.#maxSize = checkLimit('maxSize', options.maxSize ?? defaults['cache.maxSize']);
    this.#maxBytes = checkLimit('maxBytes', options.maxBytes ?? defaults['cache.maxBytes']);
    this.#ttlMs = checkLimit('ttlMs', options.ttlMs ?? defaults['cache.ttlMs']);
    this.#now = options.now ?? Date.now;
    this.#logger = options.logger;
    this.#lru = this.#createLru();
  }

  /** Whether the cache stores anything at all (maxSize and ttlMs both above 0). */
  get enabled(): boolean {
    return this.#maxSize > 0 && this.#ttlMs > 0;
  }

  /**
   * A fresh cached result, as a deep copy, or undefined (a miss). An expired entry is removed
   * and counted as an expiration. Nothing is counted while caching is off.
   *
   * @throws SupervisorError `INVALID_ARGUMENTS` when the arguments have no JSON form.
   */
  get(server: string, tool: string, args: unknown): CallToolResult | undefined {
    if (!this.enabled) {
      return undefined;
    }

    const key = cacheKey(server, tool, args);
    const entry = this.#lru.peek(key);

    if (entry === undefined) {
      this.#misses++;
      return undefined;
    }

    if (this.#isExpired(entry, this.#now())) {
      this.#drop(key, entry);
      this.#expirations++;
      this.#misses++;
      return undefined;
    }

    // quick-lru does not reorder a hit within its newer map; re-inserting makes the
    // eviction order exact recency.
    this.#lru.delete(key);
    this.#lru.set(key, entry);
    this.#hits++;

    return cloneJson(entry.result) as CallToolResult;
  }

  /**
   * Stores a result; returns whether it was stored. Never stores `isError` results, results
   * larger than `maxBytes` (measured as UTF-8 JSON), or anything while caching is off. Makes
   * room by evicting the least recently used entries. A result that is not stored still
   * replaces (removes) an older one under the same key.
   *
   * @throws SupervisorError `INVALID_ARGUMENTS` when the arguments have no JSON form.
   */
  set(
    server: string,
    tool: string,
    args: unknown,
    result: CallToolResult,
    options: SetOptions = {},
  ): boolean {
    const ttlMs = options.ttlMs ?? this.#ttlMs;
    if (!this.enabled || result.isError === true || ttlMs <= 0) {
      return false;
    }

    const key = cacheKey(server, tool, args);
    const json = serialize(result);
    const bytes = json === undefined ? Infinity : Buffer.byteLength(json, 'utf8');
    const old = this.#lru.peek(key);

    if (old !== undefined) {
      this.#drop(key, old);
    }

    if (json === undefined || bytes > this.#maxBytes) {
      return false;
    }

    this.#makeRoom(1, bytes);

    // The stored copy is parsed from the measured JSON, so the caller's object stays theirs.
    const stored = JSON.parse(json) as CallToolResult;
    const entry: Entry = {
      server,
      tool,
      result: stored,
      bytes,
      storedAt: this.#now(),
      ttlMs: options.ttlMs,
      live: true,
    };

    this.#lru.set(key, entry);
    this.#count++;
    this.#bytes += bytes;

    return true;
  }

  /**
   * Removes the entries of one server, one tool (of every server, or of `server`), or all of
   * them when neither is given. Returns how many were removed; each counts as an invalidation.
   */
  invalidate(filter: { server?: string; tool?: string } = {}): number {
    const doomed: Array<[string, Entry]> = [];

    for (const [key, entry] of this.#lru) {
      const serverMatches = filter.server === undefined || entry.server === filter.server;
      const toolMatches = filter.tool === undefined || entry.tool === filter.tool;

      if (serverMatches && toolMatches) {
        doomed.push([key, entry]);
      }
    }

    for (const [key, entry] of doomed) {
      this.#drop(key, entry);
    }

    this.#invalidations += doomed.length;
    if (doomed.length > 0) {
      this.#logger?.debug({ ...filter, removed: doomed.length }, 'cache invalidated');
    }

    return doomed.length;
  }

  /** Removes every entry (each counts as an invalidation); the counters keep running. */
  clear(): void {
    this.#invalidations += this.#count;
    this.#forgetAll();
  }

  /**
   * Removes expired entries (counted as expirations) and returns how many. `get` expires
   * lazily; this keeps `size` and `bytes` honest for entries nobody asks for.
   */
  prune(): number {
    const now = this.#now();
    const expired: Array<[string, Entry]> = [];

    for (const [key, entry] of this.#lru) {
      if (this.#isExpired(entry, now)) {
        expired.push([key, entry]);
      }
    }

    for (const [key, entry] of expired) {
      this.#drop(key, entry);
    }

    this.#expirations += expired.length;
    return expired.length;
  }

  /** The counters and current occupancy; prunes expired entries first. */
  stats(): CacheStats {
    this.prune();
    const lookups = this.#hits + this.#misses;

    return {
      size: this.#count,
      bytes: this.#bytes,
      maxSize: this.#maxSize,
      maxBytes: this.#maxBytes,
      hits: this.#hits,
      misses: this.#misses,
      evictions: this.#evictions,
      expirations: this.#expirations,
      invalidations: this.#invalidations,
      hitRate: lookups === 0 ? 0 : this.#hits / lookups,
    };
  }

  /**
   * Applies new limits live (settings changes). Shrinking evicts the least recently used
   * entries; turning caching off drops every entry (counted as evictions). A new `ttlMs`
   * applies at once to the entries stored without a lifetime of their own.
   */
  resize(limits: CacheLimits): void {
    this.#maxSize = checkLimit('maxSize', limits.maxSize ?? this.#maxSize);
    this.#maxBytes = checkLimit('maxBytes', limits.maxBytes ?? this.#maxBytes);
    this.#ttlMs = checkLimit('ttlMs', limits.ttlMs ?? this.#ttlMs);

    if (!this.enabled) {
      this.#evictions += this.#count;
      this.#forgetAll();
      this.#lru = this.#createLru();
    } else {
      this.#makeRoom(0, 0);
      this.#lru.resize(this.#maxSize);
    }

    this.#logger?.info(
      { maxSize: this.#maxSize, maxBytes: this.#maxBytes, ttlMs: this.#ttlMs, size: this.#count },
      'cache resized',
    );
  }

  #createLru(): QuickLRU<string, Entry> {
    return new QuickLRU<string, Entry>({
      // quick-lru refuses 0; an off cache never stores, so its size does not matter then.
      maxSize: Math.max(1, this.#maxSize),
      // We bound the entry count ourselves, so this fires only if quick-lru drops an entry
      // on its own; it then counts as a capacity eviction.
      onEviction: (_key, entry) => {
        if (this.#forget(entry)) {
          this.#evictions++;
        }
      },
    });
  }

  /** Evicts oldest-first until `entries` more entries and `bytes` more bytes fit. */
  #makeRoom(entries: number, bytes: number): void {
    const now = this.#now();

    while (this.#count + entries > this.#maxSize || this.#bytes + bytes > this.#maxBytes) {
      const oldest = this.#lru.entriesAscending().next();
      if (oldest.done === true) {
        return;
      }

      const [key, entry] = oldest.value;
      this.#drop(key, entry);

      // An entry that had outlived its TTL was not pushed out by pressure.
      if (this.#isExpired(entry, now)) {
        this.#expirations++;
      } else {
        this.#evictions++;
      }
    }
  }

  #isExpired(entry: Entry, now: number): boolean {
    return now - entry.storedAt >= (entry.ttlMs ?? this.#ttlMs);
  }

  #drop(key: string, entry: Entry): void {
    this.#lru.delete(key);
    this.#forget(entry);
  }

  /** Takes an entry off the books; false when it already was. */
  #forget(entry: Entry): boolean {
    if (!entry.live) {
      return false;
    }

    entry.live = false;
    this.#count--;
    this.#bytes -= entry.bytes;
    return true;
  }

  #forgetAll(): void {
    for (const entry of this.#lru.values()) {
      entry.live = false;
    }

    this.#lru.clear();
    this.#count = 0;
    this.#bytes = 0;
  }
}

/**
 * Server names never hold NUL, and JSON text never holds a raw one, so splitting at the
 * first and the last NUL recovers server, tool and arguments: no two calls share a key.
 */
function cacheKey(server: string, tool: string, args: unknown): string {
  return server + '\u0000' + tool + '\u0000' + (args === undefined ? '{}' : canonicalJson(args));
}

/**
 * A deep copy of a JSON value. Stored results are parsed from JSON, so plain objects, arrays
 * and primitives are all there is; this is several times faster than structuredClone.
 */
function cloneJson(value: unknown): unknown {
  if (value === null || typeof value !== 'object') {
    return value;
  }

  if (Array.isArray(value)) {
    return value.map(cloneJson);
  }

  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const member = cloneJson((value as Record<string, unknown>)[key]);

    // Assigning `__proto__` would set the prototype instead of copying a JSON member.
    if (key === '__proto__') {
      Object.defineProperty(copy, key, { value: member, enumerable: true, writable: true });
    } else {
      copy[key] = member;
    }
  }

  return copy;
}

function serialize(result: CallToolResult): string | undefined {
  try {
    return JSON.stringify(result);
  } catch {
    // A result JSON cannot write (a BigInt, a cycle) is simply not cached.
    return undefined;
  }
}

function checkLimit(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0) {
    throw new SupervisorError('INVALID_SETTING', 'cache limits are non-negative integers', {
      key: `cache.${name}`,
      value,
    });
  }

  return value;
}
