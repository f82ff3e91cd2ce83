/** Counts the tool cache keeps; hits, misses, evictions and expiries are counted apart. */
export interface CacheStats {
  size: number;
  bytes: number;
  maxSize: number;
  maxBytes: number;
  hits: number;
  misses: number;
  evictions: number;
  expirations: number;
  invalidations: number;
  hitRate: number;
}
