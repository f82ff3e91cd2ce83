import { open, readFile, rename, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import { SupervisorError } from '../errors.js';
import { ownStartedAt, pidExists, procStat, sameStart } from '../process-identity.js';

/** The lock file's name inside a data directory. */
export const LOCK_FILE = 'supervisor.lock';

/** A held directory lock; release it exactly once, when the store closes. */
export interface DirLock {
  readonly path: string;
  release(): Promise<void>;
}

/** The lock files this process took in this life (and has not released). */
const heldHere = new Set<string>();

/** Who a lock file names: a pid and, since files carry it, that process's start time. */
interface Owner {
  pid: number;
  /** Epoch ms; absent in files written before start times were recorded. */
  startedAt?: number;
}

/**
 * Takes the lock file of a data directory: created exclusively, holding our pid and start time
 * (`<pid> <epoch ms>`). A lock is live only while its process exists, is not a zombie, started
 * when the file says, and is not this process (unless this process took it in this life: a
 * pid 1 in a restarted container meets its own old lock). A live lock is refused with
 * STORE_LOCKED naming the directory and the owner's pid; any other is stale and taken over.
 */
export async function acquireDirLock(dir: string): Promise<DirLock> {
  const path = join(dir, LOCK_FILE);

  // Two rounds: the second runs after a stale lock was moved aside.
  for (let round = 0; round < 2; round++) {
    if (await createExclusive(path)) return heldLock(path);

    const owner = await readOwner(path);
    if (owner === undefined) continue;

    if (owner !== null && isLive(owner, path)) throw lockedError(dir, owner.pid);

    await takeOver(dir, path, owner);
  }

  const owner = await readOwner(path);
  throw lockedError(dir, owner?.pid ?? null);
}

async function createExclusive(path: string): Promise<boolean> {
  try {
    const handle = await open(path, 'wx');
    try {
      await handle.writeFile(`${process.pid} ${ownStartedAt()}\n`);
    } finally {
      await handle.close();
    }
    return true;
  } catch (err) {
    if (errorCode(err) === 'EEXIST') return false;
    throw err;
  }
}

/** The owner a lock file names: `null` when unreadable, `undefined` when the file vanished. */
async function readOwner(path: string): Promise<Owner | null | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return undefined;
    throw err;
  }

  const [pidText, startText] = text.trim().split(/\s+/);
  const pid = Number.parseInt(pidText ?? '', 10);
  if (!Number.isInteger(pid) || pid <= 0) return null;

  const startedAt = Number(startText);
  return startText !== undefined && Number.isFinite(startedAt) ? { pid, startedAt } : { pid };
}

function isLive(owner: Owner, path: string): boolean {
  if (owner.pid === process.pid) return heldHere.has(resolve(path));
  if (!pidExists(owner.pid)) return false;

  // Off Linux there is no start time or state to check: the pid existing is all we know.
  const stat = procStat(owner.pid);
  if (stat === null) return true;
  if (stat.state === 'Z' || stat.state === 'X') return false;

  return owner.startedAt === undefined || sameStart(stat.startedAt, owner.startedAt);
}

/**
 * Moves a stale lock aside and checks that what was moved is the stale lock we judged: if
 * another process replaced it in between, its fresh lock is put back and we refuse.
 */
async function takeOver(dir: string, path: string, stale: Owner | null): Promise<void> {
  const aside = `${path}.stale-${process.pid}`;
  try {
    await rename(path, aside);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return;
    throw err;
  }

  const moved = await readOwner(aside);
  if (moved === undefined || sameOwner(moved, stale)) {
    await unlink(aside).catch(() => undefined);
    return;
  }

  await rename(aside, path).catch(() => undefined);
  throw lockedError(dir, moved?.pid ?? null);
}

function sameOwner(a: Owner | null, b: Owner | null): boolean {
  if (a === null || b === null) return a === b;

  return a.pid === b.pid && a.startedAt === b.startedAt;
}

function heldLock(path: string): DirLock {
  heldHere.add(resolve(path));
  let released = false;
  return {
    path,
    async release(): Promise<void> {
      if (released) return;

      released = true;
      heldHere.delete(resolve(path));
      await unlink(path).catch((err: unknown) => {
        if (errorCode(err) !== 'ENOENT') throw err;
      });
    },
  };
}

function lockedError(dir: string, pid: number | null): SupervisorError {
  const owner = pid === null ? 'another process' : `process ${pid}`;
  return new SupervisorError(
    'STORE_LOCKED',
    `data directory ${dir} is in use by ${owner}; stop that supervisor or use another directory`,
    { dataDir: dir, pid },
  );
}

function errorCode(err: unknown): string | undefined {
  return err instanceof Error ? (err as NodeJS.ErrnoException).code : undefined;
}
