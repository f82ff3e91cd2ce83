import {
  createActor,
  fromPromise,
  type Actor,
  type AnyActorRef,
  type InspectionEvent,
} from 'xstate';

import { proberFrom } from '../../machines/prober.js';
import { operatorCommand, policyUpdate, serverStop } from '../../machines/server.events.js';
import type { ServerEvent } from '../../machines/server.events.js';
import { serverMachine, type ServerRestore } from '../../machines/server.machine.js';
import {
  forwardToServer,
  releaseServer,
  spawnServer,
  supervisorMachine,
  type SupervisorTransitionEmitted,
} from '../../machines/supervisor.machine.js';
import type { OperatorEvent, Reason, ServerState, Transition } from '../../machines/vocabulary.js';
import { isCacheable, ToolCache } from '../cache/tool-cache.js';
import type { CacheStats } from '../cache/types.js';
import { mergeSettings, type Settings } from '../config/settings.js';
import type { ServerEntry } from '../config/types.js';
import { SupervisorError } from '../errors.js';
import { serviceLogger, transitionLevel, type Logger } from '../log.js';
import { readGroupUsage, type ProcessUsage } from '../mcp/process-usage.js';
import type { CallToolResult, Tool, ToolsDiff } from '../mcp/types.js';
import { Redactor } from '../redact.js';
import type { HistoryQuery, ServerStateRecord, Store } from '../store/store.js';
import { stateRecordOf } from '../store/state-record.js';
import type { TransitionWriter } from '../store/writer.js';
import { serverPolicy } from './policy.js';
import { TransitionRing } from './ring.js';
import { ServerRuntime } from './server-runtime.js';
import type {
  CallOptions,
  CallOutcome,
  ControlOptions,
  ServerDetail,
  ServerStatus,
  ServerUpdate,
  SupervisorApi,
  TransitionListener,
} from './types.js';

/** A clock for every timer of the supervisor: XState's SimulatedClock fits. */
export interface SupervisorClock {
  now(): number;
  setTimeout(fn: () => void, timeoutMs: number): unknown;
  clearTimeout(id: unknown): void;
}

export interface SupervisorCoreOptions {
  servers: ServerEntry[];
  /** Defaults < config file block < settings table, already merged. */
  settings: Settings;
  logger: Logger;
  store: Store | null;
  writer: TransitionWriter | null;
  startSeq: number;
  restore: ServerStateRecord[];
  clock?: SupervisorClock;
  random?: () => number;
  inspect?: (event: InspectionEvent) => void;
  /** Values to mask besides each entry's own (e.g. the database URL). */
  secrets?: string[];
}

type MachineActor = Actor<typeof supervisorMachine>;

/**
 * The running supervisor: the root actor, one runtime per server, the cache and the fan-out of
 * the one ordered transition stream.
 */
export class SupervisorCore implements SupervisorApi {
  private readonly log: Logger;
  private readonly runtimes = new Map<string, ServerRuntime>();
  private readonly listeners = new Set<TransitionListener>();
  private readonly updateListeners = new Set<(update: ServerUpdate) => void>();
  private readonly ring: TransitionRing;
  private readonly cache: ToolCache;
  private readonly actor: MachineActor;
  private readonly now: () => number;
  private readonly sharedSecrets: Redactor;
  private readonly since = new Map<
    string,
    { state: ServerState; at: number; reason: string | null }
  >();
  /** Process groups spawned and not yet seen gone. */
  private readonly liveGroups = new Set<number>();
  private highWater: number;
  private currentSettings: Settings;
  private stopping: Promise<void> | null = null;

  constructor(private readonly options: SupervisorCoreOptions) {
    this.log = serviceLogger(options.logger, 'Supervisor');
    this.now = options.clock ? () => options.clock!.now() : Date.now;
    this.currentSettings = options.settings;
    this.highWater = options.startSeq;
    this.sharedSecrets = new Redactor(options.secrets ?? []);
    this.ring = new TransitionRing(options.settings['stream.resumeBufferSize']);
    this.cache = new ToolCache({
      maxSize: options.settings['cache.maxSize'],
      maxBytes: options.settings['cache.maxBytes'],
      ttlMs: options.settings['cache.ttlMs'],
      now: this.now,
    });
    this.actor = this.createRootActor();
  }

  /** Starts the root actor and spawns every enabled server. */
  start(): void {
    this.actor.start();
    const restored = new Map(this.options.restore.map((r) => [r.server, r]));

    for (const entry of this.options.servers) {
      const record = restored.get(entry.name);
      this.addServer(entry, record);
    }
  }

  // --- the public surface ------------------------------------------------------------------

