/**
 * The transition table (machines/transitions.ts) against the machine, both ways: a path walk
 * with @xstate/graph over every event, timer and actor outcome, under each restart policy and
 * with the transport alive or gone, reaches every row, and reaches no transition the table
 * lacks.
 */
import { getAdjacencyMap } from '@xstate/graph';
import { createEmptyActor, type ActorLogic, type AnyEventObject, type SnapshotFrom } from 'xstate';
import { describe, expect, it } from 'vitest';

import {
  breakerTrip,
  connectionLost,
  operatorCommand,
  probeFailed,
  probeOk,
  serverStop,
  trialResult,
  type ServerPolicy,
  type ServerTransitionEvent,
} from '../machines/server.events.js';
import { serverMachine, type ServerInput } from '../machines/server.machine.js';
import { TRANSITIONS } from '../machines/transitions.js';
import { REASONS, SERVER_STATES } from '../machines/vocabulary.js';
import { POLICY } from './helpers/machine-harness.js';

type Snapshot = SnapshotFrom<typeof serverMachine>;
type Logic = typeof serverMachine;

const LOST = ['process_exited', 'connection_lost', 'session_lost', 'auth_required'] as const;
const CONNECT_FAILURES = ['connect_failed', 'spawn_failed', 'process_exited', 'auth_required'];

/** Events the actor can receive from outside, whatever its state. */
const EXTERNAL: AnyEventObject[] = [
  ...LOST.flatMap((reason) => [
    connectionLost(reason, {}, false),
    connectionLost(reason, {}, true),
  ]),
  breakerTrip('threshold_reached'),
  breakerTrip('slow_calls'),
  trialResult(true),
  trialResult(false),
  ...(['open', 'close', 'reset', 'restart', 'probe', 'disable'] as const).map((c) =>
    operatorCommand(c),
  ),
  ...(['removed', 'shutdown', 'config_changed'] as const).map((r) => serverStop(r)),
];

interface Edge {
  from: string;
  event: string;
  to: string;
  reason: string;
}

/** A scope that records what the machine emits; @xstate/graph's own scope drops it. */
function recordingScope(sink: ServerTransitionEvent[]) {
  const empty = createEmptyActor();

  return {
    self: empty,
    logger: () => undefined,
    id: '',
    sessionId: 'graph',
    defer: () => undefined,
    system: empty.system,
    stopChild: () => undefined,
    emit: () => undefined,
    actionExecutor: (action: { type: string; params: unknown }) => {
      if (action.type !== 'xstate.emit') return;
      const event = (action.params as { event: ServerTransitionEvent }).event;
      if (event.type === 'server.transition') sink.push(event);
    },
  };
}

/** Timers and actor outcomes the active state nodes can produce. */
function internalEvents(snapshot: Snapshot): AnyEventObject[] {
  const events: AnyEventObject[] = [];

  for (const node of snapshot._nodes) {
    for (const transition of node.after) events.push({ type: transition.eventType });
    for (const invoke of node.invoke) {
      if (invoke.src === 'prober') {
        events.push(probeOk(), probeFailed('probe'));
        continue;
      }
      events.push({ type: `xstate.done.actor.${invoke.id}`, output: {} });
      if (invoke.src === 'probe') {
        events.push({ type: `xstate.error.actor.${invoke.id}`, error: new Error('probe') });
        continue;
      }
      for (const reason of CONNECT_FAILURES) {
        events.push({ type: `xstate.error.actor.${invoke.id}`, error: { reason, detail: {} } });
      }
    }
  }

  return events;
}

/** The table's name for an event: `after.backoff`, `done.connect`, `operator.open`. */
function causeOf(event: AnyEventObject): string {
  const after = /^xstate\.after\.([^.]+)\./.exec(event.type);
  if (after) return `after.${after[1]}`;

  const actor = /^xstate\.(done|error)\.actor\.(.+)$/.exec(event.type);
  if (actor) return `${actor[1]}.${actor[2]}`;

  return event.type;
}

