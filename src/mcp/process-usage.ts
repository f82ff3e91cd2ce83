import { readdirSync, readFileSync } from 'node:fs';

/** What one process group costs right now. */
export interface ProcessUsage {
  /** Resident memory of every live process in the group, summed (bytes). */
  rssBytes: number;
  /**
   * CPU time (ms, user plus system) of every live process in the group, including the
   * children each has already waited for.
   */
  cpuMs: number;
  /** How many live processes the group has. */
  processes: number;
}

/** The kernel's userspace clock tick: fixed at 100 Hz in the Linux ABI whatever CONFIG_HZ is. */
const TICKS_PER_SECOND = 100;

/**
 * The resource usage of each of `pgids`, read from /proc in one pass: every pid whose process
 * group is one of them counts, so grandchildren left by a wrapper (`npx`, `sh -c`) count too.
 * Returns an empty map off Linux (no /proc); a group with no live process has no entry.
 */
export function readGroupUsage(pgids: Iterable<number>): Map<number, ProcessUsage> {
  const wanted = new Set(pgids);
  const usage = new Map<number, ProcessUsage>();
  if (wanted.size === 0 || process.platform !== 'linux') return usage;

  for (const name of listProc()) {
    const stat = readStat(name);
    if (!stat || !wanted.has(stat.pgid)) continue;

    const rssBytes = readRssBytes(name);
    if (rssBytes === null) continue;

    const total = usage.get(stat.pgid) ?? { rssBytes: 0, cpuMs: 0, processes: 0 };
    total.rssBytes += rssBytes;
    total.cpuMs += stat.cpuMs;
    total.processes += 1;
    usage.set(stat.pgid, total);
  }

  return usage;
}

/** The usage of one process group, or null when it has no live process (or off Linux). */
export function readOneGroupUsage(pgid: number): ProcessUsage | null {
  return readGroupUsage([pgid]).get(pgid) ?? null;
}

function listProc(): string[] {
  try {
    return readdirSync('/proc').filter((name) => name.charCodeAt(0) <= 57);
  } catch {
    return [];
  }
}

function readStat(pid: string): { pgid: number; cpuMs: number } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    // The process ended while we looked.
    return null;
  }

  // The command name may hold spaces and parentheses: fields start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z') return null;

  const [utime, stime, cutime, cstime] = [11, 12, 13, 14].map((i) => Number(fields[i]));
  const ticks = (utime ?? 0) + (stime ?? 0) + (cutime ?? 0) + (cstime ?? 0);

  return { pgid: Number(fields[2]), cpuMs: (ticks * 1000) / TICKS_PER_SECOND };
}

function readRssBytes(pid: string): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);

    // Kernel threads have no VmRSS line: they hold no user memory.
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return null;
  }
}
