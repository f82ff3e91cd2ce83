import { open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';

import { SupervisorError } from '../errors.js';

/** The lock file's name inside a data directory. */
export const LOCK_FILE = 'supervisor.lock';

/** A held directory lock; release it exactly once, when the store closes. */
export interface DirLock {
  readonly path: string;
  release(): Promise<void>;
}

/**
 * Takes the lock file of a data directory: created exclusively, holding our pid. A lock left by
 * a process that is gone is stale and taken over; one whose process is alive (this one
 * included) is refused with STORE_LOCKED naming the directory and the owner's pid.
 */
export async function acquireDirLock(dir: string): Promise<DirLock> {
  const path = join(dir, LOCK_FILE);

  // Two rounds: the second runs after a stale lock was moved aside.
  for (let round = 0; round < 2; round++) {
    if (await createExclusive(path)) return heldLock(path);

    const owner = await readOwner(path);
    if (owner === undefined) continue;

    if (owner !== null && isAlive(owner)) throw lockedError(dir, owner);

    await takeOver(dir, path, owner);
  }

  throw lockedError(dir, (await readOwner(path)) ?? null);
}

async function createExclusive(path: string): Promise<boolean> {
  try {
    const handle = await open(path, 'wx');
    try {
      await handle.writeFile(`${process.pid}\n`);
    } finally {
      await handle.close();
    }
    return true;
  } catch (err) {
    if (errorCode(err) === 'EEXIST') return false;
    throw err;
  }
}

/** The pid in a lock file: `null` when unreadable, `undefined` when the file vanished. */
async function readOwner(path: string): Promise<number | null | undefined> {
  try {
    const pid = Number.parseInt((await readFile(path, 'utf8')).trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else; it still holds the lock.
    return errorCode(err) === 'EPERM';
  }
}

/**
 * Moves a stale lock aside and checks that what was moved is the stale lock we judged: if
 * another process replaced it in between, its fresh lock is put back and we refuse.
 */
async function takeOver(dir: string, path: string, stalePid: number | null): Promise<void> {
  const aside = `${path}.stale-${process.pid}`;
  try {
    await rename(path, aside);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return;
    throw err;
  }

  const moved = await readOwner(aside);
  if (moved === stalePid || moved === undefined) {
    await unlink(aside).catch(() => undefined);
    return;
  }

  await rename(aside, path).catch(() => undefined);
  throw lockedError(dir, moved);
}

function heldLock(path: string): DirLock {
  let released = false;
  return {
    path,
    async release(): Promise<void> {
      if (released) return;

      released = true;
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
