// A real distribution's root filesystem for the Linux backend's tests: Debian 12 (bookworm) minbase made
// by debootstrap from Debian's archive, once per machine (a cache under the temp dir; .ci/run makes it
// before the tests), packed at test time into a one-layer OCI image.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeOciLayout, type ImageConfigInput } from './linux-images.ts';

export const DEBIAN_SUITE = 'bookworm';
const CACHE = path.join(os.tmpdir(), `wasmbox-test-debian-${DEBIAN_SUITE}-minbase`);

/** The rootfs directory, made now if needed (about 40 s), or why this host cannot have it. */
export function debianRootfs(): { dir: string } | { skip: string } {
  const given = process.env.WASMBOX_TEST_DEBIAN_ROOTFS;
  const dir = given || CACHE;
  if (fs.existsSync(path.join(dir, '.wasmbox-complete'))) return { dir };
  if (given) return { skip: `WASMBOX_TEST_DEBIAN_ROOTFS=${given} holds no finished rootfs` };
  if (process.getuid?.() !== 0) return { skip: 'debootstrap needs root' };
  if (spawnSync('debootstrap', ['--version']).status !== 0) return { skip: 'debootstrap is not installed (apt-get install debootstrap)' };
  const tmp = `${dir}.${process.pid}.tmp`;
  const r = spawnSync('debootstrap', ['--variant=minbase', DEBIAN_SUITE, tmp, 'http://deb.debian.org/debian'], { encoding: 'utf8' });
  if (r.status !== 0) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw new Error(`debootstrap failed (${r.status}): ${(r.stdout + r.stderr).split('\n').slice(-5).join('\n')}`);
  }
  fs.writeFileSync(path.join(tmp, '.wasmbox-complete'), '');
  try {
    fs.renameSync(tmp, dir);
  } catch {
    fs.rmSync(tmp, { recursive: true, force: true }); // another run finished first
  }
  return { dir };
}

/**
 * The rootfs as a one-layer OCI image in `out` (GNU tar, numeric owners; /dev, /proc and /sys left empty
 * as image builders leave them).
 */
export function writeDebianImage(rootfs: string, out: string, config: ImageConfigInput = { Cmd: ['bash'] }): string {
  fs.mkdirSync(out, { recursive: true });
  const tarPath = path.join(out, '..', `${path.basename(out)}.layer.tar`);
  const r = spawnSync('tar', ['--numeric-owner', '--xattrs', '-C', rootfs, '--exclude=./dev/*', '--exclude=./proc/*', '--exclude=./sys/*', '--exclude=./.wasmbox-complete', '-cf', tarPath, '.'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tar failed: ${r.stderr}`);
  const layer = fs.readFileSync(tarPath);
  fs.rmSync(tarPath);
  return writeOciLayout(out, [layer], config, undefined, false);
}
