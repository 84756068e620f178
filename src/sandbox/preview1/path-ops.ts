import { PathCache, resolvePath, type Resolved, type ResolveOptions } from '../../fs/resolve.ts';
import type { Stat, Vfs } from '../../fs/vfs.ts';
import { WasiErrno, WasiError } from '../errno.ts';
import {
  FDFLAGS_ALL, Limits, LOOKUP_SYMLINK_FOLLOW, Oflags, OFLAGS_ALL, Rights,
  RIGHTS_DIR_BASE, RIGHTS_FILE_BASE,
} from './constants.ts';
import { filetypeOf, writeFilestat, type Context } from './context.ts';
import type { FdEntry } from './fd-table.ts';
import { knownRights, need, needWritable } from './rights.ts';
import { timesFrom } from './times.ts';

type DirEntryFd = FdEntry & { vfs: Vfs<unknown> };

const FILE_MODE = 0o644;
const DIR_MODE = 0o755;

/**
 * Resolves a guest path below a directory descriptor with cap-std semantics: `..` above the
 * descriptor's directory, absolute paths and absolute symlink targets are ENOTCAPABLE.
 */
function resolveAt(ctx: Context, dir: DirEntryFd, pathPtr: number, pathLen: number, follow: boolean): Resolved<unknown> {
  const opts = optionsOf(dir, follow);
  const cache = cacheOf(dir);
  // The directory part as last time: only the name is decoded (the whole path is not made a string).
  const name = ctx.mem.nameAfter(pathPtr, pathLen, cache.asciiPrefix, Limits.maxPathBytes);
  if (name !== undefined) {
    const hit = cache.resolveName(dir.vfs, dir.handle, name, opts);
    if (hit !== undefined) return hit;
  }
  const path = ctx.mem.string(pathPtr, pathLen, Limits.maxPathBytes);
  return resolvePath(dir.vfs, dir.handle, path, opts, cache);
}

/** The descriptor's own cache of its last directory look-up (see PathCache). */
function cacheOf(dir: DirEntryFd): PathCache<unknown> {
  return (dir.pathCache ??= new PathCache<unknown>());
}

const CLAMP_FOLLOW: ResolveOptions = Object.freeze({ followFinal: true, escape: 'clamp' });
const CLAMP_NOFOLLOW: ResolveOptions = Object.freeze({ followFinal: false, escape: 'clamp' });
const ERROR_FOLLOW: ResolveOptions = Object.freeze({ followFinal: true, escape: 'error' });
const ERROR_NOFOLLOW: ResolveOptions = Object.freeze({ followFinal: false, escape: 'error' });

/** Chroot semantics only from the top of a container root; cap-std semantics everywhere else. */
function optionsOf(dir: DirEntryFd, follow: boolean): ResolveOptions {
  if (dir.containerTop === true) return follow ? CLAMP_FOLLOW : CLAMP_NOFOLLOW;
  return follow ? ERROR_FOLLOW : ERROR_NOFOLLOW;
}

/**
 * Resolves the entry a path names itself (unlink, rmdir, rename, create): the last component is not
 * followed even with a trailing slash (so `rmdir link/` never removes the link's target); the slash
 * is reported, and callers require a directory then.
 */
function resolveEntryAt(ctx: Context, dir: DirEntryFd, pathPtr: number, pathLen: number, slashNeedsDir = true): Resolved<unknown> {
  // No trailing slash to strip when the bytes are the cached directory part and a plain name.
  const cache = cacheOf(dir);
  const name = ctx.mem.nameAfter(pathPtr, pathLen, cache.asciiPrefix, Limits.maxPathBytes);
  if (name !== undefined) {
    const hit = cache.resolveName(dir.vfs, dir.handle, name, optionsOf(dir, false));
    if (hit !== undefined) return hit;
  }
  const path = ctx.mem.string(pathPtr, pathLen, Limits.maxPathBytes);
  let end = path.length;
  while (end > 1 && path.charCodeAt(end - 1) === 0x2f) end--;
  const r = resolvePath(dir.vfs, dir.handle, end === path.length ? path : path.slice(0, end), optionsOf(dir, false), cacheOf(dir));
  if (end === path.length) return r;
  if (slashNeedsDir && r.node !== undefined && dir.vfs.kind(r.node) !== 'dir') throw new WasiError(WasiErrno.NOTDIR, `${path}: not a directory`);
  return { ...r, trailingSlash: true };
}

