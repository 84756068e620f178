#!/usr/bin/env node
// Pull and push of a ~50 MB image through the loopback docker-registry: `wasmbox pull` / `wasmbox push`
// (whole CLI processes) against `skopeo copy` doing the same copy, interleaved in the same run.
//   node build.mjs && node bench/registry.mjs [--quick]
// Pull: `wasmbox pull` into a fresh store (each blob's size and digest verified as it streams in; diff_ids are
// checked when a layer is unpacked, as containerd does) vs `skopeo copy docker://REG/bench:1 oci:DIR:x` (verifies
// digests). Push: from a store / an OCI layout holding the image to a fresh registry each round (no blob already
// there, no mount). In-process rows: pullImage / pushImage from dist/index.js in this process. Also timed each
// round: `node -e 0` and `wasmbox --version` (what any CLI command costs before its work). Target: ratio <= 1.0.
// Figures and where the time goes: bench/README.md (Registry pull and push).
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 3 : 5;
const LAYERS = 4;
const LAYER_BYTES = (quick ? 6 : 25) * 2 ** 20;
const work = mkdtempSync(join(tmpdir(), 'wasmbox-bench-registry-'));
const children = new Set();

const sha = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
function freePort() {
  return new Promise((resolve) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); }); });
}

async function startRegistry(name) {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  writeFileSync(join(dir, 'config.yml'), `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\nhttp:\n  addr: 127.0.0.1:${port}\n`);
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_')));
  const child = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { env, stdio: 'ignore' });
  children.add(child);
  for (let i = 0; i < 300; i++) {
    try { await (await fetch(`http://127.0.0.1:${port}/v2/`)).arrayBuffer(); break; } catch { await new Promise((r) => setTimeout(r, 30)); }
  }
  return { host: `127.0.0.1:${port}`, stop: () => new Promise((r) => { child.once('exit', r); child.kill('SIGTERM'); children.delete(child); }) };
}

