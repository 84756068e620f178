/**
 * Confined look-ups in a materialised root filesystem on the host: PATH search for argv[0], users and
 * groups from /etc/passwd and /etc/group, canonical mount points. Symlinks are resolved inside the
 * root (chroot semantics) by the shared `resolvePath` over a small read-only Vfs whose handles are
 * canonical paths relative to the root, so an absolute symlink in an image never reaches host files.
 */
import * as fs from 'node:fs';
import { SandboxError } from '../errors.ts';
import { resolvePath } from '../fs/resolve.ts';
import { FsError, type DirEntry, type NodeKind, type Stat, type Vfs } from '../fs/vfs.ts';

/** The largest uid or gid ((uid_t)-1 means "unchanged" to the kernel). */
const MAX_ID = 0xfffffffe;

type Handle = string; // '' is the root; otherwise 'a/b/c' with no symlink in it

class DirVfs implements Vfs<Handle> {
  readonly readOnly = true;
  constructor(private readonly base: string) {}
  private host(h: Handle): string {
    return h === '' ? this.base : `${this.base}/${h}`;
  }
  root(): Handle { return ''; }
  lookup(dir: Handle, name: string): Handle | undefined {
    const h = dir === '' ? name : `${dir}/${name}`;
    try {
      fs.lstatSync(this.host(h));
      return h;
    } catch {
      return undefined;
    }
  }
  kind(h: Handle): NodeKind {
    return this.stat(h).kind;
  }
  stat(h: Handle): Stat {
    let s: fs.BigIntStats;
    try {
      s = fs.lstatSync(this.host(h), { bigint: true });
    } catch {
      throw new FsError('ENOENT', h);
    }
    const kind: NodeKind = s.isDirectory() ? 'dir' : s.isSymbolicLink() ? 'symlink' : s.isFile() ? 'file'
      : s.isCharacterDevice() ? 'chardev' : s.isBlockDevice() ? 'blockdev' : s.isFIFO() ? 'fifo' : 'socket';
    return {
      dev: Number(s.dev), ino: Number(s.ino), kind, mode: Number(s.mode) & 0o7777, uid: Number(s.uid), gid: Number(s.gid),
      nlink: Number(s.nlink), size: Number(s.size), rdev: Number(s.rdev), atimeNs: s.atimeNs, mtimeNs: s.mtimeNs, ctimeNs: s.ctimeNs,
    };
  }
  readdir(dir: Handle): DirEntry[] {
    return fs.readdirSync(this.host(dir)).map((name) => {
      const st = this.stat(dir === '' ? name : `${dir}/${name}`);
      return { name, ino: st.ino, kind: st.kind };
    });
  }
  readlink(h: Handle): string { return fs.readlinkSync(this.host(h)); }
  read(h: Handle, into: Uint8Array, position: number): number {
    const fd = fs.openSync(this.host(h), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try { return fs.readSync(fd, into, 0, into.length, position); } finally { fs.closeSync(fd); }
  }
  write(): number { throw new FsError('EROFS'); }
  setSize(): void { throw new FsError('EROFS'); }
  setTimes(): void { throw new FsError('EROFS'); }
  mkdir(): Handle { throw new FsError('EROFS'); }
  createFile(): Handle { throw new FsError('EROFS'); }
  symlink(): Handle { throw new FsError('EROFS'); }
  link(): void { throw new FsError('EROFS'); }
  unlink(): void { throw new FsError('EROFS'); }
  rmdir(): void { throw new FsError('EROFS'); }
  rename(): void { throw new FsError('EROFS'); }
}

export interface RootfsLookup {
  resolveCommand(name: string, path: string): { path: string; executable: boolean } | undefined;
  /** uid and gid of `user` (NAME or UID, with :GROUP or :GID); `home` from its /etc/passwd entry. */
  resolveUser(user: string): { uid: number; gid: number; home?: string };
  /** Supplementary gids of `user` and `groupAdd`, by docker's rules (see PlanHost.supplementaryGroups). */
  supplementaryGroups(user: string | undefined, groupAdd: string[]): number[];
  canonicalGuestPath(p: string): string;
  exists(p: string): boolean;
  statGuest(p: string): { kind: string; executable: boolean } | undefined;
}

export function rootfsLookup(rootfsDir: string): RootfsLookup {
  const vfs = new DirVfs(rootfsDir);
  const resolve = (p: string, followFinal = true) =>
    resolvePath(vfs, vfs.root(), p, { followFinal, escape: 'clamp' });

  const readText = (p: string, limit = 4 << 20): string | undefined => {
    try {
      const r = resolve(p);
      if (r.node === undefined || vfs.stat(r.node).kind !== 'file') return undefined;
      const size = Math.min(vfs.stat(r.node).size, limit);
      const buf = new Uint8Array(size);
      let off = 0;
      while (off < size) {
        const n = vfs.read(r.node, buf.subarray(off), off);
        if (n === 0) break;
        off += n;
      }
      return new TextDecoder().decode(buf.subarray(0, off));
    } catch {
      return undefined;
    }
  };
  const table = (file: string): string[][] =>
    (readText(file) ?? '').split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(':'));
  /** /etc/group entries with a name and a gid the kernel takes: [name, gid, members]. */
  const groupTable = (): Array<{ name: string; gid: number; members: string[] }> =>
    table('/etc/group').flatMap((f) => {
      const gid = f.length >= 3 && /^\d{1,10}$/.test(f[2]!) ? Number(f[2]) : NaN;
      if (!f[0] || !(gid <= MAX_ID)) return [];
      return [{ name: f[0], gid, members: (f[3] ?? '').split(',').filter((m) => m !== '') }];
    });

