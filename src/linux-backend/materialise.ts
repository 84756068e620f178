/**
 * Writes an image's merged layer tree (the fs engineers' in-memory LayerTree: whiteouts and opaque
 * directories already applied, paths already checked) onto disk once per chainID, as the read-only
 * lower of every container of that image. The tree is the source of truth: each entry is created
 * fresh under a directory this code made (O_EXCL files, no pre-existing names), so nothing is ever
 * written through a symlink. Written to a temporary directory, then renamed into place atomically.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { SandboxError } from '../errors.ts';
import type { DirInode, Inode } from '../fs/inode.ts';
import type { Digest } from '../loader/digest.ts';
import { shellQuote } from './invocation.ts';

/** Mount points bwrap needs in the root (a read-only root cannot get them later). */
const MOUNT_POINTS: Array<[string, number]> = [['proc', 0o555], ['dev', 0o755], ['sys', 0o555], ['tmp', 0o1777]];

export interface MaterialiseStats { files: number; dirs: number; symlinks: number; hardLinks: number; skipped: string[] }

/** `layers`: the folder under <home>/linux (another one per subordinate id map: their owners differ on the host). */
export function layerDir(home: string, chainId: Digest, layers = 'layers'): string {
  return path.join(home, 'linux', layers, chainId.replace(/^sha256:/, ''));
}

/**
 * What an unprivileged writer could not set on the host and a pass inside the user namespace that maps
 * the image's ids (see applyOwnersInUserNs) sets afterwards; paths are relative to the tree's root.
 * `chmod`: modes chown clears (setuid, setgid) and directory modes the writer widened to keep rwx.
 */
export interface DeferredOwners { chown: Array<{ path: string; uid: number; gid: number }>; chmod: Array<{ path: string; mode: number }> }

export interface MaterialiseOptions {
  /** The folder of layerDir. */
  layers?: string;
  /** Not root: sets the deferred owners on the written tree (before it is renamed into place). */
  applyOwners?(dir: string, owners: DeferredOwners): Promise<void>;
  /** Removes a half-written tree (default removeTree). */
  remove?(dir: string): void;
}

