// A Linux image of dynamically linked programs, as a distribution image holds them: Debian's bash and
// coreutils with the shared libraries `ldd` names and the dynamic loader, in a merged-/usr layout
// (/bin, /lib, /lib64 and /sbin are links into /usr), taken from this host's installed packages.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerSpec } from '../src/runtime/types.ts';
import type { Image } from '../src/loader/source.ts';
import { ETC_HOSTS, withEtcHosts } from '../src/linux-backend/etc-hosts.ts';
import { newDir, newFile, newSymlink, type DirInode } from '../src/fs/inode.ts';
import { layerTar, linuxTestBed, openOciDir, runToEnd, skeletonDirs, writeOciLayout, type Entry } from './helpers/linux-images.ts';

const PROGRAMS = ['/usr/bin/bash', '/usr/bin/ls', '/usr/bin/id', '/usr/bin/cat', '/usr/bin/env', '/usr/bin/stat', '/usr/bin/head', '/usr/bin/wc', '/usr/bin/getent'];
const root = path.resolve(import.meta.dirname, '..');
const bed = linuxTestBed('wasmbox-linux-dynamic-', { beforeAll, afterAll });
let image: Image;
let ociDir = '';
let skipReason: string | undefined;

/** The image's entries: PROGRAMS, what `ldd` says they load, and the links that lead there, as on this host. */
function dynamicEntries(): Entry[] {
  const entries = new Map<string, Entry>();
  const dirs = new Set<string>();
  const addDirs = (p: string) => {
    for (let d = path.dirname(p); d !== '/' && !dirs.has(d); d = path.dirname(d)) dirs.add(d);
  };
  const addFile = (p: string) => {
    const real = fs.realpathSync(p);
    addDirs(real);
    entries.set(real, { type: 'file', name: real.slice(1), data: fs.readFileSync(real), mode: fs.statSync(real).mode & 0o7777 });
    // the link chain from the name the loader asks for (/lib64/ld-linux-x86-64.so.2 -> …) to the file
    for (let at = p; ; ) {
      const dir = fs.realpathSync(path.dirname(at));
      const here = path.join(dir, path.basename(at));
      const st = fs.lstatSync(here);
      if (!st.isSymbolicLink()) break;
      const target = fs.readlinkSync(here);
      addDirs(here);
      entries.set(here, { type: 'symlink', name: here.slice(1), target });
      at = path.resolve(dir, target);
    }
  };
  const libs = new Set<string>();
  for (const program of PROGRAMS) {
    addFile(program);
    const out = execFileSync('ldd', [program], { encoding: 'utf8' });
    for (const m of out.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)) libs.add(m[1]!);
  }
  for (const lib of libs) addFile(lib);
  // the top-level links of a merged /usr (Debian 12), as this host has them
  const top: Entry[] = ['bin', 'sbin', 'lib', 'lib64'].flatMap((name) => {
    const p = `/${name}`;
    return fs.existsSync(p) && fs.lstatSync(p).isSymbolicLink() ? [{ type: 'symlink' as const, name, target: fs.readlinkSync(p) }] : [];
  });
  const topNames = new Set(top.map((e) => `/${e.name}`));
  return [
    ...top,
    ...[...dirs].filter((d) => !topNames.has(d)).sort().map((d): Entry => ({ type: 'dir', name: d.slice(1) })),
    ...[...entries.values()].filter((e) => !topNames.has(`/${e.name}`)),
    { type: 'dir', name: 'etc' },
    { type: 'file', name: 'etc/passwd', data: 'root:x:0:0:root:/root:/usr/bin/bash\napp:x:1000:1000:app:/home/app:/usr/bin/bash\n' },
    { type: 'file', name: 'etc/group', data: 'root:x:0:\napp:x:1000:\n' },
    ...skeletonDirs(),
  ];
}

beforeAll(async () => {
  skipReason = bed.skipReason;
  if (skipReason) return;
  if (spawnSync('ldd', ['--version']).status !== 0 || !PROGRAMS.every((p) => fs.existsSync(p))) {
    skipReason = 'ldd, bash or coreutils missing on this host';
    return;
  }
  ociDir = writeOciLayout(path.join(bed.work, 'dynamic'), [await layerTar(dynamicEntries())], { Cmd: ['bash'] });
  image = await openOciDir(ociDir);
});

