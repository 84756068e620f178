#!/usr/bin/env node
// wasmbox's runtime figures, every peer measured in the same run (ratios, medians).
//   node build.mjs && node bench/run-runtime.mjs [--quick] [--only cpu|fs|cli|cps|big ...]
// 1. CPU-bound program (images/bench-cpu): wasmbox / node:wasi (target <= 1.05), plus
//    @bjorn3/browser_wasi_shim, @wasmer/wasi and the same C built natively with gcc.
// 2. Small-file program (images/bench-fs): wasmbox (in-memory overlay) / node:wasi on tmpfs (/dev/shm)
//    (target <= 0.5), plus the same peers (native gcc on /dev/shm).
// 3. `wasmbox run hello` as a whole CLI process / `node -e 0` (target <= 1.3).
// 4. In-process: containers created, run and waited for per second, from a cached image, timeout set.
// 5. A container of a 48 MiB image / of the same image without its big file, in Workers (report: ~1).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WASI as NodeWasi } from 'node:wasi';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const quick = process.argv.includes('--quick');
/** `--only cpu|fs|cli|cps`: run only that figure (repeatable). */
const only = process.argv.flatMap((a, i) => (a === '--only' ? [process.argv[i + 1]] : []));
const wanted = (row) => only.length === 0 || only.includes(row);
const REPS = quick ? 3 : 9;
/** Warm-up rounds before timing: the JS peers (wasmbox's fs and preview1 included) need a few to be optimised. */
const WARMUP = quick ? 1 : 3;
const CPU_MIB = quick ? 16 : 48;
const FS_FILES = quick ? 1000 : 3000;
const CLI_RUNS = quick ? 7 : 15;
const CPS_SECONDS = quick ? 2 : 4;

const { createRuntime } = await import(join(root, 'dist/index.js'));
const runtime = createRuntime({ home: mkdtempSync(join(tmpdir(), 'wasmbox-bench-home-')) });

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const fmt = (ms) => `${ms.toFixed(1)} ms`;
const ratio = (a, b) => (a / b).toFixed(3);

async function moduleOf(image, path) {
  const c = await runtime.create(image, {});
  const fs = await c.fs();
  let h = fs.root();
  for (const part of path.split('/').filter(Boolean)) h = fs.lookup(h, part);
  const bytes = new Uint8Array(fs.stat(h).size);
  fs.read(h, bytes, 0);
  return bytes;
}

const devNull = openSync('/dev/null', 'w');

function runNodeWasi(module, args, preopens = {}) {
  const wasi = new NodeWasi({ version: 'preview1', args, env: { PATH: '/bin' }, preopens, returnOnExit: true, stdout: devNull, stderr: devNull });
  const instance = new WebAssembly.Instance(module, wasi.getImportObject());
  const code = wasi.start(instance);
  if (code !== 0) throw new Error(`node:wasi exit ${code}`);
}

let shim;
async function runShim(module, args, withTmp) {
  shim ??= await import('@bjorn3/browser_wasi_shim');
  const { WASI, OpenFile, File, ConsoleStdout, PreopenDirectory } = shim;
  const fds = [new OpenFile(new File([])), new ConsoleStdout(() => {}), new ConsoleStdout(() => {})];
  if (withTmp) fds.push(new PreopenDirectory('/tmp', new Map()));
  const wasi = new WASI(args, ['PATH=/bin'], fds, { debug: false });
  const instance = new WebAssembly.Instance(module, { wasi_snapshot_preview1: wasi.wasiImport });
  const code = wasi.start(instance);
  if (code !== 0) throw new Error(`browser_wasi_shim exit ${code}`);
}

let wasmer;
async function runWasmer(module, args, withTmp) {
  if (!wasmer) {
    wasmer = await import('@wasmer/wasi');
    await wasmer.init();
  }
  const wasi = new wasmer.WASI({ args, env: { PATH: '/bin' } });
  if (withTmp) wasi.fs.createDir('/tmp');
  wasi.instantiate(module, {});
  const code = wasi.start();
  if (code !== 0) throw new Error(`@wasmer/wasi exit ${code}`);
}

/**
 * Times every peer REPS times, interleaved (one round runs each peer once, in a rotating order), so
 * that load from elsewhere on the machine falls on all of them alike. WARMUP rounds come first; a
 * peer that fails the first is reported as not running the program.
 */
async function peers(list) {
  const rows = list.map(([name]) => ({ name, times: [] }));
  for (let w = 0; w < WARMUP; w++) {
    for (const [i, [, fn]] of list.entries()) {
      if (rows[i].note) continue;
      try {
        await fn();
      } catch (e) {
        rows[i].note = `does not run it: ${String(e.message ?? e).split('\n')[0].slice(0, 80)}`;
      }
    }
  }
  for (let round = 0; round < REPS; round++) {
    for (let k = 0; k < list.length; k++) {
      const i = (round + k) % list.length;
      if (rows[i].note) continue;
      const t0 = performance.now();
      await list[i][1]();
      rows[i].times.push(performance.now() - t0);
    }
  }
  return rows.map((r) => ({ name: r.name, ms: r.note ? undefined : median(r.times), ...(r.note ? { note: r.note } : {}) }));
}