function run(cmd, args, env = {}) {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 1 << 26 });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} -> ${r.status}\n${r.stderr}`);
  return ms;
}
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

// ---- fixture: an OCI layout with LAYERS gzip layers, half random half text, ~LAYER_BYTES each ----
function tarOf(files) {
  const enc = new TextEncoder();
  const parts = [];
  for (const [name, data] of files) {
    const h = new Uint8Array(512);
    const put = (s, off) => h.set(enc.encode(s), off);
    put(name, 0); put('0000644\0', 100); put('0000000\0', 108); put('0000000\0', 116);
    put(data.length.toString(8).padStart(11, '0') + '\0', 124); put('14544000000\0', 136);
    h[156] = 48; put('ustar\x0000', 257); h.fill(0x20, 148, 156);
    let sum = 0; for (const b of h) sum += b;
    put(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    parts.push(h, data, new Uint8Array((512 - (data.length % 512)) % 512));
  }
  parts.push(new Uint8Array(1024));
  return Buffer.concat(parts);
}
const layout = join(work, 'layout');
mkdirSync(join(layout, 'blobs/sha256'), { recursive: true });
const putBlob = (b) => { const d = sha(b); writeFileSync(join(layout, 'blobs/sha256', d.slice(7)), b); return { digest: d, size: b.length }; };
const layers = [];
const diffIds = [];
let total = 0;
for (let i = 0; i < LAYERS; i++) {
  const files = [];
  for (let f = 0; f < 16; f++) {
    const n = Math.floor(LAYER_BYTES / 16);
    const data = f % 2 === 0 ? randomBytes(n) : Buffer.from('wasmbox registry bench line of text\n'.repeat(Math.ceil(n / 36)).slice(0, n));
    files.push([`layer${i}/file${f}.bin`, data]);
  }
  const tar = tarOf(files);
  const gz = gzipSync(tar, { level: 6 });
  diffIds.push(sha(tar));
  layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...putBlob(gz) });
  total += gz.length;
}
const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/true'] }, rootfs: { type: 'layers', diff_ids: diffIds } }));
const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...putBlob(config) }, layers }));
const m = putBlob(manifest);
writeFileSync(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
writeFileSync(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m, annotations: { 'org.opencontainers.image.ref.name': 'bench' } }] }));

const wasmbox = join(root, 'bin/wasmbox.cjs');
const loadAtStart = loadavg()[0];
try {
  const reg = await startRegistry('source');
  run('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${layout}:bench`, `docker://${reg.host}/bench:1`], { HOME: join(work, 'seed-home') });
  // A store holding the image, to push from.
  const pushHome = join(work, 'push-home');
  run(process.execPath, [wasmbox, '--home', pushHome, 'pull', '-q', `${reg.host}/bench:1`]);

  const { pullImage, pushImage, LayoutStore } = await import(join(root, 'dist/index.js'));
  const pushStore = await LayoutStore.open(pushHome);
  const pull = { wasmbox: [], skopeo: [], library: [], noCa: [] };
  const withoutCa = process.env.NODE_EXTRA_CA_CERTS ? { NODE_EXTRA_CA_CERTS: '' } : undefined;
  const push = { wasmbox: [], skopeo: [], library: [] };
  const startup = { node: [], version: [] };
  for (let round = 0; round <= ROUNDS; round++) {
    // Start-up alone: `node -e 0` and `wasmbox --version` (what the CLI costs before any work).
    const n0 = run(process.execPath, ['-e', '0']);
    const v0 = run(process.execPath, [wasmbox, '--version']);
    const h = join(work, `pull-${round}`);
    const w = run(process.execPath, [wasmbox, '--home', h, 'pull', '-q', `${reg.host}/bench:1`]);
    // Node 20 parses NODE_EXTRA_CA_CERTS at start (~100 ms for a whole system bundle): where it is set, the
    // same pull also runs without it, to show what that costs (Node 22+ parse it when TLS first needs it).
    let noCa = 0;
    if (withoutCa) {
      const hc = join(work, `pull-noca-${round}`);
      noCa = run(process.execPath, [wasmbox, '--home', hc, 'pull', '-q', `${reg.host}/bench:1`], withoutCa);
      rmSync(hc, { recursive: true, force: true });
    }
    const s = run('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${reg.host}/bench:1`, `oci:${join(work, `skopeo-${round}`)}:x`], { HOME: join(work, `skopeo-home-${round}`) });
    rmSync(h, { recursive: true, force: true });
    rmSync(join(work, `skopeo-${round}`), { recursive: true, force: true });
    const lib = await LayoutStore.open(join(work, `lib-${round}`));
    let t = performance.now();
    await pullImage(lib, `${reg.host}/bench:1`);
    const l = performance.now() - t;
    rmSync(lib.dir, { recursive: true, force: true });
    // Push: each to a fresh registry (no blob already there, nothing to mount).
    const r1 = await startRegistry(`push-w-${round}`);
    const pw = run(process.execPath, [wasmbox, '--home', pushHome, 'push', '-q', `${reg.host}/bench:1`, `${r1.host}/bench:1`]);
    await r1.stop();
    const r2 = await startRegistry(`push-s-${round}`);
    const ps = run('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${layout}:bench`, `docker://${r2.host}/bench:1`], { HOME: join(work, `skopeo-push-home-${round}`) });
    await r2.stop();
    const r3 = await startRegistry(`push-l-${round}`);
    t = performance.now();
    await pushImage(pushStore, `${reg.host}/bench:1`, `${r3.host}/bench:1`);
    const pl = performance.now() - t;
    await r3.stop();
    if (round === 0) continue; // warm-up
    startup.node.push(n0); startup.version.push(v0);
    if (withoutCa) pull.noCa.push(noCa);
    pull.wasmbox.push(w); pull.skopeo.push(s); pull.library.push(l);
    push.wasmbox.push(pw); push.skopeo.push(ps); push.library.push(pl);
    console.error(`round ${round}: pull ${w.toFixed(0)} / ${s.toFixed(0)} ms (in-process ${l.toFixed(0)}), push ${pw.toFixed(0)} / ${ps.toFixed(0)} ms (in-process ${pl.toFixed(0)}), node -e 0 ${n0.toFixed(0)}, --version ${v0.toFixed(0)}`);
  }
  await reg.stop();
  const mb = (total / 2 ** 20).toFixed(1);
  // The machine is shared: the load average goes with every figure.
  console.log(`load average ${loadAtStart.toFixed(2)} at the start, ${loadavg()[0].toFixed(2)} at the end; ${process.version}${withoutCa ? ', NODE_EXTRA_CA_CERTS set' : ''}`);
  const spread = (x) => `${Math.min(...x).toFixed(0)}-${Math.max(...x).toFixed(0)}`;
  const ratios = (a, b) => a.map((x, i) => x / b[i]);
  const spreadRatio = (r) => `${Math.min(...r).toFixed(2)}-${Math.max(...r).toFixed(2)}`;
  const row = (name, x, key) => `| ${name} (${mb} MiB, ${LAYERS} layers) | ${median(x[key]).toFixed(0)} ms (${spread(x[key])}) | skopeo copy ${median(x.skopeo).toFixed(0)} ms (${spread(x.skopeo)}) | **${(median(x[key]) / median(x.skopeo)).toFixed(2)}** (per round ${spreadRatio(ratios(x[key], x.skopeo))}) | <= 1.0 |`;
  console.log('| figure | wasmbox | peer | ratio of medians | target |\n|---|---|---|---|---|');
  console.log(row('pull, CLI', pull, 'wasmbox'));
  if (withoutCa) console.log(row('pull, CLI, NODE_EXTRA_CA_CERTS unset', pull, 'noCa'));
  console.log(row('push, CLI', push, 'wasmbox'));
  console.log(row('pullImage, in-process', pull, 'library'));
  console.log(row('pushImage, in-process', push, 'library'));
  console.log(`| start-up: node -e 0 / wasmbox --version | ${median(startup.node).toFixed(0)} ms / ${median(startup.version).toFixed(0)} ms | | | |`);
} finally {
  for (const c of children) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
}
