#!/usr/bin/env node
// Filesystem figures, every peer measured in the same run (medians; ratios are what matter).
//   node build.mjs && node --expose-gc bench/fs-ops.mjs [--quick]
// 1. A layer tree of FILES small files (built with applyTar): packTree time, bytes per file of the
//    packed form vs the heap per file of the Inode tree.
// 2. Path lookups (resolvePath, 4 components): treeVfs, packedVfs, Overlay over each, memfs; each peer in
//    its own process, so that no peer's JIT state (a call site seeing several Vfs classes) taxes another.
// 3. Overlay writes: create+write of small files and stats vs memfs 4.x (the peer from DESIGN.md).
// 4. Overlay.diff of a container that changed CHANGED files, and the tar it makes.
// 5. Handing the tree to a Worker: postMessage of the packed tree, shared vs copied buffers.
import { Worker } from 'node:worker_threads';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const quick = process.argv.includes('--quick');
const peerArg = process.argv.includes('--peer') ? process.argv[process.argv.indexOf('--peer') + 1] : undefined;
const FILES = quick ? 5_000 : 20_000;
const DIRS = Math.max(1, Math.floor(FILES / 100));
const LOOKUPS = quick ? 50_000 : 200_000;
const CREATES = quick ? 10_000 : 40_000;
const CHANGED = quick ? 500 : 2_000;
const REPS = quick ? 3 : 5;

const wb = await import(join(root, 'dist/index.js'));
const { Overlay, applyTar, writeTar, treeVfs, packTree, packedVfs, packedSize, resolvePath } = wb;
const { Volume } = await import('memfs');

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const gc = globalThis.gc ?? (() => {});
const heap = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};
function timeIt(fn, reps = REPS) {
  const times = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  return median(times);
}
async function timeItAsync(fn, reps = REPS) {
  const times = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return median(times);
}
const rate = (n, ms) => `${Math.round((n / ms) * 1000).toLocaleString('en')}/s`;
const enc = new TextEncoder();
const digest = (n) => `sha256:${n.toString(16).padStart(64, '0')}`;

// ---- 1. the layer tree and its packed form
const content = enc.encode('x'.repeat(100));
function* entries() {
  const base = { mode: 0o755, uid: 0, gid: 0, mtimeNs: 1_700_000_000_000_000_000n };
  yield { ...base, path: 'srv', kind: 'dir' };
  for (let d = 0; d < DIRS; d++) {
    yield { ...base, path: `srv/d${d}`, kind: 'dir' };
    yield { ...base, path: `srv/d${d}/sub`, kind: 'dir' };
  }
  for (let i = 0; i < FILES; i++) {
    yield { ...base, mode: 0o644, path: `srv/d${i % DIRS}/sub/file-${i}.txt`, kind: 'file', data: content };
  }
}
const tarBytes = new Uint8Array(await new Response(writeTar(entries())).arrayBuffer());
const before = heap();
const tree = await applyTar(undefined, new Response(tarBytes).body, { chainId: digest(1), diffId: digest(2) });
const treeHeap = heap() - before;
const lower = treeVfs(tree);

const packMs = peerArg ? 0 : timeIt(() => packTree(lower, { shared: true }));
const packed = !peerArg || peerArg.includes('packed') ? packTree(lower, { shared: true }) : undefined;
const size = packed ? packedSize(packed) : undefined;
if (!peerArg) {
const metaPerFile = (size.total - size.data) / FILES;
console.log(`## 1. tree of ${FILES.toLocaleString('en')} files x ${content.length} B in ${DIRS * 2 + 1} dirs`);
console.log(`packTree: ${packMs.toFixed(1)} ms (${rate(FILES, packMs)} files)`);
console.log(`packed bytes per file (excluding content): ${metaPerFile.toFixed(0)} B  ` +
  `[nodes ${size.nodes}, entries ${size.entries}, strings ${size.strings}, data ${size.data}]`);
if (globalThis.gc) {
  console.log(`Inode tree heap per file (including content): ${(treeHeap / FILES).toFixed(0)} B ` +
    `-> excluding the ${content.length} B content: ${(treeHeap / FILES - content.length).toFixed(0)} B`);
  console.log(`ratio packed/Inode metadata per file: ${(metaPerFile / (treeHeap / FILES - content.length)).toFixed(2)}`);
} else {
  console.log('(run with node --expose-gc for the Inode tree heap per file)');
}
}

