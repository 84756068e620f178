// A Worker guest hands back only its root's upper (what it changed), and container.fs() rebuilds the
// overlay over the image's tree: it must show exactly what the same guest leaves on this thread.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Overlay } from '../src/fs/overlay.ts';
import { packTree } from '../src/fs/packed-tree.ts';
import { packedVfs } from '../src/fs/packed-vfs.ts';
import type { Vfs } from '../src/fs/vfs.ts';
import { createRuntime, type Runtime } from '../src/runtime/runtime.ts';
import { buildWorker } from './helpers/sandbox-worker.ts';

const toolbox = fileURLToPath(new URL('../images/toolbox.tar', import.meta.url));
let tmp: string;
let workers: Runtime;
let inline: Runtime;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'wasmbox-final-fs-'));
  workers = createRuntime({ home: join(tmp, 'home'), workerUrl: await buildWorker(tmp) });
  inline = createRuntime({ home: join(tmp, 'home'), inline: { stdout: () => {}, stderr: () => {} } });
});
afterAll(async () => {
  await workers?.close();
  rmSync(tmp, { recursive: true, force: true });
});

/** Every path's kind, mode, owner, size, links and content (times differ from run to run). */
function listing(vfs: Vfs): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: unknown, path: string) => {
    for (const e of vfs.readdir(dir as never).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const h = vfs.lookup(dir as never, e.name)!;
      const st = vfs.stat(h);
      const p = `${path}/${e.name}`;
      let body = '';
      if (st.kind === 'file') {
        const buf = new Uint8Array(st.size);
        let n = 0;
        while (n < st.size) {
          const got = vfs.read(h, buf.subarray(n), n);
          if (got === 0) break;
          n += got;
        }
        body = Buffer.from(buf.subarray(0, n)).toString('base64');
      } else if (st.kind === 'symlink') body = vfs.readlink(h);
      out[p] = `${st.kind} ${st.mode.toString(8)} ${st.uid}:${st.gid} size=${st.size} nlink=${st.nlink} ino=${st.ino} ${body}`;
      if (st.kind === 'dir') walk(h, p);
    }
  };
  walk(vfs.root(), '');
  return out;
}

const SCRIPT = [
  'echo new > /tmp/new', 'mkdir -p /tmp/d/e', 'echo deep > /tmp/d/e/f', 'echo more >> /etc/motd', 'rm /etc/hostname',
  'ln -s ../etc/motd /tmp/link', 'ln /tmp/new /tmp/hard', 'mv /etc /etc2', 'rm /bin/cat', 'mkdir /root/x', 'rmdir /root/x',
  'touch /tmp/empty', 'seq 1 20000 > /tmp/big',
].join(' && ');

describe("a Worker guest's final filesystem", () => {
  it('shows exactly what the same guest leaves when it runs on this thread', async () => {
    const w = await workers.run(toolbox, { args: ['sh', '-c', SCRIPT], limits: { timeoutMs: 30_000 } });
    const i = await inline.run(toolbox, { args: ['sh', '-c', SCRIPT] });
    expect([w.code, i.code]).toEqual([0, 0]);
    const fromWorker = await w.container.fs();
    // Rebuilt over the image's tree (not a packed copy of the whole merged tree).
    expect(fromWorker).toBeInstanceOf(Overlay);
    const expected = listing(await i.container.fs());
    expect(listing(fromWorker)).toEqual(expected);
    expect(expected['/tmp/new']).toMatch(/nlink=2/);
    expect(expected['/etc/motd']).toBeUndefined();
    expect(expected['/etc2/motd']).toBeDefined();
    expect(expected['/bin/cat']).toBeUndefined();
    // It is read-only, and it is a real overlay: its diff is the guest's changes as a layer.
    expect(() => fromWorker.mkdir(fromWorker.root(), 'nope', 0o755)).toThrow(/EROFS/);
    const tar = new Uint8Array(await new Response((fromWorker as Overlay).diff()).arrayBuffer());
    expect(Buffer.from(tar).toString('latin1')).toContain('.wh.cat');
  });

  it('a container that changed nothing shows the image; the next container starts from the image again', async () => {
    const quiet = await workers.run(toolbox, { args: ['true'], limits: { timeoutMs: 30_000 } });
    const image = await inline.run(toolbox, { args: ['true'] });
    expect(listing(await quiet.container.fs())).toEqual(listing(await image.container.fs()));
    const after = await workers.run(toolbox, { args: ['sh', '-c', 'test -e /tmp/new; echo $?'], limits: { timeoutMs: 30_000 } });
    expect(new TextDecoder().decode(after.stdout)).toBe('1\n');
  });
});

describe('Overlay.exportUpper / fromUpper', () => {
  it('round-trips an overlay over a packed tree, and refuses what it did not write', () => {
    const base = Overlay.prepare();
    const etc = base.mkdir(base.root(), 'etc', 0o755);
    base.write(base.createFile(etc, 'a', 0o644), new TextEncoder().encode('lower a'), 0);
    base.write(base.createFile(etc, 'b', 0o600), new TextEncoder().encode('lower b'), 0);
    const lower = packedVfs(packTree(base as never));
    const ov = Overlay.prepare(lower);
    const e = ov.lookup(ov.root(), 'etc')!;
    ov.write(ov.lookup(e, 'a')!, new TextEncoder().encode('UPPER'), 0);
    ov.setTimes(ov.lookup(e, 'b')!, 5n, 7n);
    ov.link(ov.root(), 'b2', ov.lookup(e, 'b')!);
    ov.unlink(e, 'b');
    ov.symlink(ov.root(), 's', 'etc/a');
    const exported = ov.exportUpper()!;
    expect(exported.transfer.length).toBeGreaterThan(0);
    const back = Overlay.fromUpper(lower, structuredClone(exported.upper));
    expect(listing(back)).toEqual(listing(ov));
    expect(listing(back)['/etc/a']).toContain(Buffer.from('UPPER  a').toString('base64').slice(0, 4));
    expect(() => Overlay.fromUpper(lower, { ...exported.upper, format: 'x' } as never)).toThrow(/not an overlay upper/);
    expect(() => Overlay.fromUpper(lower, { ...exported.upper, root: -1000 })).toThrow(/out of range/);
    // An overlay over a lower whose handles are objects cannot be exported as data.
    expect(Overlay.prepare(base).exportUpper()).toBeUndefined();
  });
});
