import type { ServerPolicy } from '../../machines/server.events.js';
import type { Settings } from '../config/settings.js';

/** The slice of settings the server statechart runs on. */
export function serverPolicy(settings: Settings): ServerPolicy {
  return {
    healthIntervalMs: settings['health.intervalMs'],
    healthTimeoutMs: settings['health.timeoutMs'],
    healthFailureThreshold: settings['health.failureThreshold'],
    connectTimeoutMs: settings['connect.timeoutMs'],
    halfOpenDeadlineMs: settings['breaker.halfOpenDeadlineMs'],
    backoffBaseMs: settings['backoff.baseMs'],
    backoffCapMs: settings['backoff.capMs'],
    maxRestarts: settings['restart.maxRestarts'],
    restartPeriodMs: settings['restart.periodMs'],
    failedRetryMs: settings['restart.failedRetryMs'],
    restartPolicy: settings['restart.policy'],
  };
}
