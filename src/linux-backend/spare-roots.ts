/**
 * Writable roots made one container ahead: a directory (upper, work, merged) under linux/spares with
 * the image's overlay already mounted in the namespace helper, so the next container of the same image
 * starts without waiting for a mount (the helper mounts while the current container runs), from the
 * image's second container on (one `wasmbox run` makes no spare). Taking it
 * renames it to linux/containers/<id> (the mount, in the helper's namespace, moves along). At most one
 * per image; dropped when the helper that mounted it is gone, and removed at process exit.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { newContainerId } from '../runtime/ids.ts';
import type { NamespaceHelper } from './helper.ts';
import { overlayOptions } from './invocation.ts';
import { removeTree } from './materialise.ts';

export interface RootDirs {
  id: string;
  /** <home>/linux/containers/<id>, holding upper, work and merged. */
  dir: string;
}

/** A fresh container directory: owner-only, the upper world-readable (it becomes the container's /). */
export function makeRootDirs(home: string, id = newContainerId(64)): RootDirs {
  const dir = path.join(home, 'linux', 'containers', id);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const d of ['upper', 'work', 'merged']) fs.mkdirSync(path.join(dir, d), { mode: 0o700 });
  fs.chmodSync(path.join(dir, 'upper'), 0o755);
  // (the owner's pid: a later backend removes directories whose owner died)
  fs.writeFileSync(path.join(dir, 'owner'), String(process.pid));
  return { id, dir };
}

async function makeRootDirsAsync(dir: string): Promise<void> {
  await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
  await Promise.all(['upper', 'work', 'merged'].map((d) => fs.promises.mkdir(path.join(dir, d), { mode: 0o700 })));
  await fs.promises.chmod(path.join(dir, 'upper'), 0o755);
  await fs.promises.writeFile(path.join(dir, 'owner'), String(process.pid));
}

export function rootOverlayOptions(lower: string, dir: string): string {
  return overlayOptions({ root: { lower, writable: true, upper: path.join(dir, 'upper'), work: path.join(dir, 'work') } }, true);
}

interface Spare { helper: NamespaceHelper; root: RootDirs; mounted: Promise<boolean> }

export class SpareRoots {
  readonly #home: string;
  readonly #spares = new Map<string, Spare>();
  /** Images that ran once: a spare is made from their second container on (a single run needs none). */
  readonly #ranOnce = new Set<string>();
  readonly #onExit = (): void => {
    for (const s of this.#spares.values()) removeTree(s.root.dir);
    this.#spares.clear();
  };

  constructor(home: string) {
    this.#home = home;
  }

  /** The spare root of this image in this helper's namespace; resolves undefined when there is none or its mount failed. */
  async take(helper: NamespaceHelper, lower: string): Promise<RootDirs | undefined> {
    const spare = this.#spares.get(lower);
    if (!spare) return undefined;
    this.#spares.delete(lower);
    if (this.#spares.size === 0) process.off('exit', this.#onExit);
    if (spare.helper !== helper || !helper.alive || !(await spare.mounted)) {
      removeTree(spare.root.dir);
      return undefined;
    }
    const dir = path.join(this.#home, 'linux', 'containers', spare.root.id);
    try {
      fs.renameSync(spare.root.dir, dir);
    } catch {
      await helper.unmount(path.join(spare.root.dir, 'merged')).catch(() => {});
      removeTree(spare.root.dir);
      return undefined;
    }
    return { id: spare.root.id, dir };
  }

  /**
   * Mounts the next root of this image in the background, unless one is there already or the image
   * ran no container before this one. Nothing here
   * blocks: the directories are made on libuv's thread pool, then the helper mounts.
   */
  prepare(helper: NamespaceHelper, lower: string): void {
    if (this.#spares.has(lower) || !helper.alive) return;
    if (!this.#ranOnce.has(lower)) {
      this.#ranOnce.add(lower);
      return;
    }
    const id = newContainerId(64);
    const root = { id, dir: path.join(this.#home, 'linux', 'spares', id) };
    const mounted = makeRootDirsAsync(root.dir)
      .then(() => helper.mount(rootOverlayOptions(lower, root.dir), path.join(root.dir, 'merged')))
      .then(() => true, () => {
        removeTree(root.dir);
        return false;
      });
    if (this.#spares.size === 0) process.on('exit', this.#onExit);
    this.#spares.set(lower, { helper, root, mounted });
  }
}