function gccBuild(src, out) {
  try {
    execFileSync('gcc', ['-O2', '-o', out, src], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function table(title, rows, base) {
  console.log(`\n${title}`);
  for (const r of rows) {
    const rel = r.ms !== undefined && base !== undefined ? `  ${ratio(r.ms, base)}x node:wasi` : '';
    console.log(`  ${r.name.padEnd(26)} ${r.ms !== undefined ? fmt(r.ms).padStart(10) : '         -'}${rel}${r.note ? '  ' + r.note : ''}`);
  }
}

const tmp = mkdtempSync(join(tmpdir(), 'wasmbox-bench-'));
console.log(`wasmbox runtime bench: node ${process.version}, load average ${(await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(' ')}`);
const figures = {};

// 1. CPU
if (wanted('cpu')) {
  const image = await runtime.image(join(root, 'images/bench-cpu.tar'));
  const bytes = await moduleOf(image, '/bench-cpu.wasm');
  const module = await WebAssembly.compile(bytes);
  const args = ['bench-cpu', String(CPU_MIB)];
  const native = join(tmp, 'bench-cpu');
  const hasGcc = gccBuild(join(root, 'images/src/bench-cpu.c'), native);
  const rows = await peers([
    ['wasmbox', async () => {
      const r = await runtime.run(image, { args: [String(CPU_MIB)] });
      if (r.code !== 0) throw new Error(`exit ${r.code}`);
    }],
    ['node:wasi', () => runNodeWasi(module, args)],
    ['@bjorn3/browser_wasi_shim', () => runShim(module, args, false)],
    ['@wasmer/wasi', () => runWasmer(module, args, false)],
    ['native (gcc -O2)', () => { if (!hasGcc) throw new Error('gcc missing'); execFileSync(native, [String(CPU_MIB)], { stdio: 'ignore' }); }],
  ]);
  const base = rows[1].ms;
  table(`CPU-bound: sha256 over ${CPU_MIB} MiB (median of ${REPS} after ${WARMUP} warm-up)`, rows, base);
  figures.cpu = rows[0].ms / base;
  console.log(`  => wasmbox / node:wasi = ${ratio(rows[0].ms, base)} (target <= 1.05)`);
}

// 2. Small files
if (wanted('fs')) {
  const image = await runtime.image(join(root, 'images/bench-fs.tar'));
  const bytes = await moduleOf(image, '/bench-fs.wasm');
  const module = await WebAssembly.compile(bytes);
  const args = ['bench-fs', String(FS_FILES), '/tmp/bench-fs'];
  const shmBase = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const shm = mkdtempSync(join(shmBase, 'wasmbox-bench-fs-'));
  const native = join(tmp, 'bench-fs');
  const hasGcc = gccBuild(join(root, 'images/src/bench-fs.c'), native);
  const rows = await peers([
    ['wasmbox (overlay)', async () => {
      const r = await runtime.run(image, { args: [String(FS_FILES), '/tmp/bench-fs'] });
      if (r.code !== 0) throw new Error(`exit ${r.code}: ${new TextDecoder().decode(r.stderr)}`);
    }],
    [`node:wasi (${shmBase})`, () => runNodeWasi(module, args, { '/tmp': shm })],
    ['@bjorn3/browser_wasi_shim', () => runShim(module, args, true)],
    ['@wasmer/wasi (memfs)', () => runWasmer(module, args, true)],
    [`native (gcc, ${shmBase})`, () => { if (!hasGcc) throw new Error('gcc missing'); execFileSync(native, [String(FS_FILES), join(shm, 'native')], { stdio: 'ignore' }); }],
  ]);
  rmSync(shm, { recursive: true, force: true });
  const base = rows[1].ms;
  table(`Small files: create/stat/list/read/rename/unlink ${FS_FILES} files (median of ${REPS} after ${WARMUP} warm-up)`, rows, base);
  figures.fs = rows[0].ms / base;
  console.log(`  => wasmbox / node:wasi = ${ratio(rows[0].ms, base)} (target <= 0.5)`);
}

// 3. CLI process
if (wanted('cli')) {
  const env = { ...process.env, WASMBOX_HOME: mkdtempSync(join(tmpdir(), 'wasmbox-bench-cli-')) };
  const cli = join(root, 'bin/wasmbox.cjs');
  const once = (argv) => {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, argv, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    const ms = performance.now() - t0;
    if (r.status !== 0) throw new Error(`${argv.join(' ')}: exit ${r.status}: ${r.stderr}`);
    return ms;
  };
  once([cli, 'run', 'hello']); // first run loads the bundled image into the store
  once(['-e', '0']);
  const a = [], b = [];
  for (let i = 0; i < CLI_RUNS; i++) { a.push(once([cli, 'run', 'hello'])); b.push(once(['-e', '0'])); }
  console.log(`\nCLI start-up (median of ${CLI_RUNS}, interleaved)`);
  console.log(`  wasmbox run hello          ${fmt(median(a)).padStart(10)}`);
  console.log(`  node -e 0                  ${fmt(median(b)).padStart(10)}`);
  figures.cli = median(a) / median(b);
  console.log(`  => wasmbox run hello / node -e 0 = ${ratio(median(a), median(b))} (target <= 1.3)`);
  rmSync(env.WASMBOX_HOME, { recursive: true, force: true });
}

// 4. Containers per second
if (wanted('cps')) {
  const image = await runtime.image(join(root, 'images/hello.tar'));
  await runtime.run(image, { limits: { timeoutMs: 10_000 } });
  for (const parallel of [1, 2]) {
    let n = 0;
    const end = performance.now() + CPS_SECONDS * 1000;
    await Promise.all(Array.from({ length: parallel }, async () => {
      while (performance.now() < end) {
        const r = await runtime.run(image, { limits: { timeoutMs: 10_000 } });
        if (r.code !== 0) throw new Error(`hello exit ${r.code}`);
        n++;
      }
    }));
    const rate = n / CPS_SECONDS;
    figures[`containersPerSecond${parallel}`] = rate;
    console.log(`\nContainers per second (hello, cached image, --timeout 10s, ${parallel} at a time): ${rate.toFixed(1)}`);
  }
}

// 5. A big image: each container's cost should not grow with the image (a Worker hands back only what
//    the guest changed). toolbox plus a 48 MiB file against toolbox alone, interleaved, in Workers.
if (wanted('big')) {
  const { createHash, randomBytes } = await import('node:crypto');
  const { gzipSync } = await import('node:zlib');
  const fsm = await import('node:fs');
  const dir = join(tmp, 'big-image');
  fsm.mkdirSync(dir);
  execFileSync('tar', ['-xf', join(root, 'images/toolbox.tar'), '-C', dir]);
  const blob = (name) => join(dir, 'blobs/sha256', name.slice(7));
  const sha = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
  const put = (b) => { const d = sha(b); fsm.writeFileSync(blob(d), b); return d; };
  const index = JSON.parse(fsm.readFileSync(join(dir, 'index.json'), 'utf8'));
  const manifest = JSON.parse(fsm.readFileSync(blob(index.manifests[0].digest), 'utf8'));
  const config = JSON.parse(fsm.readFileSync(blob(manifest.config.digest), 'utf8'));
  const src = join(tmp, 'big-src');
  fsm.mkdirSync(join(src, 'data'), { recursive: true });
  fsm.writeFileSync(join(src, 'data/big.bin'), randomBytes(48 << 20));
  const layer = execFileSync('tar', ['-C', src, '-cf', '-', 'data'], { maxBuffer: 1 << 30 });
  const gz = gzipSync(layer, { level: 1 });
  manifest.layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: put(gz), size: gz.length });
  config.rootfs.diff_ids.push(sha(layer));
  const cfg = Buffer.from(JSON.stringify(config));
  manifest.config = { ...manifest.config, digest: put(cfg), size: cfg.length };
  const man = Buffer.from(JSON.stringify(manifest));
  index.manifests = [{ ...index.manifests[0], digest: put(man), size: man.length }];
  fsm.writeFileSync(join(dir, 'index.json'), JSON.stringify(index));
  const big = await runtime.image(`oci:${dir}`);
  const small = await runtime.image(join(root, 'images/toolbox.tar'));
  const one = async (image) => {
    const t = performance.now();
    const r = await runtime.run(image, { args: ['sh', '-c', 'echo x > /tmp/y'], limits: { timeoutMs: 30_000 } });
    if (r.code !== 0) throw new Error(`exit ${r.code}`);
    return performance.now() - t;
  };
  for (let i = 0; i < 3; i++) { await one(big); await one(small); }
  const times = { big: [], small: [] };
  for (let i = 0; i < (quick ? 9 : 25); i++) { times.big.push(await one(big)); times.small.push(await one(small)); }
  figures.bigImage = median(times.big) / median(times.small);
  console.log(`\nA container of a 48 MiB image / of the same image without its big file (Workers, writes one file)`);
  console.log(`  big ${fmt(median(times.big))}, small ${fmt(median(times.small))} => ${ratio(median(times.big), median(times.small))} (report; ~1 means a container's cost does not grow with the image)`);
}

closeSync(devNull);
rmSync(tmp, { recursive: true, force: true });
console.log(`\nsummary ${JSON.stringify(Object.fromEntries(Object.entries(figures).map(([k, v]) => [k, Number(v.toFixed(3))])))}`);
