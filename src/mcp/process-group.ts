import { readdirSync } from 'node:fs';

import type { Logger } from '../log.js';
import { pidExists, procStat, startedNear } from '../process-identity.js';
import type { ProcessGroupRecord } from '../store/store.js';

/** How often (ms) a bounded wait checks whether a group is gone. */
const POLL_MS = 25;

/** Default grace (ms) per step when reaping orphans at boot. */
const DEFAULT_REAP_GRACE_MS = 2000;

/**
 * Whether any live (non-zombie) process of the group remains. `kill(-pgid, 0)` alone is not
 * enough: a grandchild re-parented to an init that reaps lazily lingers as a zombie, and a
 * zombie still answers signal 0.
 */
export function groupAlive(pgid: number): boolean {
  if (!signalGroup(pgid, 0)) return false;
  if (process.platform !== 'linux') return true;

  return liveMembersOnLinux(pgid) > 0;
}

/**
 * Stops a whole process group: SIGTERM, up to `graceMs` (ms) for it to go, then SIGKILL and up
 * to `graceMs` more. Resolves with whether the group is gone. Polling is confined to these
 * bounded waits; nothing else here polls.
 */
export async function killGroup(pgid: number, graceMs: number): Promise<boolean> {
  if (!groupAlive(pgid)) return true;

  signalGroup(pgid, 'SIGTERM');
  if (await waitGroupGone(pgid, graceMs)) return true;

  signalGroup(pgid, 'SIGKILL');

  return waitGroupGone(pgid, graceMs);
}

/** Waits up to `timeoutMs` (ms) for the group to be gone; resolves with whether it is. */
export async function waitGroupGone(pgid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;

  while (groupAlive(pgid)) {
    if (Date.now() >= deadline) return false;
    // Deliberately ref'd: a supervisor that is exiting stays up for this bounded wait, so the
    // SIGKILL step is never skipped and no grandchild outlives it.
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }

  return true;
}

export interface ReapOptions {
  /** Each step of stopping an orphaned group (ms, default 2000). */
  graceMs?: number;
}

/**
 * Kills the process groups left by a supervisor that is gone: its pid is no longer alive, or
 * it is this very pid from an earlier life (a record older than this process). A record is
 * trusted only while its group is provably the one recorded (see {@link matchesRecord}): after
 * a reboot or on another host the pgid may name someone else's processes, which are left
 * alone with a warning. Returns the pgids of the groups it found alive and killed; orphans
 * already gone are not listed.
 */
export async function reapOrphans(
  records: ProcessGroupRecord[],
  logger: Logger,
  options: ReapOptions = {},
): Promise<number[]> {
  const graceMs = options.graceMs ?? DEFAULT_REAP_GRACE_MS;
  const bornAt = Date.now() - process.uptime() * 1000;
  const orphans = records.filter((record) => isOrphan(record, bornAt));

  const results = await Promise.all(
    orphans.map(async (record) => {
      if (!groupAlive(record.pgid)) return null;

      const fields = { server: record.server, pgid: record.pgid, ownerPid: record.ownerPid };
      if (!matchesRecord(record)) {
        logger.warn(fields, 'orphan record does not match a live group');
        return null;
      }

      if (!(await killGroup(record.pgid, graceMs))) {
        logger.warn(fields, 'orphaned process group survived SIGKILL');
        return null;
      }

      logger.warn(fields, 'reaped orphaned process group');

      return record.pgid;
    }),
  );

  return results.filter((pgid): pgid is number => pgid !== null);
}

function isOrphan(record: ProcessGroupRecord, bornAt: number): boolean {
  if (record.ownerPid === process.pid) return record.startedAt < bornAt;

  return !pidExists(record.ownerPid);
}

/**
 * Whether the live group `record.pgid` is the one recorded. Its leader (pid == pgid) still
 * there must have started when the record says (within 2 s, or up to 10 s before a record
 * written late); a leader gone with members left is ours, as a pgid cannot be handed out again
 * while its group has members. Off Linux no start time can be read, and the record is trusted
 * as before.
 */
function matchesRecord(record: ProcessGroupRecord): boolean {
  if (process.platform !== 'linux') return true;

  const leader = procStat(record.pgid);
  if (leader === null) return true;

  return startedNear(leader.startedAt, record.startedAt);
}

/** Sends a signal to a group; false when the group does not exist (ESRCH). */
function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (error) {
    return errorCode(error) === 'EPERM';
  }
}

function liveMembersOnLinux(pgid: number): number {
  let count = 0;

  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = procStat(entry);
    if (stat && stat.pgrp === pgid && stat.state !== 'Z' && stat.state !== 'X') count += 1;
  }

  return count;
}

function errorCode(error: unknown): string | undefined {
  return error instanceof Error ? (error as NodeJS.ErrnoException).code : undefined;
}