// ---- 2. lookups
const paths = [];
for (let i = 0; i < 1000; i++) {
  const f = (i * 7919) % FILES;
  paths.push(`/srv/d${f % DIRS}/sub/file-${f}.txt`);
}
const opts = { followFinal: true, escape: 'clamp' };
const lookupRate = (vfs, n = LOOKUPS) => {
  const r = vfs.root();
  const ms = timeIt(() => {
    for (let i = 0; i < n; i++) vfs.stat(resolvePath(vfs, r, paths[i % paths.length], opts).node);
  });
  return n / ms;
};
const PEERS = ['treeVfs (Inode tree)', 'packedVfs', 'Overlay over treeVfs', 'Overlay over packedVfs', 'memfs statSync'];
if (peerArg) {
  let rate;
  if (peerArg === 'memfs statSync') {
    const vol = Volume.fromJSON({});
    for (let d = 0; d < DIRS; d++) vol.mkdirSync(`/srv/d${d}/sub`, { recursive: true });
    for (let i = 0; i < FILES; i++) vol.writeFileSync(`/srv/d${i % DIRS}/sub/file-${i}.txt`, content);
    const run = (n) => timeIt(() => {
      for (let i = 0; i < n; i++) vol.statSync(paths[i % paths.length]);
    });
    run(LOOKUPS / 5);
    rate = LOOKUPS / run(LOOKUPS);
  } else {
    // Only the measured peer is built: a class that never sees another Vfs kind stays monomorphic.
    const vfs = {
      'treeVfs (Inode tree)': () => lower,
      packedVfs: () => packedVfs(packed),
      'Overlay over treeVfs': () => Overlay.prepare(lower, { nextIno: tree.nextIno }),
      'Overlay over packedVfs': () => Overlay.prepare(packedVfs(packed)),
    }[peerArg]();
    lookupRate(vfs, LOOKUPS / 5);
    rate = lookupRate(vfs);
  }
  console.log(JSON.stringify({ rate }));
  process.exit(0);
}
console.log(`\n## 2. resolve + stat of 4-component paths (${LOOKUPS.toLocaleString('en')} per run, one process per peer)`);
const rates = new Map();
for (const name of PEERS) {
  const args = [fileURLToPath(import.meta.url), '--peer', name, ...(quick ? ['--quick'] : [])];
  const out = execFileSync(process.execPath, args, { encoding: 'utf8' }).trim().split('\n').pop();
  rates.set(name, JSON.parse(out).rate);
}
const peer = rates.get('memfs statSync');
for (const name of PEERS) {
  const r = rates.get(name);
  console.log(`${name.padEnd(24)} ${Math.round(r * 1000).toLocaleString('en').padStart(11)}/s  ratio to memfs ${(r / peer).toFixed(2)}`);
}
console.log(`packedVfs / treeVfs: ${(rates.get('packedVfs') / rates.get('treeVfs (Inode tree)')).toFixed(2)}, ` +
  `Overlay over treeVfs / treeVfs: ${(rates.get('Overlay over treeVfs') / rates.get('treeVfs (Inode tree)')).toFixed(2)}`);

