// Container.fs() of a Linux container: after exit, a read-only view of the image plus what the guest wrote.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from 'esbuild';
import type { LinuxContainer } from '../src/linux-backend/container.ts';
import { resolvePath } from '../src/fs/resolve.ts';
import { FsError, type Vfs } from '../src/fs/vfs.ts';
import { isSandboxError } from '../src/errors.ts';
import type { Backend, Container, ContainerSpec } from '../src/runtime/types.ts';
import type { Image } from '../src/loader/source.ts';
import { buildLayeredImage, entriesOnceRemoved, linuxTestBed } from './helpers/linux-images.ts';

const bed = linuxTestBed('wasmbox-linux-fs-', { beforeAll, afterAll });
const { work, home } = bed;
let backend: Backend;
let busybox: Image;
let layered: Image;
let skipReason: string | undefined;
beforeAll(() => { ({ backend, busybox, layered, skipReason } = bed); });

const sh = (script: string, o: Partial<ContainerSpec> = {}): ContainerSpec => ({
  argv: ['sh', '-c', script], env: ['PATH=/bin', 'HOME=/root'], cwd: '/', tty: false, stdin: false, readOnlyRoot: false,
  mounts: [], network: 'none', limits: {}, ...o,
});

async function runToExit(image: Image, s: ContainerSpec): Promise<{ c: Container; stdout: string; stderr: string }> {
  const c = await backend.create(image, s);
  await c.start();
  const [stdout, stderr, status] = await Promise.all([new Response(c.stdout).text(), new Response(c.stderr).text(), c.wait()]);
  expect(status, stderr).toEqual({ code: 0, reason: 'exit' });
  return { c, stdout, stderr };
}

function node(vfs: Vfs, p: string, followFinal = true): unknown {
  try {
    return resolvePath(vfs, vfs.root(), p, { followFinal, escape: 'clamp' }).node;
  } catch (e) {
    if (e instanceof FsError && e.errno === 'ENOENT') return undefined;
    throw e;
  }
}

function readText(vfs: Vfs, p: string): string | undefined {
  const h = node(vfs, p);
  if (h === undefined) return undefined;
  const size = vfs.stat(h).size;
  const buf = new Uint8Array(size);
  let off = 0;
  while (off < size) {
    const n = vfs.read(h, buf.subarray(off), off);
    if (n === 0) break;
    off += n;
  }
  return new TextDecoder().decode(buf.subarray(0, off));
}

const names = (vfs: Vfs, p: string): string[] => vfs.readdir(node(vfs, p)).map((e) => e.name).sort();

describe('linux container fs()', () => {
  it('shows what the guest wrote and deleted on top of the untouched image', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const { c } = await runToExit(busybox, sh([
      'echo root-data > /root/x', 'echo new > /etc/newfile', 'echo changed > /etc/hostname', 'rm /etc/group', 'rm /bin/ls',
      'mkdir -p /srv/a/b && echo deep > /srv/a/b/f', 'ln -s /etc/newfile /root/link', 'echo tmp > /tmp/t',
    ].join(' && ')));
    const vfs = await c.fs();
    expect(vfs.readOnly).toBe(true);
    expect(readText(vfs, '/root/x')).toBe('root-data\n');
    expect(readText(vfs, '/etc/newfile')).toBe('new\n');
    expect(readText(vfs, '/etc/hostname')).toBe('changed\n');
    expect(readText(vfs, '/srv/a/b/f')).toBe('deep\n');
    expect(readText(vfs, '/root/link')).toBe('new\n'); // an absolute symlink resolves inside the view
    expect(node(vfs, '/etc/group')).toBeUndefined();
    expect(node(vfs, '/bin/ls', false)).toBeUndefined();
    expect(readText(vfs, '/etc/passwd')).toMatch(/^root:x:0:0:/); // untouched image file
    expect(vfs.readlink(node(vfs, '/bin/sh', false))).toBe('busybox');
    // (hosts: what a container gets when the image has no /etc/hosts, as under docker)
    expect(names(vfs, '/etc')).toEqual(['hostname', 'hosts', 'newfile', 'passwd']);
    expect(names(vfs, '/bin')).toContain('cat');
    expect(names(vfs, '/bin')).not.toContain('ls');
    expect(names(vfs, '/tmp')).toEqual([]); // /tmp is a tmpfs, not the root
    expect(() => vfs.createFile(vfs.root(), 'nope', 0o644)).toThrow(FsError);
    expect(() => vfs.unlink(node(vfs, '/etc'), 'passwd')).toThrow(/EROFS/);

    // a second container of the same image sees none of it
    const { stdout } = await runToExit(busybox, sh('cat /etc/hostname; test -e /root/x || echo no-x; test -e /etc/group && echo group'));
    expect(stdout).toBe('image-hostname\nno-x\ngroup\n');
  });

  it('honours a directory removed and made again (overlay opaque directory) and image whiteouts', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const { c } = await runToExit(layered, sh('rm -r /data && mkdir /data && echo fresh > /data/only && rm -r /links/rel && ls /opaque >/dev/null'));
    const vfs = await c.fs();
    expect(names(vfs, '/data')).toEqual(['only']);
    expect(readText(vfs, '/data/only')).toBe('fresh\n');
    expect(names(vfs, '/opaque')).toEqual(['new']); // the image's own opaque directory, untouched
    expect(node(vfs, '/links/rel', false)).toBeUndefined();
  });

  it('never reads host files through a symlink the guest planted', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const secret = path.join(work, 'secret');
    fs.writeFileSync(secret, 'host secret\n');
    const { c } = await runToExit(busybox, sh(`ln -s ${secret} /root/s && ln -s ${work} /root/d && ln -s ../../../../../../..${secret} /root/up`));
    const vfs = await c.fs();
    expect(readText(vfs, '/root/s')).toBeUndefined();
    expect(readText(vfs, '/root/up')).toBeUndefined();
    expect(node(vfs, '/root/d/secret')).toBeUndefined();
    expect(() => vfs.read(node(vfs, '/root/s', false), new Uint8Array(16), 0)).toThrow(FsError);
  });

  it('a read-only root shows the image; fs() waits for exit; remove() frees the filesystem', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const { c: ro } = await runToExit(busybox, sh('true', { readOnlyRoot: true }));
    expect(readText(await ro.fs(), '/etc/hostname')).toBe('image-hostname\n');

    const running = await backend.create(busybox, sh('echo a > /root/a; echo ready; sleep 30'));
    await running.start();
    const reader = running.stdout.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('ready\n');
    const early = await running.fs().then(() => undefined, (e: unknown) => e);
    expect(isSandboxError(early) && early.code).toBe('INVALID_STATE');
    await running.kill();
    await running.wait();
    reader.releaseLock();
    expect(fs.readdirSync(path.join(home, 'linux', 'containers'))).toEqual([]); // exited: nothing under containers/
    expect(readText(await running.fs(), '/root/a')).toBe('a\n');
    (running as LinuxContainer).remove();
    const gone = await running.fs().then(() => undefined, (e: unknown) => e);
    expect(isSandboxError(gone) && gone.code).toBe('INVALID_STATE');
  });
});

