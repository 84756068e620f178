// The public WASI preview1 conformance suite (WebAssembly/wasi-testsuite, prebuilt tests as on its
// prod/testsuite-base branch), found through WASI_TESTSUITE_DIR: its cases, and one case run on Preview1
// with the preopens a test gives it. The suite is not part of this repository.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { Preview1, type Preopen } from '../../src/sandbox/preview1/preview1.ts';

export interface SuiteSpec { args: string[]; env: Record<string, string>; exit_code: number; root: string | null; stdout?: string }
export interface SuiteCase { title: string; dir: string; file: string; spec: SuiteSpec }

const suite = process.env.WASI_TESTSUITE_DIR;

/** Every case of the suite, or none (with the reason printed once) when WASI_TESTSUITE_DIR is not a checkout. */
export function suiteCases(testName: string): SuiteCase[] {
  const dirs = suite
    ? ['c', 'rust', 'assemblyscript'].map((lang) => join(suite, 'tests', lang, 'testsuite', 'wasm32-wasip1')).filter((d) => existsSync(d))
    : [];
  if (!suite) console.log(`${testName} skipped: set WASI_TESTSUITE_DIR to a wasi-testsuite checkout (branch prod/testsuite-base)`);
  else if (dirs.length === 0) console.log(`${testName} skipped: no tests/*/testsuite/wasm32-wasip1 under ${suite}`);
  return dirs.flatMap((dir) => readdirSync(dir).filter((f) => f.endsWith('.wasm')).sort().map((file) => {
    const name = file.slice(0, -'.wasm'.length);
    const specPath = join(dir, `${name}.json`);
    const spec: SuiteSpec = { args: [], env: {}, exit_code: 0, root: null, ...(existsSync(specPath) ? JSON.parse(readFileSync(specPath, 'utf8')) : {}) };
    return { title: `${dir.split('/').at(-3)}/${name}`, dir, file, spec };
  }));
}

/** Runs a case as wasmtime's adapter does (its args and env), expecting its exit code and stdout. */
export function runSuiteCase(c: SuiteCase, preopens: Preopen[]): void {
  const dec = new TextDecoder();
  let stdout = '';
  let stderr = '';
  const p1 = new Preview1({
    args: [c.file, ...c.spec.args], env: Object.entries(c.spec.env).map(([k, v]) => `${k}=${v}`), preopens,
    stdin: { read: () => null }, stdout: (b) => { stdout += dec.decode(b); }, stderr: (b) => { stderr += dec.decode(b); },
  });
  const instance = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(join(c.dir, c.file))), { wasi_snapshot_preview1: p1.imports });
  const code = p1.start(instance);
  expect({ code, stderr: code === c.spec.exit_code ? '' : stderr }).toEqual({ code: c.spec.exit_code, stderr: '' });
  if (c.spec.stdout !== undefined) expect(stdout).toBe(c.spec.stdout);
}
