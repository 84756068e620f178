// The public WASI preview1 conformance suite (see preview1-conformance.test.ts) once more, each test's
// fixture copied into an in-memory Overlay instead of a host directory: the path a container's guest
// takes (the overlay, PathCache's cached directory look-ups and their retirement on rename, rmdir and
// unlink). Runs when WASI_TESTSUITE_DIR points at a checkout of the suite's prod/testsuite-base branch.
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Overlay } from '../src/fs/overlay.ts';
import { Preview1 } from '../src/sandbox/preview1/preview1.ts';

const suite = process.env.WASI_TESTSUITE_DIR;
const dirs = suite
  ? ['c', 'rust', 'assemblyscript'].map((lang) => join(suite, 'tests', lang, 'testsuite', 'wasm32-wasip1')).filter((d) => existsSync(d))
  : [];

interface Spec { args: string[]; env: Record<string, string>; exit_code: number; root: string | null; stdout?: string }

/** Copies a host directory tree into `dir` of the overlay (files, directories, symlinks). */
function copyIn(o: Overlay, dir: unknown, host: string): void {
  for (const name of readdirSync(host)) {
    const p = join(host, name);
    const st = lstatSync(p);
    if (st.isDirectory()) copyIn(o, o.mkdir(dir, name, st.mode & 0o7777), p);
    else if (st.isSymbolicLink()) o.symlink(dir, name, readlinkSync(p));
    else if (st.isFile()) {
      const h = o.createFile(dir, name, st.mode & 0o7777);
      const data = readFileSync(p);
      if (data.length > 0) o.write(h, data, 0);
    }
  }
}

describe.skipIf(dirs.length === 0)('wasi-testsuite preview1 over an in-memory overlay', () => {
  for (const dir of dirs) {
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.wasm')).sort()) {
      const name = file.slice(0, -'.wasm'.length);
      it(`${dir.split('/').at(-3)}/${name}`, () => {
        const specPath = join(dir, `${name}.json`);
        const spec: Spec = { args: [], env: {}, exit_code: 0, root: null, ...(existsSync(specPath) ? JSON.parse(readFileSync(specPath, 'utf8')) : {}) };
        const o = Overlay.prepare();
        if (spec.root) copyIn(o, o.root(), join(dir, spec.root));
        const dec = new TextDecoder();
        let stdout = '';
        let stderr = '';
        const p1 = new Preview1({
          args: [file, ...spec.args], env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
          preopens: spec.root ? [{ guestPath: '/', vfs: o, readOnly: false }] : [],
          stdin: { read: () => null }, stdout: (b) => { stdout += dec.decode(b); }, stderr: (b) => { stderr += dec.decode(b); },
        });
        const instance = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(join(dir, file))), { wasi_snapshot_preview1: p1.imports });
        const code = p1.start(instance);
        expect({ code, stderr: code === spec.exit_code ? '' : stderr }).toEqual({ code: spec.exit_code, stderr: '' });
        if (spec.stdout !== undefined) expect(stdout).toBe(spec.stdout);
      });
    }
  }
});
