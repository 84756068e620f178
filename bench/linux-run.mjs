#!/usr/bin/env node
// The Linux backend's figures, every peer measured in the same run (medians; ratios are what matter).
//   node bench/linux-run.mjs [--quick]
// 1. `busybox true` through the API (createLinuxBackend: create + start + wait, writable root = overlay,
//    and --read-only) / plain `bwrap` with the same namespaces on the same materialised rootfs,
//    both spawned from this process (target <= 1.5). crun on the same rootfs as a second peer.
// 2. `wasmbox run oci:DIR true` as a whole CLI process / `node -e 0` (target <= 1.3).
// 3. podman run --rm, where podman is installed.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const quick = process.argv.includes('--quick');
const RUNS = quick ? 15 : 41;
const CLI_RUNS = quick ? 7 : 15;

if (process.platform !== 'linux') {
  console.log('linux-run: not a Linux host; nothing to measure');
  process.exit(0);
}

const work = mkdtempSync(join(tmpdir(), 'wasmbox-bench-linux-'));
const home = join(work, 'home');
const entry = join(work, 'entry.ts');
writeFileSync(entry, `
export { createLinuxBackend } from ${JSON.stringify(join(root, 'src/linux-backend/index.ts'))};
export { buildBusyboxImage, openOciDir } from ${JSON.stringify(join(root, 'test/helpers/linux-images.ts'))};
`);
const bundle = join(work, 'linux.mjs');
await build({
  entryPoints: [entry], bundle: true, format: 'esm', platform: 'node', conditions: ['node'], outfile: bundle, logLevel: 'warning',
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
});
const { createLinuxBackend, buildBusyboxImage, openOciDir } = await import(pathToFileURL(bundle).href);

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const fmt = (ms) => `${ms.toFixed(2)} ms`;
async function timeIt(fn, reps = RUNS) {
  await fn(); // warm
  const times = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return median(times);
}
function runChild(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], ...opts });
    let err = '';
    c.stderr.on('data', (d) => (err += d));
    c.on('error', reject);
    c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}: ${err}`))));
  });
}

const ociDir = await buildBusyboxImage(join(work, 'busybox'));
const image = await openOciDir(ociDir);
const backend = createLinuxBackend({ home });
const probe = await backend.probe(image);
if (!probe.ok) {
  console.log(`linux-run: the Linux backend is unavailable here: ${probe.reason}`);
  rmSync(work, { recursive: true, force: true });
  process.exit(0);
}
const spec = (o = {}) => ({ argv: ['true'], env: ['PATH=/bin'], cwd: '/', tty: false, stdin: false, readOnlyRoot: false, mounts: [], network: 'none', limits: {}, ...o });
async function apiRun(o) {
  const c = await backend.create(image, spec(o));
  await c.start();
  await Promise.all([c.stdout.cancel(), c.stderr.cancel()]);
  const s = await c.wait();
  if (s.code !== 0) throw new Error(`container exited ${s.code}`);
}
await apiRun(); // materialises the image once
const rootfs = join(home, 'linux', 'layers', readdirSync(join(home, 'linux', 'layers')).find((n) => !n.startsWith('.')));

const bwrapArgs = ['--unshare-user', '--unshare-pid', '--unshare-net', '--unshare-uts', '--unshare-ipc', '--unshare-cgroup-try',
  '--die-with-parent', '--new-session', '--ro-bind', rootfs, '/', '--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp',
  '--clearenv', '--setenv', 'PATH', '/bin', '--', '/bin/true'];

console.log(`# linux-run (${RUNS} runs each, interleaved, medians; load average ${(await import('node:os')).loadavg()[0].toFixed(1)}; ${new Date().toISOString()})`);
// Interleaved rounds: a busy machine slows every variant alike.
async function interleaved(variants, reps = RUNS) {
  const times = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
  for (const f of Object.values(variants)) await f(); // warm
  for (let i = 0; i < reps; i++) {
    for (const [k, f] of Object.entries(variants)) {
      const t0 = performance.now();
      await f();
      times[k].push(performance.now() - t0);
    }
  }
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
}
const results = await interleaved({
  bwrap: () => runChild('bwrap', bwrapArgs),
  api: () => apiRun(),
  apiReadOnly: () => apiRun({ readOnlyRoot: true }),
});
console.log(`plain bwrap, same namespaces, same rootfs (ro):      ${fmt(results.bwrap)}`);
console.log(`API, writable root (overlay + seccomp + caps):       ${fmt(results.api)}   ratio ${(results.api / results.bwrap).toFixed(2)} (target <= 1.5)`);
console.log(`API, --read-only root:                               ${fmt(results.apiReadOnly)}   ratio ${(results.apiReadOnly / results.bwrap).toFixed(2)}`);

// crun on the same rootfs (rootless spec as crun generates it, then our rootfs and args)
if (spawnSync('crun', ['--version']).status === 0) {
  const bundleDir = join(work, 'crun-bundle');
  mkdirSync(bundleDir);
  const gen = spawnSync('crun', ['spec', '--rootless'], { cwd: bundleDir });
  if (gen.status === 0) {
    const cfgPath = join(bundleDir, 'config.json');
    const cfg = JSON.parse(await (await import('node:fs/promises')).readFile(cfgPath, 'utf8'));
    cfg.root = { path: rootfs, readonly: true };
    cfg.process.args = ['/bin/true'];
    cfg.process.terminal = false;
    cfg.mounts = cfg.mounts.filter((m) => !['/sys', '/dev/mqueue', '/sys/fs/cgroup'].includes(m.destination));
    writeFileSync(cfgPath, JSON.stringify(cfg));
    let n = 0;
    try {
      results.crun = await timeIt(() => runChild('crun', ['--root', join(work, 'crun-state'), 'run', '--bundle', bundleDir, `b${n++}`]));
      console.log(`crun run, same rootfs:                               ${fmt(results.crun)}   (API / crun ${(results.api / results.crun).toFixed(2)})`);
    } catch (e) {
      console.log(`crun run: does not run here (${e.message.split('\n')[0].trim()})`);
    }
  }
} else {
  console.log('crun: not installed');
}

// The CLI as a whole process vs node -e 0
const cli = join(root, 'bin', 'wasmbox.mjs');
if (existsSync(join(root, 'dist', 'cli.js'))) {
  const env = { ...process.env, WASMBOX_HOME: join(work, 'cli-home') };
  try {
    Object.assign(results, await interleaved({
      node: () => runChild(process.execPath, ['-e', '0']),
      cli: () => runChild(process.execPath, [cli, 'run', `oci:${ociDir}`, 'true'], { env }),
    }, CLI_RUNS));
    console.log(`node -e 0:                                           ${fmt(results.node)}`);
    console.log(`wasmbox run oci:DIR true (CLI process):              ${fmt(results.cli)}   ratio ${(results.cli / results.node).toFixed(2)} (target <= 1.3)`);
  } catch (e) {
    console.log(`CLI: failed (${e.message.split('\n')[0]})`);
  }
} else {
  console.log('CLI: dist/cli.js missing (node build.mjs first)');
}

if (spawnSync('podman', ['--version']).status === 0) {
  console.log('podman: installed, but this bench does not import the image into podman; not measured');
} else {
  console.log('podman: not installed here (DESIGN.md reference: podman run --rm busybox true 161 ms)');
}
rmSync(work, { recursive: true, force: true });
