#!/usr/bin/env node
// Memory per file of a layer tree, and applyTar speed, against memfs 4.x holding the same files (same run).
//   node --expose-gc bench/fs-memory.mjs [--quick]
// Builds a tar of FILES small files (nested directories, realistic names, 0-200 bytes of content each,
// 1% hard links, 2% symlinks) in memory, applies it with applyTar, and reports
// (heapUsed + external growth - content bytes) / files. Target: under 300 bytes a file plus content.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const quick = process.argv.includes('--quick');
const FILES = quick ? 20_000 : 100_000;
const REPS = quick ? 2 : 3;
if (!globalThis.gc) {
  console.error('run with node --expose-gc');
  process.exit(2);
}

// Bundle just the fs layer from source (dist may be mid-build while others work).
const work = await mkdtemp(join(tmpdir(), 'wasmbox-bench-mem-'));
const entry = join(work, 'entry.ts');
const { writeFile } = await import('node:fs/promises');
await writeFile(entry, `export { applyTar } from ${JSON.stringify(join(root, 'src/fs/apply-tar.ts'))};\n`);
const bundle = join(work, 'fs.mjs');
await build({
  entryPoints: [entry],
  bundle: true,
  format: 'esm',
  platform: 'node',
  conditions: ['node'],
  outfile: bundle,
  logLevel: 'warning',
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
});
const { applyTar } = await import(pathToFileURL(bundle).href);
const { Volume } = await import('memfs');
const { pack } = await import('tar-stream');

// ---- fixture ----
const stems = ['libfoo', 'index', 'README', 'config', '__init__', 'util', 'main', 'Makefile', 'LICENSE', 'test_helpers', 'locale', 'terminfo'];
const exts = ['.so.1', '.js', '.py', '.h', '', '.txt', '.json', '.mo', '.pyc'];
const dirNames = ['usr', 'lib', 'share', 'python3', 'site-packages', 'node_modules', 'include', 'doc', 'locale', 'x86_64-linux-gnu', 'zoneinfo', 'Europe'];
let seed = 12345;
const rand = (n) => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed % n;
};
const files = [];
let contentBytes = 0;
const dirs = new Set();
for (let i = 0; i < FILES; i++) {
  const depth = 2 + rand(4);
  const parts = [];
  for (let d = 0; d < depth; d++) parts.push(dirNames[rand(dirNames.length)] + (d === depth - 1 ? `-${rand(FILES / 40)}` : ''));
  const dir = parts.join('/');
  dirs.add(dir);
  const path = `${dir}/${stems[rand(stems.length)]}-${i}${exts[rand(exts.length)]}`;
  const r = rand(100);
  if (r === 0 && files.length > 0) files.push({ path, type: 'link', linkname: files[rand(files.length)].path });
  else if (r < 3 && files.length > 0) files.push({ path, type: 'symlink', linkname: `../${files[rand(files.length)].path}` });
  else {
    const size = rand(201);
    contentBytes += size;
    files.push({ path, type: 'file', data: new Uint8Array(size).fill(97 + (i % 26)) });
  }
}
// A hard link must point at a regular file: drop links to symlinks/links.
const kindOf = new Map(files.map((f) => [f.path, f.type]));
const usable = files.filter((f) => f.type !== 'link' || kindOf.get(f.linkname) === 'file');

async function makeTar(entries) {
  const p = pack();
  const chunks = [];
  p.on('data', (c) => chunks.push(c));
  const done = new Promise((r) => p.on('end', r));
  for (const e of entries) {
    await new Promise((resolve, reject) => {
      const cb = (err) => (err ? reject(err) : resolve());
      const h = { name: e.path, type: e.type, mode: 0o100644, mtime: new Date(1_700_000_000_000) };
      if (e.type === 'file') p.entry(h, e.data, cb);
      else p.entry({ ...h, linkname: e.linkname }, cb).end();
    });
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}
const tarBytes = new Uint8Array(await makeTar(usable));
const nFiles = usable.length;

const mem = () => {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const digest = (n) => `sha256:${n.toString(16).padStart(64, '0')}`;

// Memory of a structure = heap + external with it alive minus after dropping it (both after full GCs),
// so garbage from building it does not count.
const kept = [];
let lastDirs = 0;
async function keep(make) {
  const made = await make();
  if (made.root) lastDirs = countDirs(made.root);
  kept.push(made);
}
function countDirs(d) {
  let n = 1;
  for (const c of d.entries.values()) if (c.kind === 'dir') n += countDirs(c);
  return n;
}
async function measure(make) {
  const bytes = [];
  const ms = [];
  const cpu = [];
  for (let r = 0; r < REPS; r++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    await keep(make);
    ms.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
    const withIt = mem();
    kept.length = 0;
    const without = mem();
    bytes.push((withIt - without - contentBytes) / nFiles);
  }
  return { bytes: median(bytes), ms: median(ms), cpu: median(cpu) };
}
const ourRun = await measure(() => applyTar(undefined, new Response(tarBytes).body, { chainId: digest(1), diffId: digest(2) }));
const memfsRun = await measure(() => {
  const vol = new Volume();
  for (const f of usable) {
    const d = f.path.slice(0, f.path.lastIndexOf('/'));
    vol.mkdirSync(`/${d}`, { recursive: true });
    if (f.type === 'file') vol.writeFileSync(`/${f.path}`, f.data);
    else if (f.type === 'symlink') vol.symlinkSync(f.linkname, `/${f.path}`);
    else vol.linkSync(`/${f.linkname}`, `/${f.path}`);
  }
  return vol;
});
await rm(work, { recursive: true, force: true });
const ours = ourRun.bytes;
const theirs = memfsRun.bytes;
console.log(`files: ${nFiles} in ${lastDirs} directories (${(nFiles / lastDirs).toFixed(1)} a directory), content ${(contentBytes / 2 ** 20).toFixed(1)} MiB, tar ${(tarBytes.length / 2 ** 20).toFixed(1)} MiB`);
console.log(`layer tree (applyTar): ${ours.toFixed(0)} bytes/file beyond content (target < 300); build ${ourRun.ms.toFixed(0)} ms wall, ${ourRun.cpu.toFixed(0)} ms CPU = ${(nFiles / (ourRun.cpu / 1000) / 1000).toFixed(0)}k entries per CPU second`);
console.log(`memfs 4.x (mkdir -p + writeFileSync): ${theirs.toFixed(0)} bytes/file; build ${memfsRun.ms.toFixed(0)} ms wall, ${memfsRun.cpu.toFixed(0)} ms CPU`);
console.log(`ratio memory ours/memfs: ${(ours / theirs).toFixed(2)}; build CPU time ours/memfs: ${(ourRun.cpu / memfsRun.cpu).toFixed(2)}`);