const spec = (script: string, o: Partial<ContainerSpec> = {}): ContainerSpec => ({
  argv: ['bash', '-c', script], env: ['PATH=/usr/bin:/bin', 'HOME=/root'], cwd: '/', tty: false, stdin: false,
  readOnlyRoot: false, mounts: [], network: 'none', limits: {}, ...o,
});

describe('dynamically linked programs in a Linux image', () => {
  it('bash and coreutils load their libraries through the image\'s dynamic loader, as root and as another user, read-only too', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const hostBash = execFileSync('/usr/bin/bash', ['-c', 'echo $BASH_VERSION'], { encoding: 'utf8' });
    const script = 'echo "$BASH_VERSION"; declare -A m=([k]=v); echo "${m[k]}"; id -u; stat -c %U /etc/passwd; ls /lib64 | head -1; echo x > /tmp/y && cat /tmp/y';
    for (const o of [{}, { user: 'app' }, { readOnlyRoot: true }]) {
      const r = await runToEnd(bed.backend, image, spec(script, o));
      expect(r.stderr, JSON.stringify(o)).toBe('');
      expect(r.status.code).toBe(0);
      const uid = 'user' in o ? '1000' : '0';
      expect(r.stdout).toBe(`${hostBash}v\n${uid}\nroot\n${fs.readdirSync('/lib64')[0]}\nx\n`);
    }
    // an image without /etc/hosts (base images have none: docker mounts one) still resolves localhost
    const hosts = await runToEnd(bed.backend, image, spec('getent hosts localhost | head -1; stat -c %A /etc/hosts'));
    expect(hosts.stdout).toMatch(/^(127\.0\.0\.1|::1)\s+localhost.*\n-rw-r--r--\n$/);
    // env gives the process exactly its environment
    const env = await runToEnd(bed.backend, image, { ...spec(''), argv: ['env'], env: ['PATH=/usr/bin', 'A=b c'] });
    expect(env.stdout.split('\n').filter(Boolean).sort()).toEqual(['A=b c', 'PATH=/usr/bin', 'PWD=/']);
  });

  it('through the CLI, with its exit status', (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const r = spawnSync(process.execPath, [path.join(root, 'bin', 'wasmbox.cjs'), '--home', bed.home, 'run', '-u', 'app', `oci:${ociDir}`, 'bash', '-c', 'cat /etc/passwd | wc -l; ls -d ~; exit 7'], {
      encoding: 'utf8', timeout: 60_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: bed.work },
    });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('2\n/home/app\n');
    expect(r.status).toBe(7);
  });
});

describe('withEtcHosts', () => {
  const meta = { mode: 0o755, uid: 0, gid: 0, mtimeNs: 0n };
  const tree = (etc?: 'dir' | 'hosts' | 'link') => {
    const root = newDir(1, meta);
    if (etc === 'dir' || etc === 'hosts') {
      const e = newDir(2, meta);
      if (etc === 'hosts') e.entries.set('hosts', newFile(3, { ...meta, mode: 0o644 }, new TextEncoder().encode('10.0.0.1 mine\n')));
      root.entries.set('etc', e);
    } else if (etc === 'link') {
      root.entries.set('etc', newSymlink(4, meta, 'usr/etc'));
    }
    return root;
  };
  const hostsText = (root: DirInode) => {
    const etc = root.entries.get('etc');
    const h = etc?.kind === 'dir' ? etc.entries.get('hosts') : undefined;
    return h?.kind === 'file' ? new TextDecoder().decode(h.data) : undefined;
  };

  it('adds docker\'s localhost lines where the image has no /etc/hosts, on copies: the image\'s tree is left as it was', () => {
    for (const kind of [undefined, 'dir'] as const) {
      const before = tree(kind);
      const after = withEtcHosts(before);
      expect(hostsText(after)).toBe(ETC_HOSTS);
      expect(hostsText(before)).toBeUndefined();
      expect(after.entries.get('etc')!.kind).toBe('dir');
    }
    expect(ETC_HOSTS).toMatch(/^127\.0\.0\.1\tlocalhost\n::1\tlocalhost /);
  });

  it('keeps the image\'s own /etc/hosts, and an /etc that is not a directory', () => {
    for (const kind of ['hosts', 'link'] as const) {
      const before = tree(kind);
      expect(withEtcHosts(before)).toBe(before);
    }
  });
});
