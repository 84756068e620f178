#!/usr/bin/env node
// Loading a large gzip layer into memory vs `tar -xzf` of the same layer into a tmpfs, same run.
//   node bench/load.mjs [--quick]
// Generates an OCI layout whose one layer is ~100 MB of gzip (many files of mixed sizes, part random,
// part text), then times (median of REPS) openImage + applyTar of that layer, and `tar -xzf` into /dev/shm.
// Target: ratio <= 1.2.
import { spawnSync } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const quick = process.argv.includes('--quick');
const REPS = quick ? 3 : 5;
const TARGET_GZ = (quick ? 25 : 100) * 2 ** 20;

const work = await mkdtemp(join(tmpdir(), 'wasmbox-bench-load-'));
const shm = existsSync('/dev/shm') ? await mkdtemp('/dev/shm/wasmbox-bench-') : await mkdtemp(join(tmpdir(), 'wasmbox-bench-x-'));

// Bundle the library from source (dist may be stale or mid-build while others work).
const bundle = join(work, 'wasmbox.mjs');
await build({
  entryPoints: [join(root, 'src/index.ts')], bundle: true, format: 'esm', platform: 'node', conditions: ['node'],
  outfile: bundle, logLevel: 'warning',
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
});
const wb = await import(pathToFileURL(bundle).href);
const { openLocalImage, applyTar } = wb;

// ---- fixture: one tar layer of many files ----
const enc = new TextEncoder();
function header(name, size, type = '0', mode = 0o644) {
  const h = new Uint8Array(512);
  const put = (s, off) => h.set(enc.encode(s), off);
  put(name, 0);
  put(mode.toString(8).padStart(7, '0') + '\0', 100);
  put('0000000\0', 108);
  put('0000000\0', 116);
  put(size.toString(8).padStart(11, '0') + '\0', 124);
  put('14544000000\0', 136);
  h[156] = type.charCodeAt(0);
  put('ustar\x0000', 257);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}
const words = 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua '.split(' ');
function text(n) {
  const parts = [];
  let len = 0;
  while (len < n) { const w = words[(Math.random() * words.length) | 0] + (Math.random() < 0.1 ? '\n' : ' '); parts.push(w); len += w.length; }
  return enc.encode(parts.join('').slice(0, n));
}
function content(n) {
  // about half incompressible (binaries, compressed assets), half text
  return Math.random() < 0.5 ? randomBytes(n) : text(n);
}

const chunks = [];
let gzEstimate = 0;
let files = 0;
let dirs = 0;
let d = 0;
while (gzEstimate < TARGET_GZ) {
  const dir = `usr/share/pkg${d++}/`;
  chunks.push(header(dir, 0, '5', 0o755));
  dirs++;
  for (let i = 0; i < 200 && gzEstimate < TARGET_GZ; i++) {
    const r = Math.random();
    const size = r < 0.8 ? 100 + ((Math.random() * 4000) | 0) : r < 0.98 ? 4096 + ((Math.random() * 60_000) | 0) : r < 0.998 ? 65_536 + ((Math.random() * 1_000_000) | 0) : 4_000_000;
    const data = content(size);
    chunks.push(header(`${dir}f${i}`, size), data, new Uint8Array((512 - (size % 512)) % 512));
    gzEstimate += data instanceof Buffer ? size : size * 0.3;
    files++;
  }
}
chunks.push(new Uint8Array(1024));
const tarLen = chunks.reduce((n, c) => n + c.length, 0);
const tar = new Uint8Array(tarLen);
{ let p = 0; for (const c of chunks) { tar.set(c, p); p += c.length; } }
const t0gz = performance.now();
const gz = gzipSync(tar);
const gzMs = performance.now() - t0gz;

const sha = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const layout = join(work, 'layout');
const blob = async (data) => {
  const digest = sha(data);
  await mkdir(join(layout, 'blobs/sha256'), { recursive: true });
  await writeFile(join(layout, 'blobs/sha256', digest.slice(7)), data);
  return { digest, size: data.length };
};
const layer = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...(await blob(gz)) };
const diffId = sha(tar);
const config = { mediaType: 'application/vnd.oci.image.config.v1+json', ...(await blob(enc.encode(JSON.stringify({ os: 'linux', architecture: 'amd64', config: {}, rootfs: { type: 'layers', diff_ids: [diffId] } })))) };
const manifest = { mediaType: 'application/vnd.oci.image.manifest.v1+json', ...(await blob(enc.encode(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: [layer] })))) };
await writeFile(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
await writeFile(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'big' } }] }));
const layerPath = join(layout, 'blobs/sha256', layer.digest.slice(7));
console.log(`layer: ${files} files in ${dirs} dirs, tar ${(tarLen / 2 ** 20).toFixed(1)} MiB, gzip ${(gz.length / 2 ** 20).toFixed(1)} MiB (gzip -6 took ${(gzMs / 1000).toFixed(1)} s)`);

// ---- measure ----
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function wasmbox() {
  const t0 = performance.now();
  const image = await openLocalImage(`oci:${layout}:big`);
  const l = image.layers[0];
  const tree = await applyTar(undefined, await l.open(), { chainId: l.chainId, diffId: l.diffId });
  const ms = performance.now() - t0;
  if (!tree) throw new Error('no tree');
  return ms;
}

async function untar() {
  const dest = join(shm, 'x');
  await rm(dest, { recursive: true, force: true });
  await mkdir(dest);
  const t0 = performance.now();
  const r = spawnSync('tar', ['-xzf', layerPath, '-C', dest]);
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`tar failed: ${r.stderr}`);
  return ms;
}

async function stages() {
  const image = await openLocalImage(`oci:${layout}:big`);
  const l = image.layers[0];
  const drain = async (s) => { const r = s.getReader(); for (;;) { const { done } = await r.read(); if (done) return; } };
  let t0 = performance.now();
  await drain(await l.blob());
  const blobMs = performance.now() - t0;
  t0 = performance.now();
  await drain(await l.open());
  const openMs = performance.now() - t0;
  t0 = performance.now();
  await applyTar(undefined, wb.bytesSource(tar).stream(), { chainId: l.chainId, diffId: l.diffId });
  const applyMs = performance.now() - t0;
  return { blobMs, openMs, applyMs };
}

const ours = [];
const peer = [];
await wasmbox(); // warm-up: JIT and page cache
for (let i = 0; i < REPS; i++) {
  peer.push(await untar());
  ours.push(await wasmbox());
}
const st = await stages();
console.log(`stages (one run each): read + verify gzip blob ${st.blobMs.toFixed(0)} ms; that + gunzip + verify diff_id ${st.openMs.toFixed(0)} ms; applyTar alone from memory ${st.applyMs.toFixed(0)} ms`);
const a = median(ours);
const b = median(peer);
const mib = gz.length / 2 ** 20;
console.log(`openImage + applyTar (verify gzip blob, gunzip, verify diff_id, build tree): ${a.toFixed(0)} ms  (${(mib / (a / 1000)).toFixed(1)} MiB/s of gzip)  runs: ${ours.map((x) => x.toFixed(0)).join(', ')}`);
console.log(`tar -xzf into tmpfs: ${b.toFixed(0)} ms  (${(mib / (b / 1000)).toFixed(1)} MiB/s of gzip)  runs: ${peer.map((x) => x.toFixed(0)).join(', ')}`);
console.log(`ratio (wasmbox / tar -xzf): ${(a / b).toFixed(2)}  (target <= 1.2)`);

await rm(work, { recursive: true, force: true });
await rm(shm, { recursive: true, force: true });
