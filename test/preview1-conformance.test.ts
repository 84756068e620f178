// Runs the public WASI preview1 conformance suite (WebAssembly/wasi-testsuite, prebuilt tests as on its
// prod/testsuite-base branch) against Preview1, when WASI_TESTSUITE_DIR points at a checkout of it.
// The suite is not part of this repository. Each test runs as wasmtime's adapter runs it: its "root"
// fixture directory (a fresh copy) preopened as "/", its args and env, expecting its exit code and stdout.
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Vfs } from '../src/fs/vfs.ts';
import { hostDirVfs } from '../src/host/node/host-vfs.ts';
import { Preview1, type Preopen } from '../src/sandbox/preview1/preview1.ts';

const suite = process.env.WASI_TESTSUITE_DIR;
const dirs = suite
  ? ['c', 'rust', 'assemblyscript'].map((lang) => join(suite, 'tests', lang, 'testsuite', 'wasm32-wasip1')).filter((d) => existsSync(d))
  : [];
if (!suite) console.log('preview1-conformance skipped: set WASI_TESTSUITE_DIR to a wasi-testsuite checkout (branch prod/testsuite-base)');
else if (dirs.length === 0) console.log(`preview1-conformance skipped: no tests/*/testsuite/wasm32-wasip1 under ${suite}`);

interface Spec { args: string[]; env: Record<string, string>; exit_code: number; root: string | null; stdout?: string }

describe.skipIf(dirs.length === 0)('wasi-testsuite preview1', () => {
  for (const dir of dirs) {
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.wasm')).sort()) {
      const name = file.slice(0, -'.wasm'.length);
      it(`${dir.split('/').at(-3)}/${name}`, () => {
        const specPath = join(dir, `${name}.json`);
        const spec: Spec = { args: [], env: {}, exit_code: 0, root: null, ...(existsSync(specPath) ? JSON.parse(readFileSync(specPath, 'utf8')) : {}) };
        const preopens: Preopen[] = [];
        let scratch: string | undefined;
        if (spec.root) {
          scratch = mkdtempSync(join(tmpdir(), 'wasmbox-wts-'));
          cpSync(join(dir, spec.root), scratch, { recursive: true, verbatimSymlinks: true });
          preopens.push({ guestPath: '/', vfs: hostDirVfs(scratch, { readOnly: false }) as Vfs, readOnly: false });
        }
        const dec = new TextDecoder();
        let stdout = '';
        let stderr = '';
        try {
          const p1 = new Preview1({
            args: [file, ...spec.args], env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`), preopens,
            stdin: { read: () => null }, stdout: (b) => { stdout += dec.decode(b); }, stderr: (b) => { stderr += dec.decode(b); },
          });
          const instance = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(join(dir, file))), { wasi_snapshot_preview1: p1.imports });
          const code = p1.start(instance);
          expect({ code, stderr: code === spec.exit_code ? '' : stderr }).toEqual({ code: spec.exit_code, stderr: '' });
          if (spec.stdout !== undefined) expect(stdout).toBe(spec.stdout);
        } finally {
          if (scratch) rmSync(scratch, { recursive: true, force: true });
        }
      });
    }
  }
});
