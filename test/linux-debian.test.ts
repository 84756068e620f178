// A real distribution: Debian 12 minbase (debootstrap, ~200 MB, thousands of files, merged /usr, dpkg's
// database, PAM, users and groups of its own) run through the API and the CLI as an image.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLinuxBackend } from '../src/linux-backend/index.ts';
import type { Backend, ContainerSpec } from '../src/runtime/types.ts';
import type { Image } from '../src/loader/source.ts';
import { busyboxAvailable, openOciDir, runToEnd, tempDir } from './helpers/linux-images.ts';
import { debianRootfs, writeDebianImage } from './helpers/debian.ts';
import { cliBin, ensureBuilt } from './helpers/cli.ts';

const work = tempDir('wasmbox-debian-');
let ociDir = '';
let image: Image;
let backend: Backend;
let skipReason: string | undefined = busyboxAvailable();

beforeAll(async () => {
  if (skipReason) return;
  const rootfs = debianRootfs();
  if ('skip' in rootfs) {
    skipReason = rootfs.skip;
    console.warn(`Debian image tests skipped: ${skipReason}`);
    return;
  }
  ociDir = writeDebianImage(rootfs.dir, path.join(work, 'debian'));
  image = await openOciDir(ociDir);
  backend = createLinuxBackend({ home: path.join(work, 'home') });
  const probe = await backend.probe(image);
  if (!probe.ok) skipReason = probe.reason;
}, 300_000);
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const spec = (argv: string[], o: Partial<ContainerSpec> = {}): ContainerSpec => ({
  argv, env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root'], cwd: '/', tty: false, stdin: false,
  readOnlyRoot: false, mounts: [], network: 'none', limits: {}, ...o,
});
const run = (argv: string[], o: Partial<ContainerSpec> = {}) => runToEnd(backend, image, spec(argv, o));

describe('Debian 12 minbase as an image', () => {
  it('is the distribution it says, with its package manager and its programs', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const osRelease = await run(['cat', '/etc/os-release']);
    expect(osRelease.stdout).toMatch(/^PRETTY_NAME="Debian GNU\/Linux 12 \(bookworm\)"$/m);
    const dpkg = await run(['dpkg-query', '-W', '-f', '${Package} ${Status}\\n']);
    expect(dpkg.status.code, dpkg.stderr).toBe(0);
    const installed = dpkg.stdout.split('\n').filter((l) => l.endsWith('install ok installed'));
    expect(installed.length).toBeGreaterThan(50);
    expect(installed.some((l) => l.startsWith('apt '))).toBe(true);
    const apt = await run(['apt-get', '--version']);
    expect(apt.stdout).toMatch(/^apt 2\.\d+/);
    // merged /usr: /bin is a link, and what it names runs
    const bash = await run(['/bin/bash', '-c', 'echo "$BASH_VERSION"; readlink /bin; perl -e \'print "perl ok\\n"\'']);
    expect(bash.stdout).toMatch(/^5\.2\.\S+\nusr\/bin\nperl ok\n$/);
  });

  it('makes users as root with its own tools, and runs as them (su, -u, groups from its /etc/group)', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const r = await run(['bash', '-c', 'useradd -m -u 1234 -G audio,video alice && su alice -c "id; echo \\$HOME; touch ~/made; stat -c %u:%g ~/made"']);
    expect(r.status.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('uid=1234(alice) gid=1234(alice) groups=1234(alice),29(audio),44(video)\n/home/alice\n1234:1234\n');
    const nobody = await run(['id'], { user: 'nobody' });
    expect(nobody.stdout).toBe('uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n');
    const daemon = await run(['id'], { user: 'daemon', groupAdd: ['audio'] });
    expect(daemon.stdout).toBe('uid=1(daemon) gid=1(daemon) groups=1(daemon),29(audio)\n');
  });

  it('read-only root: the image cannot be written, /tmp can', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const r = await run(['bash', '-c', 'touch /etc/x 2>&1; echo "rc=$?"; echo ok > /tmp/y && cat /tmp/y'], { readOnlyRoot: true });
    expect(r.stdout).toMatch(/Read-only file system\nrc=1\nok\n$/);
  });

  it('through the CLI: load, run, and the image as docker would list it', (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    ensureBuilt();
    const home = path.join(work, 'cli-home');
    const cli = (args: string[]) => spawnSync(process.execPath, [cliBin, '--home', home, ...args], { encoding: 'utf8' });
    const load = cli(['load', '-q', '-t', 'debian:12', '-i', ociDir]);
    expect(load.status, load.stderr).toBe(0);
    const r = cli(['run', '--rm', '-e', 'GREETING=hi', 'debian:12', 'bash', '-c', 'echo "$GREETING from $(. /etc/os-release; echo $ID $VERSION_ID)"; exit 3']);
    expect([r.status, r.stdout]).toEqual([3, 'hi from debian 12\n']);
    expect(cli(['images']).stdout).toMatch(/^debian\s+12\s/m);
  });
});
