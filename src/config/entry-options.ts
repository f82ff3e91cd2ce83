import { z } from 'zod';

import type { Settings } from './settings.js';
import type { ToolOptions } from './types.js';
import { joinPath, type ProblemList } from './problems.js';
import { parseSettingsBlock } from './settings-block.js';

const TOOL_SCHEMA = z.object({
  timeoutMs: z.number().int().positive().optional(),
  cacheable: z.boolean().optional(),
  ttlMs: z.number().int().nonnegative().optional(),
});

const TOOL_KEYS = new Set(Object.keys(TOOL_SCHEMA.shape));

/** The entry's `supervisor` block, with `restart` layered over it. */
export function entrySettings(
  supervisor: Record<string, unknown> | undefined,
  restartField: string | Record<string, unknown> | undefined,
  base: string,
  problems: ProblemList,
): Partial<Settings> {
  const block = parseSettingsBlock(supervisor, joinPath(base, 'supervisor'));
  problems.add(block.problems);

  if (restartField === undefined) return block.values;

  const restart = typeof restartField === 'string' ? { policy: restartField } : restartField;
  const layer = parseSettingsBlock({ restart }, base);
  const at = joinPath(base, 'restart');

  problems.add(
    layer.problems.map((p) => (typeof restartField === 'string' ? { ...p, path: at } : p)),
  );
  return { ...block.values, ...layer.values };
}

/** The entry's `tools` block: per-tool `timeoutMs`, `cacheable` and `ttlMs`. */
export function entryTools(
  tools: Record<string, Record<string, unknown>>,
  base: string,
  problems: ProblemList,
): Record<string, ToolOptions> {
  const out: Record<string, ToolOptions> = {};

  for (const [tool, raw] of Object.entries(tools)) {
    const at = joinPath(base, tool);

    for (const key of Object.keys(raw)) {
      if (!TOOL_KEYS.has(key)) problems.warn(joinPath(at, key), `unknown tool option "${key}"`);
    }

    const parsed = TOOL_SCHEMA.safeParse(raw);
    if (!parsed.success) {
      problems.issues(at, parsed.error.issues);
      continue;
    }

    out[tool] = stripUndefined(parsed.data);
  }

  return out;
}

function stripUndefined(options: ToolOptions): ToolOptions {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
}
