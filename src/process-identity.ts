/**
 * Who a pid is right now. A pid alone names nothing lasting: after a reboot, in a restarted
 * container, or on another host it belongs to some other process. Its start time (epoch ms)
 * tells the same process from a successor that reused the number.
 */
import { readFileSync } from 'node:fs';

/**
 * How far (ms) two readings of one process's start time may differ. The boot time the kernel
 * reports has whole-second precision, and a wall-clock step moves it.
 */
export const START_TOLERANCE_MS = 2_000;

/**
 * Clock ticks per second in /proc/<pid>/stat. `sysconf(_SC_CLK_TCK)` is not reachable from
 * Node; it is 100 on every Linux architecture Node supports (the kernel's USER_HZ).
 */
const CLK_TCK = 100;

/** A process as /proc shows it (Linux only). */
export interface ProcStat {
  /** One letter: R, S, D, Z (zombie), X (dead), ... */
  state: string;
  /** Its process group id. */
  pgrp: number;
  /** Epoch ms it started. */
  startedAt: number;
}

/**
 * Reads /proc/<pid>/stat: `null` when there is no such process, or off Linux (where nothing
 * here can say, and callers fall back to `kill(pid, 0)`).
 */
export function procStat(pid: number | string): ProcStat | null {
  if (process.platform !== 'linux') return null;

  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }

  // The command name may hold spaces and parentheses: fields start after the last ')', with
  // field 3 (state) first, so field n of proc(5) is at index n - 3.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[19]);
  const bootMs = bootTimeMs();
  return {
    state: fields[0] ?? '',
    pgrp: Number(fields[2]),
    startedAt: bootMs + (ticks * 1000) / CLK_TCK,
  };
}

/**
 * Whether a process with this pid exists now (zombies included). Off Linux, `kill(pid, 0)`
 * answers; EPERM means it exists but belongs to someone else.
 */
export function pidExists(pid: number): boolean {
  if (process.platform === 'linux') return procStat(pid) !== null;

  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err instanceof Error && (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * This process's own start time (epoch ms): from /proc on Linux, else from its uptime (which
 * is what other hosts' readings of it cannot be compared with anyway).
 */
export function ownStartedAt(): number {
  return procStat(process.pid)?.startedAt ?? Math.round(Date.now() - process.uptime() * 1000);
}

/** Whether two start times (epoch ms) name the same process. */
export function sameStart(a: number, b: number): boolean {
  return Math.abs(a - b) <= START_TOLERANCE_MS;
}

/**
 * How much later (ms) than its process's start a record of it may have been written: the
 * record is taken after the spawn returns, on an event loop that may lag.
 */
export const RECORD_LAG_MS = 10_000;

/**
 * Whether a process that started at `startedAt` (epoch ms, read from the kernel) is the one a
 * record written at `recordedAt` (epoch ms, wall clock just after its spawn) names.
 */
export function startedNear(startedAt: number, recordedAt: number): boolean {
  return (
    startedAt <= recordedAt + START_TOLERANCE_MS &&
    startedAt >= recordedAt - START_TOLERANCE_MS - RECORD_LAG_MS
  );
}

let bootMsRead: number | null = null;

/**
 * `btime` of /proc/stat in ms, read once per process (a wall-clock step moves it later; a
 * small step stays within START_TOLERANCE_MS).
 */
function bootTimeMs(): number {
  if (bootMsRead !== null) return bootMsRead;

  const match = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
  bootMsRead = Number(match?.[1] ?? 0) * 1000;
  return bootMsRead;
}
