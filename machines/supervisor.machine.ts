import { assign, emit, enqueueActions, setup, type AnyActorRef } from 'xstate';

import type { ServerEvent, ServerTransitionEvent } from './server.events.js';
import { serverMachine, type ServerInput } from './server.machine.js';
import type { Transition } from './vocabulary.js';

export interface SupervisorInput {
  /** The highest `seq` already stored; the next transition gets `startSeq + 1`. */
  startSeq: number;
}

export interface SupervisorContext {
  readonly seq: number;
}

/** Spawn a server actor under `name`. */
export interface SpawnServerEvent {
  type: 'supervisor.spawn';
  name: string;
  input: ServerInput;
}

/** Deliver an event to one server actor. */
export interface ForwardEvent {
  type: 'supervisor.forward';
  name: string;
  event: ServerEvent;
}

/** Stop and forget one server actor (after it reached `stopped`, or at once). */
export interface ReleaseServerEvent {
  type: 'supervisor.release';
  name: string;
}

export type SupervisorEvent =
  | SpawnServerEvent
  | ForwardEvent
  | ReleaseServerEvent
  | ServerTransitionEvent
  | { type: `xstate.error.actor.${string}`; error: unknown; actorId?: string };

/** Every transition, numbered. */
export interface SupervisorTransitionEmitted {
  type: 'transition';
  transition: Transition;
  facts: Pick<ServerTransitionEvent, 'attempt' | 'stickyOpen' | 'retryAt'>;
}

/** A child actor failed with an exception; the others go on. */
export interface SupervisorChildErrorEmitted {
  type: 'child.error';
  server: string;
  error: unknown;
}

export type SupervisorEmitted = SupervisorTransitionEmitted | SupervisorChildErrorEmitted;

export function spawnServer(name: string, input: ServerInput): SpawnServerEvent {
  return { type: 'supervisor.spawn', name, input };
}

export function forwardToServer(name: string, event: ServerEvent): ForwardEvent {
  return { type: 'supervisor.forward', name, event };
}

export function releaseServer(name: string): ReleaseServerEvent {
  return { type: 'supervisor.release', name };
}

/**
 * The root actor: spawns, stops and re-spawns server actors, numbers every server transition
 * with a monotonic `seq` and emits it as one ordered stream. A child's exception is emitted as
 * `child.error` and never stops the root.
 */
export const supervisorMachine = setup({
  types: {
    context: {} as SupervisorContext,
    events: {} as SupervisorEvent,
    input: {} as SupervisorInput,
    emitted: {} as SupervisorEmitted,
  },
  actors: { server: serverMachine },
}).createMachine({
  id: 'supervisor',
  context: ({ input }) => ({ seq: input.startSeq }),
  initial: 'running',
  states: {
    running: {
      on: {
        'supervisor.spawn': {
          actions: enqueueActions(({ enqueue, event }) => {
            enqueue.spawnChild('server', { id: event.name, input: event.input });
          }),
        },
        'supervisor.forward': {
          actions: enqueueActions(({ enqueue, event, self }) => {
            const child = self.getSnapshot().children[event.name] as AnyActorRef | undefined;
            if (child) enqueue.sendTo(child, event.event);
          }),
        },
        'supervisor.release': {
          actions: enqueueActions(({ enqueue, event, self }) => {
            if (self.getSnapshot().children[event.name]) enqueue.stopChild(event.name);
          }),
        },
        'server.transition': {
          actions: [
            assign(({ context }) => ({ seq: context.seq + 1 })),
            emit(({ context, event }) => ({
              type: 'transition' as const,
              transition: {
                seq: context.seq,
                server: event.server,
                from: event.from,
                to: event.to,
                reason: event.reason,
                at: event.at,
                detail: event.detail,
              },
              facts: {
                attempt: event.attempt,
                stickyOpen: event.stickyOpen,
                retryAt: event.retryAt,
              },
            })),
          ],
        },
        'xstate.error.actor.*': {
          actions: emit(({ event }) => ({
            type: 'child.error' as const,
            server: event.type.slice('xstate.error.actor.'.length),
            error: 'error' in event ? event.error : undefined,
          })),
        },
      },
    },
  },
});
