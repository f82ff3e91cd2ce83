/**
 * Renders the machines for people and tools: a Mermaid state diagram drawn from the
 * transition table, or JSON with the table and XState's own definitions. Pure.
 */
import { serverMachine } from './server.machine.js';
import { supervisorMachine } from './supervisor.machine.js';
import { TRANSITIONS, type TransitionRow } from './transitions.js';
import { SERVER_STATES } from './vocabulary.js';

/** Formats of `mcp-supervisor statechart`. */
export const STATECHART_FORMATS = ['mermaid', 'json'] as const;

export type StatechartFormat = (typeof STATECHART_FORMATS)[number];

/** The machines in `format`, ending with a newline. */
export function renderStatechart(format: StatechartFormat): string {
  return format === 'json' ? `${JSON.stringify(statechartJson(), null, 2)}\n` : renderMermaid();
}

/** The JSON form: states, the transition table and both machine definitions. */
export function statechartJson(): Record<string, unknown> {
  return {
    server: {
      states: SERVER_STATES,
      transitions: TRANSITIONS,
      definition: serverMachine.toJSON(),
    },
    supervisor: { definition: supervisorMachine.toJSON() },
  };
}

/** The server statechart as Mermaid `stateDiagram-v2`, one arrow per from, to and event. */
export function renderMermaid(): string {
  const lines = ['stateDiagram-v2', '  [*] --> connecting'];
  const arrows = new Map<string, { row: TransitionRow; reasons: string[] }>();

  for (const row of TRANSITIONS) {
    const key = `${row.from}|${row.to}|${row.event}|${row.guard}`;
    const arrow = arrows.get(key);
    if (arrow) arrow.reasons.push(row.reason);
    else arrows.set(key, { row, reasons: [row.reason] });
  }

  lines.push('  state "any state but stopped" as any');
  for (const { row, reasons } of arrows.values()) {
    const from = row.from === '*' ? 'any' : row.from;
    const guard = row.guard ? ` [${row.guard}]` : '';
    lines.push(`  ${from} --> ${row.to}: ${row.event}${guard} / ${reasons.join(', ')}`);
  }

  lines.push('  stopped --> [*]');
  return `${lines.join('\n')}\n`;
}