function sameNode(a: Stat, b: Stat): boolean {
  return a.ino === b.ino && a.dev === b.dev;
}

/** Two descriptors must reach the same filesystem for link and rename (EXDEV otherwise). */
function sameVfs(a: DirEntryFd, b: DirEntryFd): void {
  if (a.vfs !== b.vfs) throw new WasiError(WasiErrno.XDEV, 'across filesystems');
}

export function pathImports(ctx: Context) {
  const mem = ctx.mem;
  return {
    path_open(
      fd: number, dirflags: number, pathPtr: number, pathLen: number, oflags: number,
      base: bigint, inheriting: bigint, fdflags: number, fdPtr: number,
    ): number {
      const dir = ctx.dir(fd);
      need(dir, Rights.PATH_OPEN);
      const of = oflags & 0xffff;
      const ff = fdflags & 0xffff;
      if ((of & ~OFLAGS_ALL) !== 0 || (ff & ~FDFLAGS_ALL) !== 0) throw new WasiError(WasiErrno.INVAL);
      mem.check(fdPtr, 4);
      // A descriptor opened through `dir` gets at most what `dir` may hand down (rights asked for
      // beyond that are left out, as wasmtime does; using them later is ENOTCAPABLE).
      const wantBase = knownRights(base) & dir.rightsInheriting;
      const wantInheriting = knownRights(inheriting) & dir.rightsInheriting;
      if (of & Oflags.CREAT) need(dir, Rights.PATH_CREATE_FILE);
      if (of & Oflags.TRUNC) need(dir, Rights.PATH_FILESTAT_SET_SIZE);
      if ((of & Oflags.CREAT) && (of & Oflags.DIRECTORY)) throw new WasiError(WasiErrno.INVAL, 'O_CREAT with O_DIRECTORY');
      const readOnly = dir.readOnly || dir.vfs.readOnly;
      if (readOnly && ((of & Oflags.TRUNC) || (wantBase & Rights.FD_WRITE))) throw new WasiError(WasiErrno.ROFS);

      const vfs = dir.vfs;
      const r = resolveAt(ctx, dir, pathPtr, pathLen, (dirflags & LOOKUP_SYMLINK_FOLLOW) !== 0);
      let node = r.node;
      let created = false;
      if (node === undefined) {
        if (!(of & Oflags.CREAT)) throw new WasiError(WasiErrno.NOENT);
        if (r.trailingSlash) throw new WasiError(WasiErrno.ISDIR, 'O_CREAT of a name ending in /');
        if (readOnly) throw new WasiError(WasiErrno.ROFS);
        node = vfs.createFile(r.parent, r.name, FILE_MODE);
        created = true;
      } else if ((of & Oflags.CREAT) && (of & Oflags.EXCL)) {
        throw new WasiError(WasiErrno.EXIST);
      }
      const kind = vfs.kind(node);
      // O_NOFOLLOW: a symlink in the last component is not opened.
      if (kind === 'symlink') throw new WasiError(WasiErrno.LOOP, 'symlink with O_NOFOLLOW');
      const isDir = kind === 'dir';
      if ((of & Oflags.DIRECTORY) && !isDir) throw new WasiError(WasiErrno.NOTDIR);
      if (isDir && ((wantBase & Rights.FD_WRITE) || (of & Oflags.TRUNC))) throw new WasiError(WasiErrno.ISDIR);
      if ((of & Oflags.TRUNC) && !created && vfs.stat(node).size !== 0) vfs.setSize(node, 0);

      const entry: FdEntry = {
        filetype: filetypeOf(kind), stdio: undefined, vfs, handle: node,
        parent: isDir ? r.parent : undefined,
        rightsBase: wantBase & (isDir ? RIGHTS_DIR_BASE : RIGHTS_FILE_BASE),
        rightsInheriting: isDir ? wantInheriting : 0,
        fdflags: ff, position: 0, readOnly, preopenName: undefined, containerRoot: dir.containerRoot,
        containerTop: dir.containerRoot === true && isDir && sameNode(vfs.stat(node), vfs.stat(vfs.root())),
        listing: undefined, pathCache: undefined,
      };
      mem.setU32(fdPtr, ctx.fds.add(entry));
      return 0;
    },

    path_create_directory(fd: number, pathPtr: number, pathLen: number): number {
      const dir = ctx.dir(fd);
      need(dir, Rights.PATH_CREATE_DIRECTORY);
      needWritable(dir);
      const r = resolveEntryAt(ctx, dir, pathPtr, pathLen, false);
      if (r.node !== undefined) throw new WasiError(WasiErrno.EXIST);
      dir.vfs.mkdir(r.parent, r.name, DIR_MODE);
      return 0;
    },

    path_filestat_get(fd: number, flags: number, pathPtr: number, pathLen: number, statPtr: number): number {
      const dir = ctx.dir(fd);
      need(dir, Rights.PATH_FILESTAT_GET);
      mem.check(statPtr, 64);
      const r = resolveAt(ctx, dir, pathPtr, pathLen, (flags & LOOKUP_SYMLINK_FOLLOW) !== 0);
      if (r.node === undefined) throw new WasiError(WasiErrno.NOENT);
      writeFilestat(mem, statPtr, dir.vfs.stat(r.node));
      return 0;
    },

    path_filestat_set_times(
      fd: number, flags: number, pathPtr: number, pathLen: number, atim: bigint, mtim: bigint, fst: number,
    ): number {
      const dir = ctx.dir(fd);
      need(dir, Rights.PATH_FILESTAT_SET_TIMES);
      const [a, m] = timesFrom(ctx, atim, mtim, fst);
      needWritable(dir);
      const r = resolveAt(ctx, dir, pathPtr, pathLen, (flags & LOOKUP_SYMLINK_FOLLOW) !== 0);
      if (r.node === undefined) throw new WasiError(WasiErrno.NOENT);
      dir.vfs.setTimes(r.node, a, m);
      return 0;
    },

    path_link(
      oldFd: number, oldFlags: number, oldPtr: number, oldLen: number, newFd: number, newPtr: number, newLen: number,
    ): number {
      const from = ctx.dir(oldFd);
      const to = ctx.dir(newFd);
      need(from, Rights.PATH_LINK_SOURCE);
      need(to, Rights.PATH_LINK_TARGET);
      sameVfs(from, to);
      needWritable(to);
      const src = resolveAt(ctx, from, oldPtr, oldLen, (oldFlags & LOOKUP_SYMLINK_FOLLOW) !== 0);
      if (src.node === undefined) throw new WasiError(WasiErrno.NOENT);
      if (from.vfs.kind(src.node) === 'dir') throw new WasiError(WasiErrno.PERM, 'hard link to a directory');
      const dst = resolveEntryAt(ctx, to, newPtr, newLen, false);
      if (dst.node !== undefined) throw new WasiError(WasiErrno.EXIST);
      if (dst.trailingSlash) throw new WasiError(WasiErrno.NOENT);
      to.vfs.link(dst.parent, dst.name, src.node);
      return 0;
    },

    path_readlink(fd: number, pathPtr: number, pathLen: number, buf: number, bufLen: number, usedPtr: number): number {
      const dir = ctx.dir(fd);
      need(dir, Rights.PATH_READLINK);
      const start = mem.check(buf, bufLen);
      mem.check(usedPtr, 4);
      const r = resolveAt(ctx, dir, pathPtr, pathLen, false);
      if (r.node === undefined) throw new WasiError(WasiErrno.NOENT);
      if (dir.vfs.kind(r.node) !== 'symlink') throw new WasiError(WasiErrno.INVAL, 'not a symlink');
      const target = new TextEncoder().encode(dir.vfs.readlink(r.node));
      const n = Math.min(target.length, bufLen >>> 0);
      mem.u8.set(target.subarray(0, n), start);
      mem.setU32(usedPtr, n);
      return 0;
    },

    path_remove_directory(fd: number, pathPtr: number, pathLen: number): number {
      const dir = ctx.dir(fd);
      need(dir, Rights.PATH_REMOVE_DIRECTORY);
      needWritable(dir);
      const r = resolveEntryAt(ctx, dir, pathPtr, pathLen);
      if (r.name === '.') throw new WasiError(WasiErrno.INVAL, 'cannot remove "."');
      if (r.node === undefined) throw new WasiError(WasiErrno.NOENT);
      if (dir.vfs.kind(r.node) !== 'dir') throw new WasiError(WasiErrno.NOTDIR);
      dir.vfs.rmdir(r.parent, r.name);
      return 0;
    },

    path_rename(fd: number, oldPtr: number, oldLen: number, newFd: number, newPtr: number, newLen: number): number {
      const from = ctx.dir(fd);
      const to = ctx.dir(newFd);
      need(from, Rights.PATH_RENAME_SOURCE);
      need(to, Rights.PATH_RENAME_TARGET);
      sameVfs(from, to);
      needWritable(from);
      needWritable(to);
      const src = resolveEntryAt(ctx, from, oldPtr, oldLen);
      if (src.name === '.') throw new WasiError(WasiErrno.BUSY, 'cannot rename "."');
      if (src.node === undefined) throw new WasiError(WasiErrno.NOENT);
      const dst = resolveEntryAt(ctx, to, newPtr, newLen);
      if (dst.name === '.') throw new WasiError(WasiErrno.BUSY, 'cannot rename onto "."');
      const srcKind = from.vfs.kind(src.node);
      if (srcKind !== 'dir' && (src.trailingSlash || dst.trailingSlash)) throw new WasiError(WasiErrno.NOTDIR);
      if (dst.node !== undefined) {
        if (dst.node === src.node) return 0;
        const dstKind = to.vfs.kind(dst.node);
        if (srcKind !== 'dir' && dstKind === 'dir') throw new WasiError(WasiErrno.ISDIR);
        if (srcKind === 'dir' && dstKind !== 'dir') throw new WasiError(WasiErrno.NOTDIR);
      }
      from.vfs.rename(src.parent, src.name, dst.parent, dst.name);
      return 0;
    },

    path_symlink(oldPtr: number, oldLen: number, fd: number, newPtr: number, newLen: number): number {
      const dir = ctx.dir(fd);
      need(dir, Rights.PATH_SYMLINK);
      const target = mem.string(oldPtr, oldLen, Limits.maxPathBytes);
      needWritable(dir);
      if (target.length === 0) throw new WasiError(WasiErrno.NOENT, 'empty symlink target');
      if (target.includes('\0')) throw new WasiError(WasiErrno.INVAL);
      // As cap-std: a symlink that would point out of the sandbox is never created (inside a
      // container root it points into the container, where it is resolved).
      if (target.startsWith('/') && !dir.containerRoot) throw new WasiError(WasiErrno.NOTCAPABLE, 'absolute symlink target');
      const r = resolveEntryAt(ctx, dir, newPtr, newLen, false);
      if (r.node !== undefined) throw new WasiError(WasiErrno.EXIST);
      if (r.trailingSlash) throw new WasiError(WasiErrno.NOENT);
      dir.vfs.symlink(r.parent, r.name, target);
      return 0;
    },

    path_unlink_file(fd: number, pathPtr: number, pathLen: number): number {
      const dir = ctx.dir(fd);
      need(dir, Rights.PATH_UNLINK_FILE);
      needWritable(dir);
      const r = resolveEntryAt(ctx, dir, pathPtr, pathLen);
      if (r.node === undefined) throw new WasiError(WasiErrno.NOENT);
      if (r.name === '.' || dir.vfs.kind(r.node) === 'dir') throw new WasiError(WasiErrno.ISDIR);
      dir.vfs.unlink(r.parent, r.name);
      return 0;
    },
  };
}