  servers(): ServerStatus[] {
    const runtimes = [...this.runtimes.values()];
    // One pass over /proc for the whole fleet, not one per server.
    const usage = readGroupUsage(runtimes.flatMap((r) => (r.pid === null ? [] : [r.pid])));

    return runtimes.map((runtime) => this.status(runtime, usage));
  }

  server(name: string): ServerDetail | undefined {
    const runtime = this.runtimes.get(name);
    if (!runtime) return undefined;

    const pid = runtime.pid;
    const usage = readGroupUsage(pid === null ? [] : [pid]);

    return {
      ...this.status(runtime, usage),
      toolList: [...runtime.tools],
      stderrTail: runtime.stderrTail(),
    };
  }

  async callTool(
    server: string,
    tool: string,
    args: Record<string, unknown> = {},
    options: CallOptions = {},
  ): Promise<CallToolResult> {
    return (await this.callToolWithCache(server, tool, args, options)).result;
  }

  async callToolWithCache(
    server: string,
    tool: string,
    args: Record<string, unknown> = {},
    options: CallOptions = {},
  ): Promise<CallOutcome> {
    const runtime = this.requireRuntime(server);

    if (args === null || typeof args !== 'object' || Array.isArray(args)) {
      throw new SupervisorError('INVALID_ARGUMENTS', 'tool arguments must be a JSON object');
    }

    const known = runtime.tools;
    const definition = known.find((t) => t.name === tool);
    if (known.length > 0 && !definition) {
      throw new SupervisorError('TOOL_NOT_FOUND', `server ${server} has no tool ${tool}`, {
        server,
        tool,
      });
    }

    const policy = definition
      ? isCacheable(definition, runtime.entry.tools[tool])
      : { cacheable: false };

    if (policy.cacheable) {
      const hit = this.cache.get(server, tool, args);
      if (hit) return { result: hit, cache: 'hit' };
    }

    const result = await runtime.call(tool, args, options.signal);

    if (policy.cacheable && !result.isError) {
      this.cache.set(server, tool, args, result, policy.ttlMs ? { ttlMs: policy.ttlMs } : {});
    }

    return { result, cache: 'miss' };
  }

  async control(
    server: string,
    event: OperatorEvent,
    options: ControlOptions = {},
  ): Promise<Transition> {
    const runtime = this.requireRuntime(server);
    const child = this.child(server);

    if (event === 'enable') {
      if (child && !runtime.disabled) {
        throw new SupervisorError('CONFLICT', `server ${server} is already enabled`);
      }

      runtime.disabled = false;
      return this.expectTransition(server, () =>
        this.spawn(runtime, undefined, 'operator_enable', options.user),
      );
    }

    if (!child) {
      throw new SupervisorError('CONFLICT', `server ${server} is stopped; enable it first`, {
        server,
      });
    }

    if (event === 'disable') runtime.disabled = true;

    return this.expectTransition(server, () =>
      this.forward(server, operatorCommand(event, options.user)),
    );
  }