const NOBODY_RUNNER = (root: string) => `
import { createLinuxBackend } from '${root}/src/linux-backend/index.ts';
import { openOciDir } from '${root}/test/helpers/linux-images.ts';
import { resolvePath } from '${root}/src/fs/resolve.ts';
const [ociDir, home] = process.argv.slice(2);
const image = await openOciDir(ociDir);
const backend = createLinuxBackend({ home });
const out = { probe: await backend.probe(image) };
if (out.probe.ok) {
  const c = await backend.create(image, { argv: ['sh', '-c', 'rm -r /data && mkdir /data && echo fresh > /data/only && echo hi > /etc/new && rm /etc/group'],
    env: ['PATH=/bin'], cwd: '/', tty: false, stdin: false, readOnlyRoot: false, mounts: [], network: 'none', limits: {} });
  await c.start();
  const [, stderr, status] = await Promise.all([new Response(c.stdout).text(), new Response(c.stderr).text(), c.wait()]);
  const vfs = await c.fs();
  const at = (p) => resolvePath(vfs, vfs.root(), p, { followFinal: true, escape: 'clamp' }).node;
  const buf = new Uint8Array(64);
  out.result = { stderr, status, data: vfs.readdir(at('/data')).map((e) => e.name), etc: vfs.readdir(at('/etc')).map((e) => e.name).sort(),
    only: new TextDecoder().decode(buf.subarray(0, vfs.read(at('/data/only'), buf, 0))) };
}
console.log(JSON.stringify(out));
`;

describe('linux container fs() as an unprivileged user', () => {
  it('reads the final filesystem through a user namespace (userxattr overlay)', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    if (process.getuid?.() !== 0) return ctx.skip('the test switches to nobody, which needs root to start');
    try {
      execFileSync('setpriv', ['--version'], { stdio: 'ignore' });
    } catch {
      return ctx.skip('setpriv (util-linux) is missing');
    }
    const dir = path.join(work, 'nobody');
    fs.mkdirSync(dir, { mode: 0o755 });
    fs.chmodSync(work, 0o755);
    const ociDir = await buildLayeredImage(path.join(dir, 'img'));
    execFileSync('chmod', ['-R', 'a+rX', ociDir]);
    const src = path.join(dir, 'runner.ts');
    fs.writeFileSync(src, NOBODY_RUNNER(path.resolve(import.meta.dirname, '..')));
    const runner = path.join(dir, 'runner.mjs');
    await build({
      entryPoints: [src], bundle: true, platform: 'node', format: 'esm', outfile: runner, logLevel: 'error',
      conditions: ['node'], banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    });
    fs.chmodSync(runner, 0o644);
    const nobodyHome = path.join(dir, 'home');
    fs.mkdirSync(nobodyHome, { mode: 0o755 });
    fs.chownSync(nobodyHome, 65534, 65534);
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, runner, ociDir, nobodyHome], {
      encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: nobodyHome }, timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { probe: { ok: boolean; reason?: string }; result?: Record<string, unknown> };
    if (!out.probe.ok) {
      expect(out.probe.reason).toMatch(/user namespaces|overlayfs/);
      return ctx.skip(`unprivileged containers unavailable here: ${out.probe.reason}`);
    }
    expect(out.result).toEqual({ stderr: '', status: { code: 0, reason: 'exit' }, data: ['only'], etc: ['hostname', 'hosts', 'new', 'passwd'], only: 'fresh\n' });
    // the process exited: what it kept for fs() is gone (its namespace helper removes it just after the exit)
    expect(fs.existsSync(path.join(nobodyHome, 'linux', 'kept'))).toBe(true);
    expect(await entriesOnceRemoved(path.join(nobodyHome, 'linux', 'kept'))).toEqual([]);
  });
});
