/**
 * Backoff and restart-intensity arithmetic, pure and total: finite for any attempt count.
 */

/** Exponents past this add nothing: 2^52 already exceeds any cap in milliseconds. */
const MAX_EXPONENT = 52;

/**
 * The ceiling of the delay before retry `attempt`: `min(capMs, baseMs · 2^attempt)`, finite for
 * any attempt (negative, huge, NaN or Infinity are clamped).
 */
export function backoffCeilingMs(attempt: number, baseMs: number, capMs: number): number {
  const n = Number.isFinite(attempt)
    ? Math.min(Math.max(Math.floor(attempt), 0), MAX_EXPONENT)
    : MAX_EXPONENT;

  return Math.min(capMs, baseMs * 2 ** n);
}

/**
 * The delay before retry `attempt`, drawn with full jitter from `[0, ceiling]`.
 * `random` returns a number in `[0, 1)`.
 */
export function backoffDelayMs(
  attempt: number,
  baseMs: number,
  capMs: number,
  random: () => number,
): number {
  const r = Math.min(Math.max(random(), 0), 1);

  return Math.floor(r * backoffCeilingMs(attempt, baseMs, capMs));
}

/** Restart timestamps still inside the intensity window ending at `now`. */
export function restartsWithin(
  restarts: readonly number[],
  now: number,
  periodMs: number,
): number[] {
  return restarts.filter((at) => now - at < periodMs);
}
