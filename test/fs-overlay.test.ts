import { describe, expect, it } from 'vitest';
import { Overlay } from '../src/fs/overlay.ts';
import { FsError, type Vfs } from '../src/fs/vfs.ts';
import { runVfsSuite } from './vfs-suite.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A small lower built through an overlay and then frozen behind a read-only view. */
function sampleLower(): Overlay<unknown> {
  const o = Overlay.prepare();
  const root = o.root();
  const etc = o.mkdir(root, 'etc', 0o755);
  const f = o.createFile(etc, 'hosts', 0o644);
  o.write(f, enc.encode('127.0.0.1 localhost\n'), 0);
  o.link(root, 'hosts-link', f);
  o.symlink(root, 'hosts-sym', 'etc/hosts');
  const usr = o.mkdir(root, 'usr', 0o755);
  o.mkdir(usr, 'bin', 0o755);
  return o;
}

runVfsSuite('Overlay.prepare() over nothing', () => ({ vfs: Overlay.prepare() }));
runVfsSuite('Overlay.prepare() over an overlay', () => ({ vfs: Overlay.prepare(Overlay.view(sampleLower())) }));
runVfsSuite('Overlay.view() over an overlay', () => ({ vfs: Overlay.view(sampleLower()) }));

describe('Overlay basics', () => {
  it('starts with an empty root directory', () => {
    const o = Overlay.prepare();
    expect(o.readdir(o.root())).toEqual([]);
    expect(o.stat(o.root()).kind).toBe('dir');
  });
  it('throws FsError', () => {
    const o = Overlay.prepare();
    expect(() => o.rmdir(o.root(), 'x')).toThrow(FsError);
  });
});
