import { parseSettings, type Settings } from './settings.js';
import { joinPath, type ConfigProblem } from './problems.js';

const UNKNOWN_SETTING = 'unknown setting';

/**
 * Validates a `supervisor` block (flat dotted keys or nested objects) and reports each refused
 * value at its JSON path under `basePath`. Unknown keys are warnings; the checks between
 * related settings (`backoff.baseMs` ≤ `backoff.capMs`) run even when another key is refused.
 */
export function parseSettingsBlock(
  raw: unknown,
  basePath: string,
): { values: Partial<Settings>; problems: ConfigProblem[] } {
  const first = parseSettings(raw);
  const problems = first.problems.map((p): ConfigProblem => {
    const unknown = p.message === UNKNOWN_SETTING;

    return {
      severity: unknown ? 'warning' : 'error',
      path: settingPath(basePath, p.key),
      message: unknown ? `unknown setting "${p.key}"; ignored` : p.message,
    };
  });

  if (first.problems.length > 0) {
    // parseSettings skips the checks between settings when anything was refused: run them on
    // the values that passed, so that one typo does not hide another mistake.
    for (const p of parseSettings(first.values).problems) {
      problems.push({ severity: 'error', path: settingPath(basePath, p.key), message: p.message });
    }
  }

  return { values: first.values, problems };
}

/** `supervisor` + `health.intervalMs` → `supervisor.health.intervalMs`. */
export function settingPath(basePath: string, key: string): string {
  if (key === '') return basePath;

  return joinPath(basePath, ...key.split('.'));
}