/** The directory of this chainID, writing it from `tree()` first if it is not there yet. */
export async function ensureMaterialised(
  home: string,
  chainId: Digest,
  tree: () => Promise<DirInode>,
  o: MaterialiseOptions = {},
): Promise<{ dir: string; created: boolean; stats?: MaterialiseStats }> {
  const dir = layerDir(home, chainId, o.layers);
  if (fs.existsSync(dir)) return { dir, created: false };
  const root = await tree();
  const parent = path.dirname(dir);
  fs.mkdirSync(parent, { recursive: true, mode: 0o700 });
  const tmp = path.join(parent, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  const remove = o.remove ?? removeTree;
  try {
    const deferred: DeferredOwners | undefined = o.applyOwners ? { chown: [], chmod: [] } : undefined;
    const stats = writeTree(root, tmp, deferred);
    if (deferred) await o.applyOwners!(tmp, deferred);
    try {
      fs.renameSync(tmp, dir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw e;
      remove(tmp); // another process materialised the same chainID first
      return { dir, created: false };
    }
    return { dir, created: true, stats };
  } catch (e) {
    remove(tmp);
    if (e instanceof SandboxError) throw e;
    throw new SandboxError('INTERNAL', `materialising ${chainId} failed: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * Writes `root` as a new directory `dest` (which must not exist). Not root, owners are the caller's;
 * `deferred` collects the owners and modes to set later in a user namespace.
 */
export function writeTree(root: DirInode, dest: string, deferred?: DeferredOwners): MaterialiseStats {
  const asRoot = process.getuid?.() === 0;
  const defer = (p: string, node: Inode): void => {
    if (!deferred || asRoot) return;
    const rel = `./${path.relative(dest, p)}`;
    if (node.uid !== 0 || node.gid !== 0) {
      deferred.chown.push({ path: rel, uid: node.uid, gid: node.gid });
      if (node.kind !== 'symlink' && node.kind !== 'dir' && (node.mode & 0o6000)) deferred.chmod.push({ path: rel, mode: node.mode & 0o7777 });
    }
    if (node.kind === 'dir' && (node.mode & 0o700) !== 0o700) deferred.chmod.push({ path: rel, mode: node.mode & 0o7777 });
  };
  const stats: MaterialiseStats = { files: 0, dirs: 0, symlinks: 0, hardLinks: 0, skipped: [] };
  const firstPath = new Map<Inode, string>();
  // Directory metadata is applied after the children: a 0555 directory must still be filled, and
  // creating children changes the directory's mtime.
  const dirsToFinish: Array<[string, DirInode]> = [];

  const walk = (dir: DirInode, at: string, rel: string): void => {
    fs.mkdirSync(at, { mode: 0o700 });
    stats.dirs++;
    dirsToFinish.push([at, dir]);
    for (const [name, node] of dir.entries) {
      if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
        throw new SandboxError('UNSAFE_LAYER', `unsafe name ${JSON.stringify(name)} in ${rel || '/'}`);
      }
      const p = path.join(at, name);
      const relPath = `${rel}/${name}`;
      if (node.kind !== 'dir') {
        const earlier = firstPath.get(node);
        if (earlier !== undefined) {
          fs.linkSync(earlier, p);
          stats.hardLinks++;
          continue;
        }
      }
      switch (node.kind) {
        case 'dir':
          walk(node, p, relPath);
          continue;
        case 'file': {
          const fd = fs.openSync(p, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
          try {
            const data = node.data.subarray(0, Math.min(node.data.length, node.size));
            let off = 0;
            while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off);
            if (node.size > data.length) fs.ftruncateSync(fd, node.size);
            if (asRoot) fs.fchownSync(fd, node.uid, node.gid);
            fs.fchmodSync(fd, node.mode); // after chown, which clears setuid/setgid
            fs.futimesSync(fd, nsToSeconds(node.atimeNs), nsToSeconds(node.mtimeNs));
          } finally {
            fs.closeSync(fd);
          }
          stats.files++;
          break;
        }
        case 'symlink':
          fs.symlinkSync(node.target, p);
          if (asRoot) fs.lchownSync(p, node.uid, node.gid);
          fs.lutimesSync(p, nsToSeconds(node.atimeNs), nsToSeconds(node.mtimeNs));
          stats.symlinks++;
          break;
        case 'fifo':
        case 'chardev':
        case 'blockdev': {
          if (node.kind !== 'fifo' && !asRoot) {
            stats.skipped.push(relPath); // device nodes need CAP_MKNOD; /dev is bwrap's own anyway
            continue;
          }
          const rdev = 'rdev' in node ? node.rdev : 0;
          const args = node.kind === 'fifo'
            ? [p, 'p']
            : [p, node.kind === 'chardev' ? 'c' : 'b', String(rdevMajor(rdev)), String(rdevMinor(rdev))];
          try {
            execFileSync('mknod', ['-m', (node.mode & 0o7777).toString(8), ...args], { stdio: 'ignore' });
          } catch {
            stats.skipped.push(relPath);
            continue;
          }
          if (asRoot) fs.lchownSync(p, node.uid, node.gid);
          fs.chmodSync(p, node.mode);
          fs.utimesSync(p, nsToSeconds(node.atimeNs), nsToSeconds(node.mtimeNs));
          break;
        }
        case 'socket':
          stats.skipped.push(relPath);
          continue;
      }
      defer(p, node);
      firstPath.set(node, p);
    }
    if (rel === '') {
      for (const [name, mode] of MOUNT_POINTS) {
        if (!dir.entries.has(name)) {
          fs.mkdirSync(path.join(at, name), { mode: 0o700 });
          fs.chmodSync(path.join(at, name), mode);
        }
      }
    }
  };
  walk(root, dest, '');
  for (let i = dirsToFinish.length - 1; i >= 0; i--) {
    const [p, d] = dirsToFinish[i]!;
    if (asRoot) fs.lchownSync(p, d.uid, d.gid);
    // The owner keeps rwx on the cache copy only when not root: otherwise the cache could not be removed.
    fs.chmodSync(p, asRoot ? d.mode : d.mode | 0o700);
    fs.utimesSync(p, nsToSeconds(d.atimeNs), nsToSeconds(d.mtimeNs));
    defer(p, d);
  }
  return stats;
}

/**
 * Sets deferred owners and modes on the tree `dir` as root of the user namespace `userNs` (the namespace
 * helper's, which maps the caller's /etc/subuid ranges): one process, `xargs -0 chown -h` per owner and
 * `xargs -0 chmod` per mode, over NUL-separated lists of paths relative to `dir`. Every path was made
 * by writeTree under `dir` (no symlink on the way; chown -h does not follow a final one, chmod is
 * given no symlink). Ids the namespace does not map are refused before anything runs.
 */
export async function applyOwnersInUserNs(
  o: { busybox: string; userNs: string; maxUid: number; maxGid: number; what: string },
  dir: string,
  owners: DeferredOwners,
): Promise<void> {
  if (!owners.chown.length && !owners.chmod.length) return;
  const badUid = owners.chown.find((c) => c.uid > o.maxUid);
  const badGid = owners.chown.find((c) => c.gid > o.maxGid);
  if (badUid || badGid) {
    const [kind, id, max, file] = badUid ? ['uid', badUid.uid, o.maxUid, 'subuid'] : ['gid', badGid!.gid, o.maxGid, 'subgid'];
    throw new SandboxError('BACKEND_UNAVAILABLE',
      `the image has a file of ${kind} ${id} (${(badUid ?? badGid)!.path.slice(1)}), beyond the ${max} ${kind}s that /etc/${file} gives ${o.what}: ` +
        `give it a larger range (${kind}s 1..${id} at least)`);
  }
  const lists = `${dir}.owners`;
  fs.mkdirSync(lists, { mode: 0o700 });
  try {
    const bb = shellQuote(o.busybox);
    const steps: string[] = [`cd ${shellQuote(dir)}`];
    const group = <T>(items: T[], key: (t: T) => string, cmd: (k: string) => string, item: (t: T) => string) => {
      const groups = new Map<string, string[]>();
      for (const t of items) {
        const k = key(t);
        let g = groups.get(k);
        if (!g) groups.set(k, (g = []));
        g.push(item(t));
      }
      for (const [k, paths] of groups) {
        const list = path.join(lists, String(steps.length));
        fs.writeFileSync(list, paths.join('\0') + '\0');
        steps.push(`${bb} xargs -0 -r ${cmd(k)} < ${shellQuote(list)}`);
      }
    };
    group(owners.chown, (c) => `${c.uid}:${c.gid}`, (k) => `${bb} chown -h ${k}`, (c) => c.path);
    group(owners.chmod, (c) => c.mode.toString(8), (k) => `${bb} chmod ${k}`, (c) => c.path);
    await new Promise<void>((resolve, reject) => {
      execFile(o.busybox, ['nsenter', `-U${o.userNs}`, '--preserve-credentials', '--', o.busybox, 'sh', '-c', steps.join(' && ')],
        { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, maxBuffer: 1 << 20 }, (err, _out, stderr) => {
          if (err) reject(new SandboxError('BACKEND_UNAVAILABLE', `cannot set the image's owners in the user namespace: ${String(stderr).trim() || err.message}`, { cause: err }));
          else resolve();
        });
    });
  } finally {
    removeTree(lists);
  }
}

export function removeTree(p: string): void {
  try {
    fs.rmSync(p, { recursive: true, force: true });
  } catch {
    // best effort: read-only directories of a half-written tree
    try {
      execFileSync('chmod', ['-R', 'u+rwx', p], { stdio: 'ignore' });
      fs.rmSync(p, { recursive: true, force: true });
    } catch { /* left for the next cleanup */ }
  }
}

const nsToSeconds = (ns: bigint): number => Number(ns / 1000n) / 1e6;
const rdevMajor = (rdev: number): number => (rdev >>> 8) & 0xfff;
const rdevMinor = (rdev: number): number => (rdev & 0xff) | ((rdev >>> 12) & 0xfff00);
