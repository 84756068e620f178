#!/usr/bin/env node
// The small-file workload (images/bench-fs) in-process: wasmbox's preview1 over an overlay on the
// image's packed tree (what the sandbox Worker runs) against node:wasi with /tmp preopened on tmpfs,
// interleaved round by round in one process. For A/B work and CPU profiles of the guest's hot path:
//   node build.mjs && node bench/fs-small.mjs [--files N] [--rounds R] [--only wasmbox|node:wasi]
//     [--lib BUNDLE] [--wasm bench-fs.wasm]   (another build of src/index.ts; the module without the image)
//   node --cpu-prof --cpu-prof-dir=/tmp/prof bench/fs-small.mjs --only wasmbox --rounds 40
// The figure that counts is the bench/run-runtime.mjs row (the guest in a Worker, as users run it).
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WASI as NodeWasi } from 'node:wasi';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, dflt) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : dflt);
const FILES = Number(arg('--files', '3000'));
const ROUNDS = Number(arg('--rounds', '15'));
const WARMUP = Number(arg('--warmup', '5'));
const only = arg('--only', undefined);

const wb = await import(arg('--lib', join(root, 'dist/index.js')));
const { Overlay, packTree, packedVfs, Preview1, PREVIEW1_MODULE } = wb;
const home = mkdtempSync(join(tmpdir(), 'wasmbox-bench-home-'));
let bytes;
if (arg('--wasm', undefined)) {
  bytes = readFileSync(arg('--wasm'));
} else {
  const runtime = wb.createRuntime({ home });
  const view = await (await runtime.create(await runtime.image(join(root, 'images/bench-fs.tar')), {})).fs();
  const h = view.lookup(view.root(), 'bench-fs.wasm');
  bytes = new Uint8Array(view.stat(h).size);
  view.read(h, bytes, 0);
}
// The image's tree (/bench-fs.wasm, /tmp), packed as the sandbox Worker receives it.
const image = Overlay.prepare();
image.mkdir(image.root(), 'tmp', 0o1777);
image.write(image.createFile(image.root(), 'bench-fs.wasm', 0o755), bytes, 0);
const packed = packTree(image, { shared: false });
const module = await WebAssembly.compile(bytes);
const args = ['bench-fs', String(FILES), '/tmp/bench-fs'];
const devNull = openSync('/dev/null', 'w');
const shmBase = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
const shm = mkdtempSync(join(shmBase, 'wasmbox-bench-fs-'));

function runWasmbox() {
  const vfs = Overlay.prepare(packedVfs(packed), { quotaBytes: 2 ** 30 });
  let err = '';
  const p = new Preview1({
    args, env: ['PATH=/bin'], preopens: [{ guestPath: '/', vfs, readOnly: false }],
    stdin: { read: () => null }, stdout: () => {}, stderr: (b) => { err += new TextDecoder().decode(b); },
  });
  const instance = new WebAssembly.Instance(module, { [PREVIEW1_MODULE]: p.imports });
  const code = p.start(instance);
  if (code !== 0) throw new Error(`wasmbox exit ${code}: ${err}`);
}

function runNodeWasi() {
  const wasi = new NodeWasi({ version: 'preview1', args, env: { PATH: '/bin' }, preopens: { '/tmp': shm }, returnOnExit: true, stdout: devNull, stderr: devNull });
  const instance = new WebAssembly.Instance(module, wasi.getImportObject());
  const code = wasi.start(instance);
  if (code !== 0) throw new Error(`node:wasi exit ${code}`);
}

const peers = [['wasmbox', runWasmbox], ['node:wasi', runNodeWasi]].filter(([n]) => !only || n === only);
const times = peers.map(() => []);
for (let w = 0; w < WARMUP; w++) for (const [, fn] of peers) fn();
for (let r = 0; r < ROUNDS; r++) {
  for (let k = 0; k < peers.length; k++) {
    const i = (r + k) % peers.length;
    const t0 = performance.now();
    peers[i][1]();
    times[i].push(performance.now() - t0);
  }
}
const q = (xs, f) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * f))];
for (const [i, [name]] of peers.entries()) {
  console.log(`${name.padEnd(10)} median ${q(times[i], 0.5).toFixed(1)} ms  (p25 ${q(times[i], 0.25).toFixed(1)}, p75 ${q(times[i], 0.75).toFixed(1)})`);
}
if (peers.length === 2) {
  const ratios = times[0].map((t, r) => t / times[1][r]);
  console.log(`wasmbox / node:wasi: median ${q(ratios, 0.5).toFixed(3)} (p25 ${q(ratios, 0.25).toFixed(3)}, p75 ${q(ratios, 0.75).toFixed(3)}), ratio of medians ${(q(times[0], 0.5) / q(times[1], 0.5)).toFixed(3)}`);
}
closeSync(devNull);
rmSync(shm, { recursive: true, force: true });
rmSync(home, { recursive: true, force: true });
process.exit(0);
