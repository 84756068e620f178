// Runs the public WASI preview1 conformance suite (WebAssembly/wasi-testsuite, prebuilt tests as on its
// prod/testsuite-base branch) against `wasmbox run` as a whole CLI process, the way the suite's adapters
// drive wasmtime (`--dir ROOT::/` becomes `-v COPY:/`, `--env K=V` becomes `-e K=V`), and against
// node:wasi for comparison. The suite is not part of this repository:
//   WASI_TESTSUITE_DIR=/path/to/wasi-testsuite node bench/wasi-testsuite.mjs [--no-node]
import { spawnSync } from 'node:child_process';
import { closeSync, cpSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const suite = process.env.WASI_TESTSUITE_DIR;
if (!suite) {
  console.log('skipped: set WASI_TESTSUITE_DIR to a wasi-testsuite checkout (branch prod/testsuite-base)');
  process.exit(0);
}
const dirs = ['c', 'rust', 'assemblyscript'].map((l) => join(suite, 'tests', l, 'testsuite', 'wasm32-wasip1')).filter((d) => existsSync(d));
if (dirs.length === 0) {
  console.log(`skipped: no tests/*/testsuite/wasm32-wasip1 under ${suite}`);
  process.exit(0);
}
const cli = fileURLToPath(new URL('../bin/wasmbox.cjs', import.meta.url));

function cases() {
  const out = [];
  for (const dir of dirs) {
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.wasm')).sort()) {
      const name = basename(file, '.wasm');
      const specPath = join(dir, `${name}.json`);
      const spec = { args: [], env: {}, exit_code: 0, root: null, ...(existsSync(specPath) ? JSON.parse(readFileSync(specPath, 'utf8')) : {}) };
      out.push({ dir, file, name: `${basename(join(dir, '..', '..'))}/${name}`, spec });
    }
  }
  return out;
}

function withRoot(c, f) {
  if (!c.spec.root) return f(undefined);
  const tmp = mkdtempSync(join(tmpdir(), 'wasmbox-wts-'));
  try {
    cpSync(join(c.dir, c.spec.root), join(tmp, 'root'), { recursive: true });
    return f(join(tmp, 'root'));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function viaWasmbox(c) {
  return withRoot(c, (root) => {
    const argv = [cli, 'run'];
    for (const [k, v] of Object.entries(c.spec.env)) argv.push('-e', `${k}=${v}`);
    if (root) argv.push('-v', `${root}:/`);
    argv.push(join(c.dir, c.file), ...c.spec.args);
    const r = spawnSync(process.execPath, argv, { encoding: 'utf8', input: '' });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  });
}

async function viaNodeWasi(c) {
  const { WASI } = await import('node:wasi');
  return withRoot(c, (root) => {
    const tmp = mkdtempSync(join(tmpdir(), 'wasmbox-wts-out-'));
    const out = openSync(join(tmp, 'out'), 'w');
    let code;
    try {
      const wasi = new WASI({ version: 'preview1', args: [c.file, ...c.spec.args], env: c.spec.env, preopens: root ? { '/': root } : {}, stdout: out, stderr: out, returnOnExit: true });
      code = wasi.start(new WebAssembly.Instance(new WebAssembly.Module(readFileSync(join(c.dir, c.file))), wasi.getImportObject()));
    } catch (e) {
      code = `trap (${e.message})`;
    }
    closeSync(out);
    const stdout = readFileSync(join(tmp, 'out'), 'utf8');
    rmSync(tmp, { recursive: true, force: true });
    return { code, stdout, stderr: stdout };
  });
}

const ok = (c, r) => r.code === c.spec.exit_code && (c.spec.stdout === undefined || r.stdout === c.spec.stdout);

const all = cases();
const runners = [['wasmbox run', viaWasmbox]];
if (!process.argv.includes('--no-node')) runners.push(['node:wasi', viaNodeWasi]);
for (const [label, run] of runners) {
  const failed = [];
  for (const c of all) {
    const r = await run(c);
    if (!ok(c, r)) failed.push(`${c.name}: exit ${r.code} (want ${c.spec.exit_code}) ${String(r.stderr).trim().split('\n')[0] ?? ''}`);
  }
  const passed = all.length - failed.length;
  console.log(`${label}: ${passed}/${all.length} passed (${(100 * passed / all.length).toFixed(1)}%)`);
  for (const f of failed) console.log(`  FAIL ${f.slice(0, 160)}`);
}