  subscribe(listener: TransitionListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onServerUpdate(listener: (update: ServerUpdate) => void): () => void {
    this.updateListeners.add(listener);
    return () => this.updateListeners.delete(listener);
  }

  seq(): number {
    return this.highWater;
  }

  recentTransitions(after: number): Transition[] | null {
    return this.ring.after(after, this.highWater);
  }

  /**
   * History, oldest first: the store's rows plus those still held by the writer (and the
   * ring), so an answer always reaches the current high-water `seq`.
   */
  async history(query: HistoryQuery): Promise<Transition[]> {
    const limit = query.limit ?? 100;
    const matches = (t: Transition): boolean =>
      t.seq > (query.after ?? 0) && (!query.server || t.server === query.server);
    const stored = await this.storedHistory({ ...query, limit });
    const lastStored = stored.at(-1)?.seq ?? query.after ?? 0;

    if (stored.length >= limit) return stored;

    const held = this.options.writer?.heldTransitions() ?? [];
    const unwritten = new Map<number, Transition>();
    for (const t of [...held, ...this.ring.all()]) {
      if (t.seq > lastStored && matches(t)) unwritten.set(t.seq, t);
    }

    const rest = [...unwritten.values()].sort((a, b) => a.seq - b.seq);
    return [...stored, ...rest].slice(0, limit);
  }

  /** The store's history; while the database is away, nothing (memory answers alone). */
  private async storedHistory(query: HistoryQuery): Promise<Transition[]> {
    if (!this.options.store) return [];

    try {
      return await this.options.store.history(query);
    } catch (err) {
      this.log.warn({ err }, 'history read failed: answering from memory');
      return [];
    }
  }

  cacheStats(): CacheStats {
    return this.cache.stats();
  }

  invalidateCache(filter: { server?: string; tool?: string }): number {
    return this.cache.invalidate(filter);
  }

  settings(): Settings {
    return { ...this.currentSettings };
  }

  /** Applies new global settings to the cache, the ring and every server. */
  applySettings(settings: Settings): void {
    this.currentSettings = settings;
    this.cache.resize({
      maxSize: settings['cache.maxSize'],
      maxBytes: settings['cache.maxBytes'],
      ttlMs: settings['cache.ttlMs'],
    });
    this.ring.resize(settings['stream.resumeBufferSize']);
    this.options.writer?.setMaxPendingWrites(settings['store.maxPendingWrites']);

    for (const runtime of this.runtimes.values()) {
      const merged = mergeSettings(settings, runtime.entry.settings);
      runtime.applySettings(merged);
      if (this.child(runtime.name)) this.forward(runtime.name, policyUpdate(serverPolicy(merged)));
    }
  }

  /** Adds a server while running and spawns it, unless its entry is disabled. */
  addEntry(entry: ServerEntry): void {
    if (this.stopping) return;

    if (this.runtimes.has(entry.name)) {
      throw new SupervisorError('CONFLICT', `server ${entry.name} already exists`, {
        server: entry.name,
      });
    }

    this.addServer(entry);
  }

  /**
   * Stops a server for good and forgets it: its actor reaches `stopped` with `reason`, its
   * process group is gone, its cache entries and stored state are dropped. History is kept.
   */
  async removeServer(
    name: string,
    reason: 'removed' | 'config_changed' = 'removed',
    user?: string,
  ): Promise<void> {
    const runtime = this.requireRuntime(name);

    await this.stopRuntime(runtime, reason, user);
    this.runtimes.delete(name);
    this.since.delete(name);
    this.cache.invalidate({ server: name });
    if (reason === 'removed') this.options.writer?.deleteState(name);
  }

  /**
   * Restarts a server on a new entry: the old actor stops and the new one starts, both with
   * reason `config_changed`. An operator's disable is kept.
   */
  async replaceEntry(entry: ServerEntry, user?: string): Promise<void> {
    const old = this.requireRuntime(entry.name);
    const operatorDisabled = old.disabled && old.entry.enabled;

    await this.removeServer(entry.name, 'config_changed', user);
    // A stop that began while the old actor was going down wins: nothing new is spawned.
    if (this.stopping) return;

    this.addServer(entry, undefined, { reason: 'config_changed', user, operatorDisabled });
  }

  /**
   * The last resort of an impatient exit: SIGKILL to every live process group at once, so
   * nothing outlives the supervisor. Synchronous; the orderly way is {@link stop}.
   */
  killAllNow(): void {
    for (const pgid of this.liveGroups) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }

  /** Stops every server (process groups gone) and the root actor. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.stopAll();
    return this.stopping;
  }

  // --- servers -----------------------------------------------------------------------------

  private addServer(
    entry: ServerEntry,
    record?: ServerStateRecord,
    live?: { reason: Reason; user?: string; operatorDisabled?: boolean },
  ): void {
    const settings = mergeSettings(this.currentSettings, entry.settings);
    const runtime = new ServerRuntime(
      entry,
      settings,
      serviceLogger(this.options.logger, 'Server', { server: entry.name }),
      {
        send: (event) => this.forward(entry.name, event),
        state: () => this.stateOf(entry.name),
        onSpawn: (pgid) => this.recordGroup(entry, pgid),
        onGroupGone: (pgid) => this.forgetGroup(pgid),
        onToolsChanged: (tools, diff) => this.toolsChanged(runtime, tools, diff),
        onReconnected: () => this.cache.invalidate({ server: entry.name }),
      },
      this.now,
      this.sharedSecrets,
    );

    this.runtimes.set(entry.name, runtime);
    this.since.set(entry.name, {
      state: record?.state ?? 'connecting',
      at: record?.since ?? this.now(),
      reason: record?.reason ?? null,
    });

    runtime.disabled = record?.disabled === true || live?.operatorDisabled === true;
    runtime.disabled ||= !entry.enabled;
    if (runtime.disabled) {
      this.since.set(entry.name, { state: 'stopped', at: this.now(), reason: 'operator_disable' });
      return;
    }

    this.spawn(runtime, restoreFrom(record), live?.reason, live?.user);
  }

  /** Sends `server.stop` and waits until the actor is released and its process is gone. */
  private async stopRuntime(
    runtime: ServerRuntime,
    reason: 'removed' | 'config_changed',
    user?: string,
  ): Promise<void> {
    if (this.child(runtime.name)) {
      this.forward(runtime.name, serverStop(reason, user));
      // The root releases a stopped actor one microtask after its transition.
      await new Promise((resolve) => setImmediate(resolve));
    }

    // An actor that ended in an error is never released on its own; its successor needs the id.
    if (this.actor.getSnapshot().children[runtime.name]) {
      this.actor.send(releaseServer(runtime.name));
    }

    await runtime.dropConnection();
  }

  private spawn(
    runtime: ServerRuntime,
    restore: ServerRestore | undefined,
    startReason?: Reason,
    startUser?: string,
  ): void {
    this.actor.send(
      spawnServer(runtime.name, {
        name: runtime.name,
        policy: serverPolicy(runtime.settings),
        now: this.now,
        ...(this.options.random ? { random: this.options.random } : {}),
        ...(restore ? { restore } : {}),
        ...(startReason ? { startReason } : {}),
        ...(startUser ? { startUser } : {}),
      }),
    );
  }

  private forward(name: string, event: ServerEvent): void {
    this.actor.send(forwardToServer(name, event));
  }

  private child(name: string): AnyActorRef | undefined {
    const child = this.actor.getSnapshot().children[name] as AnyActorRef | undefined;
    return child && child.getSnapshot().status === 'active' ? child : undefined;
  }

  private stateOf(name: string): { state: ServerState; retryAt: number | null } {
    const child = this.child(name);
    if (!child) return { state: 'stopped', retryAt: null };

    const snapshot = child.getSnapshot() as { value: unknown; context: { retryAt: number | null } };
    return { state: topState(snapshot.value), retryAt: snapshot.context.retryAt };
  }

  private requireRuntime(name: string): ServerRuntime {
    const runtime = this.runtimes.get(name);
    if (!runtime) {
      throw new SupervisorError('SERVER_NOT_FOUND', `no server named ${name}`, { server: name });
    }

    return runtime;
  }

  private status(runtime: ServerRuntime, usage?: Map<number, ProcessUsage>): ServerStatus {
    const { state, retryAt } = this.stateOf(runtime.name);
    const since = this.since.get(runtime.name);
    const pid = runtime.pid;
    const group = pid === null ? undefined : usage?.get(pid);

    return {
      name: runtime.name,
      state,
      since: since?.at ?? this.now(),
      reason: since?.reason ?? null,
      transport: runtime.entry.transport,
      pid: runtime.pid,
      tools: runtime.tools.length,
      calls: runtime.calls,
      failures: runtime.failures,
      restarts: runtime.restarts,
      retryAt: state === 'open' ? retryAt : null,
      lastError: runtime.lastError,
      serverVersion: runtime.serverVersion,
      protocolVersion: runtime.protocolVersion,
      uptimeMs: runtime.uptimeMs(),
      tags: runtime.entry.tags,
      // Read only when asked for (the API), never on the hot path of `server` frames.
      ...(usage ? { rssBytes: group?.rssBytes ?? null, cpuMs: group?.cpuMs ?? null } : {}),
    };
  }

  // --- the transition stream ---------------------------------------------------------------

  private createRootActor(): MachineActor {
    const runtimeOf = (name: string): ServerRuntime => this.requireRuntime(name);
    const server = serverMachine.provide({
      actors: {
        connect: fromPromise(async ({ input, signal }) => {
          await runtimeOf(input.name).connect(input.killFirst, signal);
          return {};
        }),
        probe: fromPromise(async ({ input, signal }) => runtimeOf(input.name).probe(signal)),
        prober: proberFrom((input, signal) => runtimeOf(input.name).probe(signal)),
      },
      guards: {
        hasConnection: ({ context }) => this.runtimes.get(context.name)?.hasConnection() === true,
      },
    });

    const actor = createActor(supervisorMachine.provide({ actors: { server } }), {
      systemId: 'supervisor',
      input: { startSeq: this.options.startSeq },
      ...(this.options.clock ? { clock: this.options.clock } : {}),
      ...(this.options.inspect ? { inspect: this.options.inspect } : {}),
      logger: (...args: unknown[]) => this.log.debug({ args }, 'xstate'),
    });

    actor.on('transition', (event) => this.dispatch(event));
    actor.on('child.error', (event) => {
      this.log.error({ err: event.error, server: event.server }, 'server actor failed');
    });
    actor.subscribe({ error: (err) => this.log.error({ err }, 'supervisor actor failed') });

    return actor;
  }

  private dispatch(event: SupervisorTransitionEmitted): void {
    const runtime = this.runtimes.get(event.transition.server);
    const redactor = runtime?.redactor ?? this.sharedSecrets;
    const transition: Transition = {
      ...event.transition,
      detail: redactor.value(event.transition.detail),
    };

    this.highWater = transition.seq;
    this.since.set(transition.server, {
      state: transition.to,
      at: transition.at,
      reason: transition.reason,
    });
    runtime?.onTransition(transition);
    this.ring.push(transition);
    this.persist(transition, event.facts, runtime?.disabled === true);
    this.logTransition(transition);

    for (const listener of this.listeners) {
      try {
        listener(transition);
      } catch (err) {
        this.log.error({ err }, 'transition subscriber threw');
      }
    }

    if (transition.to === 'stopped') {
      // The actor is final: forget it once this event has been handled.
      queueMicrotask(() => this.actor.send(releaseServer(transition.server)));
    }
  }

  private persist(
    transition: Transition,
    facts: SupervisorTransitionEmitted['facts'],
    disabled: boolean,
  ): void {
    const writer = this.options.writer;
    if (!writer) return;

    writer.enqueue(transition);

    // Shutdown is not a state to resume: the last state before it is what a restart restores.
    if (transition.reason === 'shutdown') return;

    writer.putState(stateRecordOf(transition, facts, disabled));
  }

  private logTransition(transition: Transition): void {
    const level = transitionLevel(transition.to);
    const { seq, server, from, to, reason, detail } = transition;

    serviceLogger(this.options.logger, 'Breaker', { server })[level](
      { seq, from, to, reason, detail },
      'transition',
    );
  }

  /** Runs `act` and returns the first transition of `server` it causes. */
  private async expectTransition(server: string, act: () => void): Promise<Transition> {
    let seen: Transition | undefined;
    const unsubscribe = this.subscribe((t) => {
      if (t.server === server && !seen) seen = t;
    });

    try {
      act();
      for (let i = 0; i < 5 && !seen; i += 1) await Promise.resolve();
    } finally {
      unsubscribe();
    }

    if (!seen) {
      throw new SupervisorError('CONFLICT', `server ${server} did not change state`, { server });
    }

    return seen;
  }

  private toolsChanged(runtime: ServerRuntime, tools: readonly Tool[], diff: ToolsDiff): void {
    const invalidated = this.cache.invalidate({ server: runtime.name });

    this.log.info(
      { server: runtime.name, tools: tools.length, ...diff, invalidated },
      'tool list changed',
    );
    this.notifyUpdate(runtime);
  }

  private notifyUpdate(runtime: ServerRuntime): void {
    const update = { server: runtime.name, status: this.status(runtime) };

    for (const listener of this.updateListeners) {
      try {
        listener(update);
      } catch (err) {
        this.log.error({ err }, 'server update subscriber threw');
      }
    }
  }

  private recordGroup(entry: ServerEntry, pgid: number): void {
    this.liveGroups.add(pgid);
    const store = this.options.store;
    if (!store) return;

    store
      .putProcessGroup({
        server: entry.name,
        pgid,
        ownerPid: process.pid,
        // Wall clock, not `this.now()`: the reaper compares it with the kernel's start time.
        startedAt: Date.now(),
        command: entry.command ?? '',
      })
      .catch((err: unknown) => this.log.warn({ err, pgid }, 'process group not recorded'));
  }

  private forgetGroup(pgid: number): void {
    this.liveGroups.delete(pgid);
    this.options.store
      ?.deleteProcessGroup(pgid)
      .catch((err: unknown) => this.log.warn({ err, pgid }, 'process group not forgotten'));
  }

  private async stopAll(): Promise<void> {
    for (const runtime of this.runtimes.values()) {
      if (this.child(runtime.name)) this.forward(runtime.name, serverStop('shutdown'));
    }

    // Leaving `connecting` aborted any connect in flight; wait until what it opened is gone.
    await Promise.all([...this.runtimes.values()].map((runtime) => runtime.quiesce()));
    this.actor.stop();
  }
}

function topState(value: unknown): ServerState {
  if (typeof value === 'string')
    return value === 'starting' ? 'connecting' : (value as ServerState);

  const key = Object.keys(value as object)[0];
  return (key === 'recovering' ? 'open' : key) as ServerState;
}

function restoreFrom(record: ServerStateRecord | undefined): ServerRestore | undefined {
  // Only `open` resumes (the rest of its delay, or sticky); `failed` and the rest start fresh.
  if (!record || record.state !== 'open') return undefined;

  return {
    state: record.state,
    retryAt: record.retryAt,
    attempt: record.attempt,
    stickyOpen: record.stickyOpen,
  };
}
