import type { TransitionDetail } from '../../machines/vocabulary.js';
import type { Settings } from '../config/settings.js';
import type { ProcessUsage } from '../mcp/process-usage.js';

/** Which limit a server crossed. */
export type LimitCause = 'max_rss' | 'max_uptime';

/** The detail of a restart for a crossed limit: `cause` plus the measured value and the limit. */
export interface LimitCrossing extends TransitionDetail {
  cause: LimitCause;
}

/**
 * Whether a server crossed `restart.maxUptimeMs` or `restart.maxRssBytes` (0 turns either
 * off). Uptime is checked first: it needs no /proc read. `usage` is read only when asked for.
 */
export function crossedLimit(
  settings: Settings,
  uptimeMs: number | null,
  usage: () => ProcessUsage | null,
): LimitCrossing | null {
  const maxUptimeMs = settings['restart.maxUptimeMs'];
  if (maxUptimeMs > 0 && uptimeMs !== null && uptimeMs >= maxUptimeMs) {
    return { cause: 'max_uptime', uptimeMs, maxUptimeMs };
  }

  const maxRssBytes = settings['restart.maxRssBytes'];
  if (maxRssBytes <= 0) return null;

  const measured = usage();
  if (measured && measured.rssBytes > maxRssBytes) {
    return { cause: 'max_rss', rssBytes: measured.rssBytes, maxRssBytes };
  }

  return null;
}
