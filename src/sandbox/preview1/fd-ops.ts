import type { Vfs } from '../../fs/vfs.ts';
import { WasiErrno, WasiError } from '../errno.ts';
import { ADVICE_MAX, Fdflags, FDFLAGS_ALL, Filetype, PREOPENTYPE_DIR, Rights, Whence } from './constants.ts';
import { filetypeOf, setU64Of, writeFilestat, type Context } from './context.ts';
import type { DirListing, FdEntry } from './fd-table.ts';
import { offsetOf, type Iovecs } from './io.ts';
import { need, needWritable, rightsOf } from './rights.ts';
import { timesFrom } from './times.ts';

const encoder = new TextEncoder();
const DIRENT_BYTES = 24;

type FileEntry = FdEntry & { vfs: Vfs<unknown> };

/** Seek-like operations on a stream are ESPIPE, as on a pipe. */
function seekable(e: FdEntry): FileEntry {
  if (e.stdio !== undefined || e.vfs === undefined) throw new WasiError(WasiErrno.SPIPE);
  return e as FileEntry;
}

function iovecsOf(ctx: Context, ptr: number, count: number): Iovecs {
  return ctx.iovecs.load(ctx.mem, ptr, count);
}

function readInto(ctx: Context, e: FdEntry, iovsPtr: number, iovsLen: number, position: number | undefined): number {
  const { ptrs, lens, total, count } = iovecsOf(ctx, iovsPtr, iovsLen);
  if (e.stdio !== undefined) {
    if (e.stdio !== 0) throw new WasiError(WasiErrno.BADF, 'stdout/stderr are not readable');
    if (total === 0) return 0;
    const chunk = ctx.opts.stdin.read(total);
    if (chunk === null || chunk.length === 0) return 0;
    const u8 = ctx.mem.u8;
    let off = 0;
    for (let i = 0; i < count && off < chunk.length; i++) {
      const n = Math.min(lens[i]!, chunk.length - off);
      u8.set(chunk.subarray(off, off + n), ptrs[i]!);
      off += n;
    }
    return off;
  }
  const f = e as FileEntry;
  let pos = position ?? f.position;
  let done = 0;
  for (let i = 0; i < count; i++) {
    const want = lens[i]!;
    if (want === 0) continue;
    const got = f.vfs.read(f.handle, ctx.mem.ioView(ptrs[i]!, want), pos);
    pos += got;
    done += got;
    if (got < want) break;
  }
  if (position === undefined) f.position = pos;
  return done;
}

function writeFrom(ctx: Context, e: FdEntry, iovsPtr: number, iovsLen: number, position: number | undefined): number {
  const { ptrs, lens, total, count } = iovecsOf(ctx, iovsPtr, iovsLen);
  if (e.stdio !== undefined) {
    if (e.stdio === 0) throw new WasiError(WasiErrno.BADF, 'stdin is not writable');
    if (total === 0) return 0;
    const u8 = ctx.mem.u8;
    let data: Uint8Array;
    if (count === 1) {
      data = u8.slice(ptrs[0]!, ptrs[0]! + total);
    } else {
      data = new Uint8Array(total);
      let off = 0;
      for (let i = 0; i < count; i++) {
        data.set(u8.subarray(ptrs[i]!, ptrs[i]! + lens[i]!), off);
        off += lens[i]!;
      }
    }
    if (e.stdio === 1) ctx.opts.stdout(data);
    else ctx.opts.stderr(data);
    return total;
  }
  const f = e as FileEntry;
  needWritable(f);
  let pos = position ?? (f.fdflags & Fdflags.APPEND ? f.vfs.stat(f.handle).size : f.position);
  let done = 0;
  for (let i = 0; i < count; i++) {
    const want = lens[i]!;
    if (want === 0) continue;
    const put = f.vfs.write(f.handle, ctx.mem.ioView(ptrs[i]!, want), pos);
    pos += put;
    done += put;
    if (put < want) break;
  }
  if (position === undefined) f.position = pos;
  return done;
}

/** '.', '..' and the directory's entries, in the Vfs's stable order. */
function listDir(e: FileEntry): DirListing {
  const names = ['.', '..'];
  const encoded: (Uint8Array | undefined)[] = [undefined, undefined];
  const inos = [e.vfs.stat(e.handle).ino, e.vfs.stat(e.parent).ino];
  const types: number[] = [Filetype.DIRECTORY, Filetype.DIRECTORY];
  for (const d of e.vfs.readdir(e.handle)) {
    names.push(d.name);
    encoded.push(isAscii(d.name) ? undefined : encoder.encode(d.name));
    inos.push(d.ino);
    types.push(filetypeOf(d.kind));
  }
  return { names, encoded, inos, types };
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return false;
  return true;
}

