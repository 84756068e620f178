/**
 * Real Linux images built at test time as OCI layout directories (nothing committed):
 * - busybox: one layer, Debian's busybox-static as /bin/busybox with applet symlinks, /etc/passwd, /etc/group;
 * - layered: busybox plus layers with a whiteout, an opaque directory, symlinks, hard links, a setuid file;
 * - owners: busybox plus files and directories of uids/gids 0, 1000 and 65534, run as USER app (1000).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { pack, type Header } from 'tar-stream';
import { createLinuxBackend, type PlanHost } from '../../src/linux-backend/index.ts';
import type { Backend, ContainerSpec, ExitStatus } from '../../src/runtime/types.ts';
import { directoryTree } from '../../src/host/node/byte-source.ts';
import { openImage } from '../../src/loader/open-image.ts';
import { ociLayoutSource } from '../../src/loader/sources/oci-layout.ts';
import type { Image } from '../../src/loader/source.ts';

export const BUSYBOX = '/bin/busybox';
export const APPLETS = [
  'sh', 'ls', 'cat', 'echo', 'ps', 'hostname', 'id', 'true', 'false', 'sleep', 'env', 'pwd', 'ip', 'mount',
  'umount', 'unshare', 'nsenter', 'mkdir', 'touch', 'rm', 'ln', 'stat', 'readlink', 'grep', 'head', 'wc',
  'yes', 'dd', 'kill', 'find', 'chmod', 'sed', 'tr', 'seq', 'test', 'cut', 'uname', 'whoami', 'sort',
  'xargs', 'mknod', 'chroot', 'ifconfig', 'tail', 'tee', 'rmdir', 'mv', 'cp', 'printf', 'nproc', 'free',
];

export function busyboxAvailable(): string | undefined {
  if (!fs.existsSync(BUSYBOX)) return `${BUSYBOX} is missing (apt-get install busybox-static)`;
  const head = fs.readFileSync(BUSYBOX).subarray(0, 20);
  if (head[0] !== 0x7f || head[1] !== 0x45) return `${BUSYBOX} is not an ELF binary`;
  return undefined;
}

export type Entry =
  | { type: 'dir'; name: string; mode?: number; uid?: number; gid?: number }
  | { type: 'file'; name: string; data: Uint8Array | string; mode?: number; uid?: number; gid?: number }
  | { type: 'symlink'; name: string; target: string }
  | { type: 'link'; name: string; target: string }
  | { type: 'fifo'; name: string; mode?: number };

const MTIME = new Date('2024-01-02T03:04:05Z');

export async function layerTar(entries: Entry[]): Promise<Uint8Array> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => { chunks.push(c as Buffer); });
  const done = new Promise<void>((resolve, reject) => { p.on('end', resolve); p.on('error', reject); });
  for (const e of entries) {
    const base: Partial<Header> & { name: string } = { name: e.name, mtime: MTIME, uid: 0, gid: 0 };
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      switch (e.type) {
        case 'dir': p.entry({ ...base, type: 'directory', mode: e.mode ?? 0o755, uid: e.uid ?? 0, gid: e.gid ?? 0 }, cb); break;
        case 'file': {
          const data = typeof e.data === 'string' ? Buffer.from(e.data) : Buffer.from(e.data);
          p.entry({ ...base, type: 'file', mode: e.mode ?? 0o644, uid: e.uid ?? 0, gid: e.gid ?? 0, size: data.length }, data, cb);
          break;
        }
        case 'symlink': p.entry({ ...base, type: 'symlink', linkname: e.target, mode: 0o777 }, cb); break;
        case 'link': p.entry({ ...base, type: 'link', linkname: e.target, mode: 0o644 }, cb); break;
        case 'fifo': p.entry({ ...base, type: 'fifo', mode: e.mode ?? 0o644 }, cb); break;
      }
    });
  }
  p.finalize();
  await done;
  return new Uint8Array(Buffer.concat(chunks));
}

const sha = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface ImageConfigInput { Entrypoint?: string[]; Cmd?: string[]; Env?: string[]; WorkingDir?: string; User?: string }

/** Writes an OCI image layout with gzip layers (plain tar ones with `gzip: false`); returns its directory. */
export function writeOciLayout(dir: string, layers: Uint8Array[], config: ImageConfigInput, arch = hostOciArch(), gzip = true): string {
  fs.mkdirSync(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  const put = (b: Uint8Array): { digest: string; size: number } => {
    const digest = sha(b);
    fs.writeFileSync(path.join(dir, 'blobs', 'sha256', digest.slice(7)), b);
    return { digest, size: b.byteLength };
  };
  const layerDescs = layers.map((tar) => (gzip
    ? { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...put(gzipSync(tar)) }
    : { mediaType: 'application/vnd.oci.image.layer.v1.tar', ...put(tar) }));
  const cfg = {
    architecture: arch,
    os: 'linux',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], ...config },
    rootfs: { type: 'layers', diff_ids: layers.map(sha) },
  };
  const cfgDesc = { mediaType: 'application/vnd.oci.image.config.v1+json', ...put(Buffer.from(JSON.stringify(cfg))) };
  const manifest = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: cfgDesc, layers: layerDescs };
  const mDesc = { mediaType: 'application/vnd.oci.image.manifest.v1+json', ...put(Buffer.from(JSON.stringify(manifest))), annotations: { 'org.opencontainers.image.ref.name': 'latest' } };
  fs.writeFileSync(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [mDesc] }));
  return dir;
}