// ---- 3. overlay writes
console.log(`\n## 3. create + write ${CREATES.toLocaleString('en')} small files, then stat each`);
const small = enc.encode('hello world\n');
let o;
const createMs = timeIt(() => {
  o = Overlay.prepare();
  const r = o.root();
  let dir = r;
  for (let i = 0; i < CREATES; i++) {
    if (i % 100 === 0) dir = o.mkdir(r, `d${i}`, 0o755);
    o.write(o.createFile(dir, `f${i}`, 0o644), small, 0);
  }
});
const statMs = timeIt(() => {
  const r = o.root();
  for (let i = 0; i < CREATES; i++) o.stat(o.lookup(o.lookup(r, `d${i - (i % 100)}`), `f${i}`));
});
let mv;
const memfsCreateMs = timeIt(() => {
  mv = Volume.fromJSON({});
  for (let i = 0; i < CREATES; i++) {
    if (i % 100 === 0) mv.mkdirSync(`/d${i}`);
    mv.writeFileSync(`/d${i - (i % 100)}/f${i}`, small);
  }
});
const memfsStatMs = timeIt(() => {
  for (let i = 0; i < CREATES; i++) mv.statSync(`/d${i - (i % 100)}/f${i}`);
});
console.log(`Overlay creates ${rate(CREATES, createMs)}, memfs ${rate(CREATES, memfsCreateMs)}: ratio ${(memfsCreateMs / createMs).toFixed(1)}x`);
console.log(`Overlay stats   ${rate(CREATES, statMs)}, memfs ${rate(CREATES, memfsStatMs)}: ratio ${(memfsStatMs / statMs).toFixed(1)}x`);
{
  const h0 = heap();
  const keep = Overlay.prepare();
  const r = keep.root();
  let dir = r;
  for (let i = 0; i < CREATES; i++) {
    if (i % 100 === 0) dir = keep.mkdir(r, `d${i}`, 0o755);
    keep.write(keep.createFile(dir, `f${i}`, 0o644), small, 0);
  }
  const per = (heap() - h0) / CREATES;
  if (globalThis.gc) console.log(`Overlay heap per created file (${small.length} B content): ${per.toFixed(0)} B`);
  globalThis.__keep = keep;
}

// ---- 4. diff
console.log(`\n## 4. Overlay.diff after changing ${CHANGED.toLocaleString('en')} of the ${FILES.toLocaleString('en')} lower files`);
const changed = Overlay.prepare(lower, { nextIno: tree.nextIno });
for (let i = 0; i < CHANGED; i++) {
  const p = paths[i % paths.length].replace(/file-\d+/, `file-${i}`);
  const h = resolvePath(changed, changed.root(), `/srv/d${i % DIRS}/sub/file-${i}.txt`, opts).node;
  changed.write(h, enc.encode('changed'), 0);
  void p;
}
let diffBytes = 0;
const diffMs = await timeItAsync(async () => {
  diffBytes = (await new Response(changed.diff()).arrayBuffer()).byteLength;
});
console.log(`diff: ${diffMs.toFixed(1)} ms, ${diffBytes.toLocaleString('en')} B of tar (walks the whole merged tree)`);

// ---- 5. to a Worker
console.log('\n## 5. postMessage of the packed tree to a Worker and back (round trip)');
const worker = new Worker(
  `const { parentPort } = require('node:worker_threads');
   parentPort.on('message', (m) => parentPort.postMessage(m.nodes.byteLength));`,
  { eval: true },
);
const roundTrip = async (p) => {
  const t0 = performance.now();
  worker.postMessage(p);
  await new Promise((r) => worker.once('message', r));
  return performance.now() - t0;
};
const copied = packTree(lower, { shared: false });
const sharedMs = [];
const copiedMs = [];
for (let i = 0; i < REPS * 2; i++) {
  sharedMs.push(await roundTrip(packed));
  copiedMs.push(await roundTrip(copied));
}
await worker.terminate();
console.log(`shared: ${median(sharedMs).toFixed(2)} ms, copied: ${median(copiedMs).toFixed(2)} ms ` +
  `(${(size.total / 2 ** 20).toFixed(1)} MiB): ratio ${(median(copiedMs) / median(sharedMs)).toFixed(1)}x`);