  return {
    resolveCommand(name, searchPath) {
      let nonExecutable: { path: string; executable: boolean } | undefined;
      for (const dir of searchPath.split(':')) {
        if (!dir.startsWith('/')) continue;
        const candidate = `${dir.replace(/\/+$/, '')}/${name}`;
        try {
          const r = resolve(candidate);
          if (r.node === undefined) continue;
          const st = vfs.stat(r.node);
          if (st.kind !== 'file') continue;
          if (st.mode & 0o111) return { path: candidate, executable: true };
          nonExecutable ??= { path: candidate, executable: false };
        } catch (e) {
          if (!(e instanceof FsError)) throw e;
        }
      }
      return nonExecutable;
    },
    resolveUser(user) {
      const [u = '', g] = user.split(':', 2);
      let uid: number;
      let gid: number | undefined;
      let home: string | undefined;
      const passwd = table('/etc/passwd');
      if (/^\d+$/.test(u)) {
        uid = Number(u);
        const entry = passwd.find((f) => f[2] === u);
        gid = entry && /^\d+$/.test(entry[3] ?? '') ? Number(entry[3]) : 0;
        home = entry?.[5];
      } else {
        const entry = passwd.find((f) => f[0] === u);
        if (!entry || !/^\d+$/.test(entry[2] ?? '')) throw new SandboxError('NOT_FOUND', `unable to find user ${u}: no matching entries in passwd file`);
        uid = Number(entry[2]);
        gid = /^\d+$/.test(entry[3] ?? '') ? Number(entry[3]) : 0;
        home = entry[5];
      }
      if (g !== undefined && g !== '') {
        if (/^\d+$/.test(g)) gid = Number(g);
        else {
          const entry = table('/etc/group').find((f) => f[0] === g);
          if (!entry || !/^\d+$/.test(entry[2] ?? '')) throw new SandboxError('NOT_FOUND', `unable to find group ${g}: no matching entries in group file`);
          gid = Number(entry[2]);
        }
      }
      return { uid, gid: gid ?? 0, ...(home?.startsWith('/') ? { home } : {}) };
    },
    supplementaryGroups(user, groupAdd) {
      const [u = '', g = ''] = (user ?? '').split(':', 2);
      const groups = groupAdd.length > 0 || g === '' ? groupTable() : [];
      const out: number[] = [];
      // (runc: member groups only for the implicit form, `user` without a group; a uid by its passwd name;
      // no user is uid 0)
      if (g === '') {
        const passwd = table('/etc/passwd');
        const uidArg = u === '' ? '0' : u;
        const entry = /^\d+$/.test(uidArg) ? passwd.find((f) => f[2] === uidArg) : passwd.find((f) => f[0] === uidArg);
        const name = entry?.[0];
        if (name) for (const grp of groups) if (grp.members.includes(name)) out.push(grp.gid);
      }
      for (const wanted of groupAdd) {
        const byName = groups.find((grp) => grp.name === wanted);
        if (byName) out.push(byName.gid);
        else if (/^\d{1,10}$/.test(wanted) && Number(wanted) <= MAX_ID) out.push(Number(wanted));
        else throw new SandboxError('NOT_FOUND', `unable to find group ${wanted}: no matching entries in group file`);
      }
      return out;
    },
    canonicalGuestPath(p) {
      const parts = p.split('/').filter((c) => c !== '');
      for (let i = 1; i <= parts.length; i++) {
        let r;
        try {
          r = resolve(`/${parts.slice(0, i).join('/')}`);
        } catch (e) {
          if (e instanceof FsError) throw new SandboxError('INVALID_ARGUMENT', `mount point ${p} cannot be resolved in the image: ${e.message}`);
          throw e;
        }
        if (r.node !== undefined && i < parts.length && vfs.stat(r.node).kind !== 'dir') {
          throw new SandboxError('INVALID_ARGUMENT', `mount point ${p}: /${parts.slice(0, i).join('/')} is not a directory in the image`);
        }
        if (r.node === undefined) {
          // The first missing component: bwrap creates it and what follows, under the canonical parent.
          return `/${[r.parent, r.name, ...parts.slice(i)].filter((c) => c !== '').join('/')}`;
        }
        if (i === parts.length) return `/${r.node}`;
      }
      return '/';
    },
    statGuest(p) {
      try {
        const r = resolve(p);
        if (r.node === undefined) return undefined;
        const st = vfs.stat(r.node);
        return { kind: st.kind, executable: (st.mode & 0o111) !== 0 };
      } catch {
        return undefined;
      }
    },
    exists(p) {
      try {
        return resolve(p).node !== undefined;
      } catch {
        return false;
      }
    },
  };
}