export function hostOciArch(): string {
  return process.arch === 'x64' ? 'amd64' : process.arch === 'arm64' ? 'arm64' : process.arch;
}

export function busyboxEntries(): Entry[] {
  return [
    { type: 'dir', name: 'bin' },
    { type: 'file', name: 'bin/busybox', data: fs.readFileSync(BUSYBOX), mode: 0o755 },
    ...APPLETS.map((a): Entry => ({ type: 'symlink', name: `bin/${a}`, target: 'busybox' })),
    { type: 'dir', name: 'etc' },
    { type: 'file', name: 'etc/passwd', data: 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' },
    { type: 'file', name: 'etc/group', data: 'root:x:0:\napp:x:1000:\nstaff:x:50:\nnogroup:x:65534:\n' },
    { type: 'file', name: 'etc/hostname', data: 'image-hostname\n' },
    ...skeletonDirs(),
    { type: 'dir', name: 'work' },
  ];
}

/** The directories of every test image besides its programs and /etc: root's and app's homes, /tmp, /proc, /dev. */
export function skeletonDirs(): Entry[] {
  return [
    { type: 'dir', name: 'root', mode: 0o700 },
    { type: 'dir', name: 'home' },
    { type: 'dir', name: 'home/app', uid: 1000, gid: 1000 },
    { type: 'dir', name: 'tmp', mode: 0o1777 },
    { type: 'dir', name: 'proc', mode: 0o555 },
    { type: 'dir', name: 'dev' },
  ];
}

export async function buildBusyboxImage(dir: string, config: ImageConfigInput = { Cmd: ['sh'] }): Promise<string> {
  return writeOciLayout(dir, [await layerTar(busyboxEntries())], config);
}

/** Four layers: busybox; files to delete later; whiteout + opaque dir + links + setuid; a rewrite. */
export async function buildLayeredImage(dir: string): Promise<string> {
  const l1 = await layerTar(busyboxEntries());
  const l2 = await layerTar([
    { type: 'dir', name: 'data' },
    { type: 'file', name: 'data/keep.txt', data: 'v1\n' },
    { type: 'file', name: 'data/gone.txt', data: 'should be whited out\n' },
    { type: 'dir', name: 'opaque' },
    { type: 'file', name: 'opaque/old1', data: 'old\n' },
    { type: 'dir', name: 'opaque/olddir' },
    { type: 'file', name: 'opaque/olddir/x', data: 'old\n' },
  ]);
  const l3 = await layerTar([
    { type: 'dir', name: 'data' },
    { type: 'file', name: 'data/.wh.gone.txt', data: '' },
    { type: 'dir', name: 'opaque' },
    { type: 'file', name: 'opaque/.wh..wh..opq', data: '' },
    { type: 'file', name: 'opaque/new', data: 'new\n' },
    { type: 'dir', name: 'links' },
    { type: 'file', name: 'links/target.txt', data: 'target\n' },
    { type: 'symlink', name: 'links/rel', target: 'target.txt' },
    { type: 'symlink', name: 'links/abs', target: '/data/keep.txt' },
    { type: 'symlink', name: 'links/escape', target: '../../../../etc/hostname' },
    { type: 'symlink', name: 'links/updir', target: '../../../../../etc' },
    { type: 'symlink', name: 'links/absdir', target: '/data' },
    { type: 'link', name: 'links/hard', target: 'links/target.txt' },
    { type: 'file', name: 'bin/suid', data: '#!/bin/sh\nid\n', mode: 0o4755 },
    { type: 'fifo', name: 'links/fifo' },
  ]);
  const l4 = await layerTar([
    { type: 'dir', name: 'data' },
    { type: 'file', name: 'data/keep.txt', data: 'v2\n' },
  ]);
  return writeOciLayout(dir, [l1, l2, l3, l4], { Cmd: ['sh'], WorkingDir: '/data' });
}

/** Files of several owners, so that a container shows (and enforces) the image's uids and gids. */
export async function buildOwnersImage(dir: string): Promise<string> {
  const l1 = await layerTar(busyboxEntries());
  const l2 = await layerTar([
    { type: 'dir', name: 'data', mode: 0o755 },
    { type: 'file', name: 'data/root-file', data: 'root\n', mode: 0o644 },
    { type: 'file', name: 'data/root-private', data: 'secret\n', mode: 0o600 },
    { type: 'file', name: 'data/app-file', data: 'app\n', mode: 0o644, uid: 1000, gid: 1000 },
    { type: 'file', name: 'data/nobody-file', data: 'nobody\n', mode: 0o644, uid: 65534, gid: 65534 },
    { type: 'file', name: 'data/group-file', data: 'group\n', mode: 0o664, uid: 0, gid: 1000 },
    { type: 'dir', name: 'data/app-dir', mode: 0o755, uid: 1000, gid: 1000 },
    { type: 'dir', name: 'data/nobody-dir', mode: 0o755, uid: 65534, gid: 65534 },
  ]);
  return writeOciLayout(dir, [l1, l2], { Cmd: ['sh'], User: 'app', WorkingDir: '/data' });
}

/** buildOwnersImage's /data as `ls -ln` shows it, through ownersOf. */
export const OWNERS_IMAGE_LISTING = [
  '1000:1000 app-dir', '1000:1000 app-file', '0:1000 group-file', '65534:65534 nobody-dir', '65534:65534 nobody-file',
  '0:0 root-file', '0:0 root-private',
];

/** `ls -ln` lines as "owner:group name". */
export function ownersOf(ls: string): string[] {
  return ls.split('\n').filter((l) => /^[-d]/.test(l)).map((l) => {
    const f = l.trim().split(/\s+/);
    return `${f[2]}:${f[3]} ${f[f.length - 1]}`;
  });
}

export async function openOciDir(dir: string): Promise<Image> {
  const core = await ociLayoutSource(directoryTree(dir));
  return openImage(core, { transport: 'oci', path: dir }, { platform: `linux/${hostOciArch()}` });
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** What the API tests of the Linux backend share: a temp dir, the busybox and layered images, a backend. */
export interface LinuxTestBed {
  work: string;
  home: string;
  backend: Backend;
  busybox: Image;
  layered: Image;
  /** Set when this host cannot run the tests (busybox-static missing, no namespaces): tests skip with it. */
  skipReason: string | undefined;
}

/** Builds the test bed in beforeAll and removes it in afterAll (vitest's hooks, passed in). */
export function linuxTestBed(prefix: string, hooks: { beforeAll(fn: () => Promise<void>): void; afterAll(fn: () => void): void }): LinuxTestBed {
  const work = tempDir(prefix);
  const bed = { work, home: path.join(work, 'home'), skipReason: busyboxAvailable() } as LinuxTestBed;
  hooks.beforeAll(async () => {
    if (bed.skipReason) return;
    bed.busybox = await openOciDir(await buildBusyboxImage(path.join(work, 'busybox')));
    bed.layered = await openOciDir(await buildLayeredImage(path.join(work, 'layered')));
    bed.backend = createLinuxBackend({ home: bed.home });
    const probe = await bed.backend.probe(bed.busybox);
    if (!probe.ok) bed.skipReason = probe.reason;
    if (bed.skipReason) console.warn(`linux backend tests skipped: ${bed.skipReason}`);
  });
  hooks.afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
  return bed;
}

/** Creates and starts a container of `image`, reads its whole output and waits for its end. */
export async function runToEnd(backend: Backend, image: Image, spec: ContainerSpec): Promise<{ status: ExitStatus; stdout: string; stderr: string }> {
  const c = await backend.create(image, spec);
  await c.start();
  const [stdout, stderr, status] = await Promise.all([new Response(c.stdout).text(), new Response(c.stderr).text(), c.wait()]);
  return { status, stdout, stderr };
}

/**
 * Bundles a runner script (see runnerPrelude) to `work`/runner.mjs. With `owner` (the other user it runs
 * as), the runner is made readable to it and `work`/home is made, owned by it.
 */
export async function bundleRunner(work: string, source: string, owner?: { uid: number; gid: number }): Promise<string> {
  const src = path.join(work, 'runner.ts');
  fs.writeFileSync(src, source);
  const runner = path.join(work, 'runner.mjs');
  await build({
    entryPoints: [src], bundle: true, platform: 'node', format: 'esm', outfile: runner, logLevel: 'error',
    conditions: ['node'], banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  });
  if (!owner) return runner;
  fs.chmodSync(runner, 0o644);
  fs.mkdirSync(path.join(work, 'home'), { mode: 0o755 });
  fs.chownSync(path.join(work, 'home'), owner.uid, owner.gid);
  return runner;
}

/**
 * The start of a script that tests run in a child process (as another user, or with descriptors of its
 * own): it opens the OCI layout in argv[2] as `image` and makes `backend` with home argv[3]; `runToEnd`
 * is in scope.
 */
export function runnerPrelude(root: string): string {
  return `import { createLinuxBackend } from '${root}/src/linux-backend/index.ts';
import { openOciDir, runToEnd } from '${root}/test/helpers/linux-images.ts';
const [ociDir, home] = process.argv.slice(2);
const image = await openOciDir(ociDir);
const backend = createLinuxBackend({ home });`;
}

/**
 * The entries left in `dir` ([] if it does not exist) once it is empty, or after `ms`. What a process
 * kept for fs() is removed by its namespace helper just after the process exits (kept/), so a check
 * made right after the exit races with that removal.
 */
export async function entriesOnceRemoved(dir: string, ms = 20_000): Promise<string[]> {
  const entries = (): string[] => {
    try {
      return fs.readdirSync(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
  };
  for (const deadline = Date.now() + ms; entries().length > 0 && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 50));
  return entries();
}

/**
 * A PlanHost for plans as data (no host behind it): x86_64, every command found in /bin, root unless
 * `user` is app (1000:1000), every guest path an executable file; `o` overrides.
 */
export function planHostFixture(o: Partial<PlanHost> = {}): PlanHost {
  return {
    arch: 'x86_64', procPresent: [], emptyDir: '/wb/empty', rootfsDir: '/wb/layers/aa', containerDir: '/wb/containers/c1',
    cgroups: {},
    resolveCommand: (name) => ({ path: `/bin/${name}`, executable: true }),
    resolveUser: (u) => (u === 'app' ? { uid: 1000, gid: 1000 } : { uid: 0, gid: 0 }),
    canonicalGuestPath: (p) => p,
    statGuest: () => ({ kind: 'file', executable: true }),
    ...o,
  };
}

/** A fresh CLI home with the test bed's busybox image loaded as `tag`; `remove()` when done. */
export function cliHomeWithBusybox(bed: LinuxTestBed, tag: string, cliBin: string): { home: string; remove(): void } {
  const home = tempDir('wasmbox-cli-home-');
  const load = spawnSync(process.execPath, [cliBin, '--home', home, 'load', '-q', '-t', tag, '-i', path.join(bed.work, 'busybox')], { encoding: 'utf8' });
  if (load.status !== 0) {
    fs.rmSync(home, { recursive: true, force: true });
    throw new Error(`wasmbox load failed (${load.status}): ${load.stderr}`);
  }
  return { home, remove: () => fs.rmSync(home, { recursive: true, force: true }) };
}
