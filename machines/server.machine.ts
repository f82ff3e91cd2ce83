import { assign, enqueueActions, fromPromise, sendTo, setup } from 'xstate';

import { backoffDelayMs, restartsWithin } from './backoff.js';
import { errorMessage, proberFrom } from './prober.js';
import {
  probeCancel,
  probeRun,
  type ConnectFailure,
  type ConnectionLostEvent,
  type ServerEvent,
  type ServerPolicy,
  type ServerTransitionEvent,
} from './server.events.js';
import type { Reason, ServerState, TransitionDetail } from './vocabulary.js';

/** Where a restored actor resumes (from the store's last state). */
export interface ServerRestore {
  state: ServerState;
  retryAt: number | null;
  attempt: number;
  stickyOpen: boolean;
}

export interface ServerInput {
  name: string;
  policy: ServerPolicy;
  /** Epoch ms; the supervisor passes its clock so a simulated one drives everything. */
  now?: () => number;
  /** In `[0, 1)`; the jitter source. */
  random?: () => number;
  restore?: ServerRestore;
  /** When set, the actor's first entry is reported as a transition with this reason. */
  startReason?: Reason;
  startUser?: string;
}

export interface ServerContext {
  readonly name: string;
  readonly policy: ServerPolicy;
  readonly now: () => number;
  readonly random: () => number;
  /** Backoff attempt n: grows with each failed recovery, reset after a stable stay. */
  readonly attempt: number;
  /** When each restart (a failure after reaching `closed`) happened. */
  readonly restarts: readonly number[];
  readonly retryAt: number | null;
  /** Consecutive probe misses while `closed`. */
  readonly misses: number;
  readonly stickyOpen: boolean;
  /** The next connect must kill the current connection first (operator restart). */
  readonly killFirst: boolean;
  /** The top-level state last reported, the `from` of the next transition. */
  readonly current: ServerState | null;
  /** The first entry is not a transition (a fresh start or a restore): report nothing. */
  readonly silent: boolean;
  /** Why the transition being taken happens: set by transition actions, read on entry. */
  readonly pending: { reason: Reason; detail: TransitionDetail };
  readonly restore: ServerRestore | undefined;
}

/** What the connect actor is given. */
export interface ConnectInput {
  name: string;
  /** Stop the current connection (and wait for its process group to be gone) first. */
  killFirst: boolean;
}

type Failure = { reason: Reason; detail: TransitionDetail };

/**
 * One MCP server's statechart: connection, circuit breaker, backoff and health. Pure: the
 * runtime provides the `connect`, `probe` (half-open trials) and `prober` (probes while
 * `closed`, see `proberFrom`) actors and the `hasConnection` guard.
 */