function serialize(snapshot: Snapshot, policy: ServerPolicy): string {
  const { context } = snapshot;

  return JSON.stringify({
    value: snapshot.value,
    status: snapshot.status,
    misses: context.misses,
    restarts: Math.min(context.restarts.length, policy.maxRestarts + 1),
    sticky: context.stickyOpen,
    restore: context.restore?.state ?? null,
  });
}

function walk(input: Partial<ServerInput>, policy: ServerPolicy, connected: boolean): Edge[] {
  const logic: Logic = serverMachine.provide({ guards: { hasConnection: () => connected } });
  const emitted: ServerTransitionEvent[] = [];
  const scope = recordingScope(emitted);
  const full: ServerInput = { name: 'srv', policy, now: () => 0, random: () => 0.5, ...input };
  const edges: Edge[] = [];

  const fromState = logic.getInitialSnapshot(scope as never, full);
  for (const t of emitted) edges.push(edgeOf(t, 'operator.enable'));

  // The machine itself, but every step also records what it emitted.
  const recording: ActorLogic<Snapshot, AnyEventObject, ServerInput> = {
    config: logic.config,
    transition: (snapshot, event) => {
      emitted.length = 0;
      const next = logic.transition(snapshot, event as never, scope as never);
      for (const t of emitted) edges.push(edgeOf(t, causeOf(event)));
      return next;
    },
    getInitialSnapshot: () => fromState,
    getPersistedSnapshot: (snapshot) => snapshot,
  };

  getAdjacencyMap(recording, {
    fromState,
    events: (snapshot) =>
      snapshot.status === 'active' ? [...EXTERNAL, ...internalEvents(snapshot)] : [],
    serializeState: (snapshot) => serialize(snapshot, policy),
    limit: 1_000_000,
  });

  return edges;
}

function edgeOf(t: ServerTransitionEvent, event: string): Edge {
  return { from: String(t.from), event, to: t.to, reason: t.reason };
}

function key(edge: Edge): string {
  return `${edge.from} --${edge.event}--> ${edge.to} (${edge.reason})`;
}

function reachableEdges(): Set<string> {
  const policies = (['permanent', 'transient', 'temporary'] as const).map(
    (restartPolicy): ServerPolicy => ({
      ...POLICY,
      restartPolicy,
      maxRestarts: 1,
      healthFailureThreshold: 2,
    }),
  );
  const inputs: Array<Partial<ServerInput>> = [
    {},
    { startReason: 'operator_enable' },
    { restore: { state: 'open', retryAt: 10, attempt: 2, stickyOpen: false } },
    { restore: { state: 'open', retryAt: null, attempt: 0, stickyOpen: true } },
  ];
  const found = new Set<string>();

  for (const policy of policies) {
    for (const input of inputs) {
      for (const connected of [true, false]) {
        for (const edge of walk(input, policy, connected)) found.add(key(edge));
      }
    }
  }

  return found;
}

function tableEdges(): Set<string> {
  const rows = new Set<string>();
  const live = SERVER_STATES.filter((s) => s !== 'stopped');

  for (const row of TRANSITIONS) {
    for (const from of row.from === '*' ? live : [row.from]) rows.add(key({ ...row, from }));
  }

  return rows;
}

describe('the transition table', () => {
  const reachable = reachableEdges();
  const table = tableEdges();

  it('has every row reachable in the machine', () => {
    expect([...table].filter((row) => !reachable.has(row))).toEqual([]);
  });

  it('lists every transition the machine can take', () => {
    expect([...reachable].filter((edge) => !table.has(edge))).toEqual([]);
  });

  it('names only the states and reasons of the vocabulary', () => {
    for (const row of TRANSITIONS) {
      expect(SERVER_STATES).toContain(row.to);
      expect(REASONS).toContain(row.reason);
    }
  });
});