export function fdImports(ctx: Context) {
  const mem = ctx.mem;
  return {
    fd_read(fd: number, iovs: number, iovsLen: number, nreadPtr: number): number {
      const e = ctx.fd(fd);
      need(e, Rights.FD_READ);
      mem.check(nreadPtr, 4);
      mem.setU32(nreadPtr, readInto(ctx, e, iovs, iovsLen, undefined));
      return 0;
    },
    fd_pread(fd: number, iovs: number, iovsLen: number, offset: bigint, nreadPtr: number): number {
      const e = seekable(ctx.fd(fd));
      need(e, Rights.FD_READ);
      mem.check(nreadPtr, 4);
      mem.setU32(nreadPtr, readInto(ctx, e, iovs, iovsLen, offsetOf(offset)));
      return 0;
    },
    fd_write(fd: number, iovs: number, iovsLen: number, nwrittenPtr: number): number {
      const e = ctx.fd(fd);
      need(e, Rights.FD_WRITE);
      mem.check(nwrittenPtr, 4);
      mem.setU32(nwrittenPtr, writeFrom(ctx, e, iovs, iovsLen, undefined));
      return 0;
    },
    fd_pwrite(fd: number, iovs: number, iovsLen: number, offset: bigint, nwrittenPtr: number): number {
      const e = seekable(ctx.fd(fd));
      need(e, Rights.FD_WRITE);
      mem.check(nwrittenPtr, 4);
      mem.setU32(nwrittenPtr, writeFrom(ctx, e, iovs, iovsLen, offsetOf(offset)));
      return 0;
    },
    fd_seek(fd: number, offset: bigint, whence: number, newOffsetPtr: number): number {
      const e = seekable(ctx.fd(fd));
      need(e, offset === 0n && whence === Whence.CUR ? Rights.FD_TELL : Rights.FD_SEEK);
      mem.check(newOffsetPtr, 8);
      const delta = BigInt.asIntN(64, offset);
      let base: bigint;
      switch (whence & 0xff) {
        case Whence.SET: base = 0n; break;
        case Whence.CUR: base = BigInt(e.position); break;
        case Whence.END: base = BigInt(e.vfs.stat(e.handle).size); break;
        default: throw new WasiError(WasiErrno.INVAL, `whence ${whence}`);
      }
      const next = base + delta;
      if (next < 0n) throw new WasiError(WasiErrno.INVAL, 'seek before the start');
      if (next > BigInt(Number.MAX_SAFE_INTEGER)) throw new WasiError(WasiErrno.OVERFLOW);
      e.position = Number(next);
      mem.setU64(newOffsetPtr, next);
      return 0;
    },
    fd_tell(fd: number, offsetPtr: number): number {
      const e = seekable(ctx.fd(fd));
      need(e, Rights.FD_TELL);
      mem.setU64(offsetPtr, e.position);
      return 0;
    },
    fd_close(fd: number): number {
      ctx.fds.close(fd);
      return 0;
    },
    fd_renumber(from: number, to: number): number {
      ctx.fds.renumber(from, to);
      return 0;
    },
    fd_fdstat_get(fd: number, ptr: number): number {
      const e = ctx.fd(fd);
      const p = mem.check(ptr, 24);
      const v = mem.view;
      v.setUint32(p, e.filetype, true);
      v.setUint16(p + 2, e.fdflags, true);
      v.setUint32(p + 4, 0, true);
      setU64Of(v, p + 8, e.rightsBase);
      setU64Of(v, p + 16, e.rightsInheriting);
      return 0;
    },
    fd_fdstat_set_flags(fd: number, flags: number): number {
      const e = ctx.fd(fd);
      need(e, Rights.FD_FDSTAT_SET_FLAGS);
      const f = flags & 0xffff;
      if ((f & ~FDFLAGS_ALL) !== 0) throw new WasiError(WasiErrno.INVAL);
      e.fdflags = f;
      return 0;
    },
    fd_fdstat_set_rights(fd: number, base: bigint, inheriting: bigint): number {
      const e = ctx.fd(fd);
      const b = rightsOf(base);
      const i = rightsOf(inheriting);
      // Rights can only be dropped, never gained.
      if (b.unknown || i.unknown || (b.rights & ~e.rightsBase) !== 0 || (i.rights & ~e.rightsInheriting) !== 0) {
        throw new WasiError(WasiErrno.NOTCAPABLE, 'fd_fdstat_set_rights can only drop rights');
      }
      e.rightsBase = b.rights;
      e.rightsInheriting = i.rights;
      return 0;
    },
    fd_filestat_get(fd: number, ptr: number): number {
      const e = ctx.fd(fd);
      need(e, Rights.FD_FILESTAT_GET);
      if (e.vfs === undefined) writeFilestat(mem, ptr, undefined, e.filetype);
      else writeFilestat(mem, ptr, e.vfs.stat(e.handle));
      return 0;
    },
    fd_filestat_set_size(fd: number, size: bigint): number {
      const e = ctx.fd(fd);
      need(e, Rights.FD_FILESTAT_SET_SIZE);
      const f = seekable(e);
      if (f.filetype === Filetype.DIRECTORY) throw new WasiError(WasiErrno.ISDIR);
      needWritable(f);
      const s = BigInt.asUintN(64, size);
      if (s > BigInt(Number.MAX_SAFE_INTEGER)) throw new WasiError(WasiErrno.FBIG);
      f.vfs.setSize(f.handle, Number(s));
      return 0;
    },
    fd_filestat_set_times(fd: number, atim: bigint, mtim: bigint, flags: number): number {
      const e = ctx.fd(fd);
      need(e, Rights.FD_FILESTAT_SET_TIMES);
      const [a, m] = timesFrom(ctx, atim, mtim, flags);
      if (e.vfs === undefined) return 0;
      needWritable(e);
      e.vfs.setTimes(e.handle, a, m);
      return 0;
    },
    fd_advise(fd: number, offset: bigint, len: bigint, advice: number): number {
      const e = seekable(ctx.fd(fd));
      need(e, Rights.FD_ADVISE);
      if ((advice & 0xff) > ADVICE_MAX) throw new WasiError(WasiErrno.INVAL);
      if (BigInt.asUintN(64, offset) + BigInt.asUintN(64, len) > 2n ** 63n) throw new WasiError(WasiErrno.INVAL);
      return 0;
    },
    fd_allocate(fd: number, offset: bigint, len: bigint): number {
      const e = seekable(ctx.fd(fd));
      need(e, Rights.FD_ALLOCATE);
      if (e.filetype === Filetype.DIRECTORY) throw new WasiError(WasiErrno.ISDIR);
      const l = BigInt.asUintN(64, len);
      if (l === 0n) throw new WasiError(WasiErrno.INVAL);
      const end = BigInt.asUintN(64, offset) + l;
      if (end > BigInt(Number.MAX_SAFE_INTEGER)) throw new WasiError(WasiErrno.FBIG);
      needWritable(e);
      if (Number(end) > e.vfs.stat(e.handle).size) e.vfs.setSize(e.handle, Number(end));
      return 0;
    },
    fd_datasync(fd: number): number {
      need(ctx.fd(fd), Rights.FD_DATASYNC);
      return 0;
    },
    fd_sync(fd: number): number {
      need(ctx.fd(fd), Rights.FD_SYNC);
      return 0;
    },
    fd_prestat_get(fd: number, ptr: number): number {
      const e = ctx.fd(fd);
      if (e.preopenName === undefined) throw new WasiError(WasiErrno.BADF, 'not a preopen');
      const p = mem.check(ptr, 8);
      mem.view.setUint32(p, PREOPENTYPE_DIR, true);
      mem.view.setUint32(p + 4, e.preopenName.length, true);
      return 0;
    },
    fd_prestat_dir_name(fd: number, pathPtr: number, pathLen: number): number {
      const e = ctx.fd(fd);
      if (e.preopenName === undefined) throw new WasiError(WasiErrno.BADF, 'not a preopen');
      if (pathLen >>> 0 < e.preopenName.length) throw new WasiError(WasiErrno.NAMETOOLONG);
      mem.write(pathPtr, e.preopenName);
      return 0;
    },
    fd_readdir(fd: number, buf: number, bufLen: number, cookie: bigint, bufusedPtr: number): number {
      const e = ctx.fd(fd);
      need(e, Rights.FD_READDIR);
      if (e.filetype !== Filetype.DIRECTORY || e.vfs === undefined) throw new WasiError(WasiErrno.NOTDIR);
      const cap = bufLen >>> 0;
      const start = mem.check(buf, cap);
      mem.check(bufusedPtr, 4);
      const c = BigInt.asUintN(64, cookie);
      if (c === 0n || e.listing === undefined) e.listing = listDir(e as FileEntry);
      const { names, encoded, inos, types } = e.listing;
      let used = 0;
      const header = new Uint8Array(DIRENT_BYTES);
      const hv = new DataView(header.buffer);
      const u8 = mem.u8;
      for (let i = c > BigInt(names.length) ? names.length : Number(c); i < names.length && used < cap; i++) {
        const name = names[i]!;
        const bytes = encoded[i];
        const nameBytes = bytes === undefined ? name.length : bytes.length;
        hv.setUint32(0, i + 1, true);
        hv.setUint32(4, 0, true);
        hv.setUint32(8, inos[i]! >>> 0, true);
        hv.setUint32(12, Math.floor(inos[i]! / 0x100000000), true);
        hv.setUint32(16, nameBytes, true);
        hv.setUint32(20, types[i]!, true);
        // A last entry that does not fit is truncated so that the buffer is exactly full.
        const h = Math.min(DIRENT_BYTES, cap - used);
        u8.set(h === DIRENT_BYTES ? header : header.subarray(0, h), start + used);
        used += h;
        const n = Math.min(nameBytes, cap - used);
        const at = start + used;
        if (bytes !== undefined) u8.set(bytes.subarray(0, n), at);
        else for (let k = 0; k < n; k++) u8[at + k] = name.charCodeAt(k);
        used += n;
      }
      mem.setU32(bufusedPtr, used);
      return 0;
    },
  };
}