export const serverMachine = setup({
  types: {
    context: {} as ServerContext,
    events: {} as ServerEvent,
    input: {} as ServerInput,
    emitted: {} as ServerTransitionEvent,
  },
  actors: {
    connect: fromPromise<unknown, ConnectInput>(async () => {
      throw { reason: 'connect_failed', detail: { message: 'no connector provided' } };
    }),
    probe: fromPromise<void, { name: string }>(async () => undefined),
    prober: proberFrom(async () => undefined),
  },
  guards: {
    hasConnection: () => false,
    isSticky: ({ context }) => context.stickyOpen,
    restoredOpen: ({ context }) => context.restore?.state === 'open' && !context.restore.stickyOpen,
    restoredSticky: ({ context }) =>
      context.restore?.state === 'open' && context.restore.stickyOpen,
    missesReachThreshold: ({ context }) =>
      context.misses + 1 >= context.policy.healthFailureThreshold,
  },
  delays: {
    probeInterval: ({ context }) => context.policy.healthIntervalMs,
    probeTimeout: ({ context }) => context.policy.healthTimeoutMs,
    connectTimeout: ({ context }) => context.policy.connectTimeoutMs,
    backoff: ({ context }) => Math.max(0, (context.retryAt ?? context.now()) - context.now()),
    halfOpenDeadline: ({ context }) => context.policy.halfOpenDeadlineMs,
    failedRetry: ({ context }) => context.policy.failedRetryMs,
    stableStay: ({ context }) => context.policy.restartPeriodMs,
  },
  actions: {
    startProbe: sendTo('prober', probeRun()),
    cancelProbe: sendTo('prober', probeCancel()),
    report: enqueueActions(({ context, enqueue, system }, params: { state: ServerState }) => {
      const transition: ServerTransitionEvent = {
        type: 'server.transition',
        server: context.name,
        from: context.current,
        to: params.state,
        reason: context.pending.reason,
        at: context.now(),
        detail: context.pending.detail,
        attempt: context.attempt,
        stickyOpen: context.stickyOpen,
        retryAt: params.state === 'open' ? context.retryAt : null,
      };

      enqueue.assign({ current: params.state, silent: false });
      if (context.silent) return;

      enqueue.emit(transition);

      const supervisor = system.get('supervisor');
      if (supervisor) enqueue.sendTo(supervisor, transition);
    }),
    because: assign((_, params: Failure) => ({ pending: params })),
    armBackoff: assign(({ context }) => {
      const { backoffBaseMs, backoffCapMs } = context.policy;

      if (context.restore?.state === 'open' && context.restore.retryAt !== null) {
        // A restored `open` resumes the rest of its delay, never more than the cap.
        const retryAt = Math.min(context.restore.retryAt, context.now() + backoffCapMs);
        return { retryAt, restore: undefined };
      }

      // A refused credential will not heal by itself soon: retry it slowly, at the cap.
      const delayMs =
        context.pending.reason === 'auth_required'
          ? backoffCapMs
          : backoffDelayMs(context.attempt, backoffBaseMs, backoffCapMs, context.random);
      const retryAt = context.now() + delayMs;

      return {
        retryAt,
        attempt: context.attempt + 1,
        pending: {
          reason: context.pending.reason,
          detail: { ...context.pending.detail, retryAt, delayMs, attempt: context.attempt },
        },
      };
    }),
    countRestart: assign(({ context }) => {
      const now = context.now();

      return {
        restarts: [...restartsWithin(context.restarts, now, context.policy.restartPeriodMs), now],
      };
    }),
    clearCounters: assign({
      attempt: 0,
      restarts: [],
      misses: 0,
      stickyOpen: false,
      retryAt: null,
    }),
    resetAttempt: assign({ attempt: 0 }),
    clearMisses: assign({ misses: 0 }),
    addMiss: assign(({ context }) => ({ misses: context.misses + 1 })),
    forgetRestore: assign({ restore: undefined }),
    setKillFirst: assign({ killFirst: true }),
    clearKillFirst: assign({ killFirst: false }),
    setSticky: assign({ stickyOpen: true, retryAt: null }),
    clearSticky: assign({ stickyOpen: false }),
    takePolicy: assign(({ event }) =>
      event.type === 'policy.update' ? { policy: event.policy } : {},
    ),
  },
}).createMachine({
  id: 'server',
  context: ({ input }) => ({
    name: input.name,
    policy: input.policy,
    now: input.now ?? Date.now,
    random: input.random ?? Math.random,
    attempt: input.restore?.attempt ?? 0,
    restarts: [],
    retryAt: input.restore?.retryAt ?? null,
    misses: 0,
    stickyOpen: input.restore?.stickyOpen ?? false,
    killFirst: false,
    current: input.startReason ? 'stopped' : null,
    silent: !input.startReason,
    pending: { reason: input.startReason ?? 'connected', detail: userDetail(input.startUser) },
    restore: input.restore,
  }),
  initial: 'starting',
  on: {
    'policy.update': { actions: 'takePolicy' },
    'operator.open': {
      target: '.open.held',
      actions: ['setSticky', { type: 'because', params: operatorBecause('operator_open') }],
    },
    'operator.close': [
      {
        guard: 'hasConnection',
        target: '.closed',
        actions: ['clearSticky', { type: 'because', params: operatorBecause('operator_close') }],
      },
      {
        target: '.connecting',
        actions: ['clearSticky', { type: 'because', params: operatorBecause('operator_close') }],
      },
    ],
    'operator.reset': [
      {
        guard: 'hasConnection',
        target: '.closed',
        actions: ['clearCounters', { type: 'because', params: operatorBecause('operator_reset') }],
      },
      {
        target: '.connecting',
        actions: ['clearCounters', { type: 'because', params: operatorBecause('operator_reset') }],
      },
    ],
    'operator.restart': {
      target: '.connecting',
      actions: [
        'clearSticky',
        'setKillFirst',
        { type: 'because', params: operatorBecause('operator_restart') },
      ],
    },
    'operator.disable': {
      target: '.stopped',
      actions: { type: 'because', params: operatorBecause('operator_disable') },
    },
    'server.stop': {
      target: '.stopped',
      actions: {
        type: 'because',
        params: ({ event }) => ({ reason: event.reason, detail: userDetail(event.user) }),
      },
    },
  },
  states: {
    starting: {
      always: [
        { guard: 'restoredSticky', target: 'open.held', actions: 'forgetRestore' },
        { guard: 'restoredOpen', target: 'open.waiting' },
        { target: 'connecting', actions: 'forgetRestore' },
      ],
    },

    connecting: {
      entry: { type: 'report', params: { state: 'connecting' } },
      exit: 'clearKillFirst',
      invoke: {
        id: 'connect',
        src: 'connect',
        input: ({ context }) => ({ name: context.name, killFirst: context.killFirst }),
        onDone: {
          target: 'closed',
          actions: { type: 'because', params: { reason: 'connected', detail: {} } },
        },
        onError: [
          {
            guard: ({ context }) => context.policy.restartPolicy === 'temporary',
            target: 'stopped',
            actions: {
              type: 'because',
              params: ({ event }) => notRestarted(connectFailure(event.error)),
            },
          },
          {
            target: 'open',
            actions: {
              type: 'because',
              params: ({ event }) => connectFailure(event.error),
            },
          },
        ],
      },
      after: {
        connectTimeout: {
          target: 'open',
          actions: {
            type: 'because',
            params: ({ context }) => ({
              reason: 'connect_failed',
              detail: { message: `connect timed out after ${context.policy.connectTimeoutMs} ms` },
            }),
          },
        },
      },
      on: {
        'operator.probe': {
          actions: [
            { type: 'because', params: operatorBecause('operator_probe') },
            { type: 'report', params: { state: 'connecting' } },
          ],
        },
      },
    },

    closed: {
      entry: ['clearMisses', { type: 'report', params: { state: 'closed' } }],
      initial: 'idle',
      // One prober per stay in `closed`, not one actor per probe: see `proberFrom`.
      invoke: {
        id: 'prober',
        src: 'prober',
        input: ({ context }) => ({ name: context.name }),
      },
      after: { stableStay: { actions: 'resetAttempt' } },
      on: {
        'connection.lost': [
          {
            guard: ({ context }) => context.policy.restartPolicy === 'temporary',
            target: 'stopped',
            actions: { type: 'because', params: ({ event }) => notRestarted(lostFailure(event)) },
          },
          {
            guard: ({ context, event }) =>
              context.policy.restartPolicy === 'transient' && event.clean,
            target: 'stopped',
            actions: {
              type: 'because',
              params: ({ event }) => ({ reason: 'exited_clean', detail: event.detail }),
            },
          },
          {
            target: 'recovering',
            actions: { type: 'because', params: ({ event }) => lostFailure(event) },
          },
        ],
        'breaker.trip': {
          target: 'recovering',
          actions: {
            type: 'because',
            params: ({ event }) => ({ reason: event.reason, detail: event.detail }),
          },
        },
        'operator.probe': {
          target: '.probing',
          actions: [
            { type: 'because', params: operatorBecause('operator_probe') },
            { type: 'report', params: { state: 'closed' } },
          ],
        },
      },
      states: {
        idle: {
          after: { probeInterval: 'probing' },
          on: {
            // A new probe interval restarts the wait: the old timer was armed with the old one.
            'policy.update': {
              guard: ({ context, event }) =>
                event.policy.healthIntervalMs !== context.policy.healthIntervalMs,
              target: 'idle',
              reenter: true,
              actions: 'takePolicy',
            },
          },
        },
        probing: {
          entry: 'startProbe',
          exit: 'cancelProbe',
          on: {
            'probe.ok': { target: 'idle', actions: 'clearMisses' },
            'probe.failed': [
              {
                guard: 'missesReachThreshold',
                target: '#server.recovering',
                actions: [
                  'addMiss',
                  {
                    type: 'because',
                    params: ({ context, event }) => ({
                      reason: 'probe_failed',
                      detail: { message: event.message, misses: context.misses },
                    }),
                  },
                ],
              },
              { target: 'idle', actions: 'addMiss' },
            ],
          },
          after: {
            probeTimeout: [
              {
                guard: 'missesReachThreshold',
                target: '#server.recovering',
                actions: [
                  'addMiss',
                  {
                    type: 'because',
                    params: ({ context }) => ({
                      reason: 'probe_timeout',
                      detail: { misses: context.misses },
                    }),
                  },
                ],
              },
              { target: 'idle', actions: 'addMiss' },
            ],
          },
        },
      },
    },

    /** Transient: a server that had reached `closed` failed; count the restart, then decide. */
    recovering: {
      entry: 'countRestart',
      always: [
        {
          guard: ({ context }) => context.restarts.length > context.policy.maxRestarts,
          target: 'failed',
          actions: assign(({ context }) => ({
            pending: {
              reason: 'restart_intensity',
              detail: {
                ...context.pending.detail,
                cause: context.pending.reason,
                restarts: context.restarts.length,
              },
            },
          })),
        },
        { target: 'open' },
      ],
    },

    open: {
      initial: 'waiting',
      states: {
        waiting: {
          entry: ['armBackoff', { type: 'report', params: { state: 'open' } }],
          after: {
            backoff: {
              target: '#server.halfOpen',
              actions: { type: 'because', params: { reason: 'backoff_elapsed', detail: {} } },
            },
          },
        },
        held: {
          entry: { type: 'report', params: { state: 'open' } },
        },
      },
      on: {
        'operator.probe': {
          target: 'halfOpen',
          actions: ['clearSticky', { type: 'because', params: operatorBecause('operator_probe') }],
        },
      },
    },

    halfOpen: {
      entry: { type: 'report', params: { state: 'halfOpen' } },
      initial: 'deciding',
      after: {
        halfOpenDeadline: {
          target: 'open',
          actions: { type: 'because', params: { reason: 'half_open_deadline', detail: {} } },
        },
      },
      on: {
        'connection.lost': [
          {
            guard: ({ context }) => context.policy.restartPolicy === 'temporary',
            target: 'stopped',
            actions: { type: 'because', params: ({ event }) => notRestarted(lostFailure(event)) },
          },
          {
            target: 'open',
            actions: { type: 'because', params: ({ event }) => lostFailure(event) },
          },
        ],
        'trial.result': [
          {
            guard: ({ event }) => event.ok,
            target: 'closed',
            actions: { type: 'because', params: { reason: 'trial_succeeded', detail: {} } },
          },
          {
            target: 'open',
            actions: {
              type: 'because',
              params: ({ event }) => ({ reason: 'trial_failed', detail: event.detail }),
            },
          },
        ],
        'operator.probe': {
          actions: [
            { type: 'because', params: operatorBecause('operator_probe') },
            { type: 'report', params: { state: 'halfOpen' } },
          ],
        },
      },
      states: {
        deciding: {
          always: [{ guard: 'hasConnection', target: 'trial' }, { target: 'reconnecting' }],
        },
        reconnecting: {
          invoke: {
            id: 'reconnect',
            src: 'connect',
            input: ({ context }) => ({ name: context.name, killFirst: true }),
            onDone: { target: 'trial' },
            onError: [
              {
                guard: ({ context }) => context.policy.restartPolicy === 'temporary',
                target: '#server.stopped',
                actions: {
                  type: 'because',
                  params: ({ event }) => notRestarted(connectFailure(event.error)),
                },
              },
              {
                target: '#server.open',
                actions: {
                  type: 'because',
                  params: ({ event }) => connectFailure(event.error),
                },
              },
            ],
          },
          after: {
            connectTimeout: {
              target: '#server.open',
              actions: {
                type: 'because',
                params: ({ context }) => ({
                  reason: 'connect_failed',
                  detail: {
                    message: `connect timed out after ${context.policy.connectTimeoutMs} ms`,
                  },
                }),
              },
            },
          },
        },
        trial: {
          invoke: {
            id: 'trial',
            src: 'probe',
            input: ({ context }) => ({ name: context.name }),
            onDone: {
              target: '#server.closed',
              actions: { type: 'because', params: { reason: 'trial_succeeded', detail: {} } },
            },
            onError: {
              target: '#server.open',
              actions: {
                type: 'because',
                params: ({ event }) => ({
                  reason: 'trial_failed',
                  detail: { message: errorMessage(event.error) },
                }),
              },
            },
          },
          after: {
            probeTimeout: {
              target: '#server.open',
              actions: {
                type: 'because',
                params: { reason: 'trial_failed', detail: { message: 'probe timed out' } },
              },
            },
          },
        },
      },
    },

    failed: {
      entry: { type: 'report', params: { state: 'failed' } },
      after: {
        failedRetry: {
          target: 'halfOpen',
          actions: { type: 'because', params: { reason: 'failed_retry', detail: {} } },
        },
      },
      on: {
        'operator.probe': {
          target: 'halfOpen',
          actions: { type: 'because', params: operatorBecause('operator_probe') },
        },
      },
    },

    stopped: {
      type: 'final',
      entry: { type: 'report', params: { state: 'stopped' } },
    },
  },
});

function operatorBecause(reason: Reason) {
  return ({ event }: { event: ServerEvent }): Failure => ({
    reason,
    detail: {
      ...('detail' in event && event.type.startsWith('operator.') ? event.detail : {}),
      ...userDetail('user' in event ? event.user : undefined),
    },
  });
}

function userDetail(user: string | undefined): TransitionDetail {
  return user ? { user } : {};
}

function lostFailure(event: ConnectionLostEvent): Failure {
  return { reason: event.reason, detail: event.detail };
}

function notRestarted(failure: Failure): Failure {
  return { reason: 'not_restarted', detail: { ...failure.detail, cause: failure.reason } };
}

function connectFailure(error: unknown): Failure {
  const failure = error as Partial<ConnectFailure> | undefined;

  if (failure && typeof failure.reason === 'string') {
    return { reason: failure.reason, detail: failure.detail ?? {} };
  }

  return { reason: 'connect_failed', detail: { message: errorMessage(error) } };
}
