import { SandboxError } from '../../errors.ts';
import {
  createExclusive,
  currentPid,
  processAlive,
  readFileIfExists,
  removePath,
  renamePath,
  sleep,
  statPath,
  uniqueSuffix,
} from '#host/files';

export interface LockOptions {
  /** Give up after this long (TIMEOUT). */
  timeoutMs?: number;
  /** A lock older than this is stale even when its process seems alive (pid reuse, another host). */
  staleMs?: number;
}

/**
 * An exclusive lock file (O_EXCL) holding `pid time`. A lock whose process is gone, or that is older than
 * `staleMs`, is broken: renamed away first, so two waiters cannot both break and then share it.
 */
export async function withLock<T>(lockPath: string, fn: () => Promise<T>, o: LockOptions = {}): Promise<T> {
  const timeoutMs = o.timeoutMs ?? 60_000;
  const staleMs = o.staleMs ?? 120_000;
  const deadline = Date.now() + timeoutMs;
  const token = `${currentPid()} ${Date.now()} ${uniqueSuffix()}\n`;
  let wait = 2;
  for (;;) {
    if (await createExclusive(lockPath, token)) break;
    await breakIfStale(lockPath, staleMs);
    if (Date.now() > deadline) {
      throw new SandboxError('TIMEOUT', `the image store is locked by another process (${lockPath}); try again`, {
        data: { lockPath },
      });
    }
    await sleep(wait);
    wait = Math.min(wait * 2, 50);
  }
  try {
    return await fn();
  } finally {
    // Only remove the lock if it is still ours (nobody broke it as stale meanwhile).
    const now = await readFileIfExists(lockPath).catch(() => undefined);
    if (now && new TextDecoder().decode(now) === token) await removePath(lockPath).catch(() => {});
  }
}

async function breakIfStale(lockPath: string, staleMs: number): Promise<void> {
  const content = await readFileIfExists(lockPath).catch(() => undefined);
  if (content === undefined) return;
  const text = new TextDecoder().decode(content);
  const [pidText, timeText] = text.split(' ');
  const pid = Number(pidText);
  const time = Number(timeText);
  const info = await statPath(lockPath).catch(() => undefined);
  // A half-written lock (no content yet) is judged by its mtime only.
  const age = Date.now() - (Number.isFinite(time) && time > 0 ? time : (info?.mtimeMs ?? Date.now()));
  const dead = text.length > 0 && !processAlive(pid);
  if (!dead && age < staleMs) return;
  const aside = `${lockPath}.stale-${uniqueSuffix()}`;
  try {
    await renamePath(lockPath, aside);
  } catch {
    return; // someone else broke it first
  }
  const moved = await readFileIfExists(aside).catch(() => undefined);
  if (moved && new TextDecoder().decode(moved) !== text) {
    // We moved a fresh lock that replaced the stale one between our read and rename: put it back if we can.
    if (!(await createExclusive(lockPath, new TextDecoder().decode(moved)).catch(() => false))) {
      // The slot was taken again; the owner of the moved lock will notice its lock is gone on release.
    }
  }
  await removePath(aside).catch(() => {});
}
