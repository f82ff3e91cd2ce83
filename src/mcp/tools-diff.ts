import type { Tool, ToolsDiff } from './types.js';

/**
 * What changed between two tool lists, by name: added, removed, and changed (any field of
 * the definition differs; key order does not count).
 */
export function diffTools(before: readonly Tool[], after: readonly Tool[]): ToolsDiff {
  const old = new Map(before.map((tool) => [tool.name, canonical(tool)]));
  const next = new Map(after.map((tool) => [tool.name, canonical(tool)]));

  const added = [...next.keys()].filter((name) => !old.has(name));
  const removed = [...old.keys()].filter((name) => !next.has(name));
  const changed = [...next.keys()].filter(
    (name) => old.has(name) && old.get(name) !== next.get(name),
  );

  return { added, removed, changed };
}

/** Whether a diff has anything in it. */
export function isEmptyDiff(diff: ToolsDiff): boolean {
  return diff.added.length === 0 && diff.removed.length === 0 && diff.changed.length === 0;
}

function canonical(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== 'object') return value;

  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, item]) => item !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

  return Object.fromEntries(entries.map(([key, item]) => [key, sortKeys(item)]));
}
