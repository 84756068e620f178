#!/usr/bin/env node
// The Linux backend's figures, every peer measured in the same run (medians; ratios are what matter).
//   node bench/linux-run.mjs [--quick]
// 1. `busybox true` through the API (createLinuxBackend: create + start + wait, writable root = overlay,
//    and --read-only) / plain `bwrap` with the same namespaces on the same materialised rootfs,
//    both spawned from this process (target <= 1.5). crun on the same rootfs as a second peer.
// 2. `wasmbox run oci:DIR true` as a whole CLI process / `node -e 0` (target <= 1.3), and the floor of any
//    Node CLI that runs a container: `node` requiring child_process and spawning the plain bwrap of 1.
// 3. `podman run --rm --network none` of the same image (loaded into a podman store of its own, in a
//    temp dir), where podman is installed: runc with a containers.conf of its own (CONTAINERS_CONF),
//    because crun refuses this host's hybrid cgroup layout and the default ulimits exceed its hard limits.
// Every figure is a median with its interquartile range (q1-q3) over interleaved rounds.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs';
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
const quantile = (xs, q) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(s.length * q))]; };
const fmt = (ms) => `${ms.toFixed(2)} ms`;
const spread = { };
const fmtSpread = (k) => (spread[k] ? ` [${spread[k][0].toFixed(1)}-${spread[k][1].toFixed(1)}]` : '');
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
  for (const [k, v] of Object.entries(times)) spread[k] = [quantile(v, 0.25), quantile(v, 0.75)];
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
}
const results = await interleaved({
  bwrap: () => runChild('bwrap', bwrapArgs),
  api: () => apiRun(),
  apiReadOnly: () => apiRun({ readOnlyRoot: true }),
});
console.log(`plain bwrap, same namespaces, same rootfs (ro):      ${fmt(results.bwrap)}${fmtSpread('bwrap')}`);
console.log(`API, writable root (overlay + seccomp + caps):       ${fmt(results.api)}${fmtSpread('api')}   ratio ${(results.api / results.bwrap).toFixed(2)} (target <= 1.5)`);
console.log(`API, --read-only root:                               ${fmt(results.apiReadOnly)}${fmtSpread('apiReadOnly')}   ratio ${(results.apiReadOnly / results.bwrap).toFixed(2)}`);

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
const cli = join(root, 'bin', 'wasmbox.cjs');
if (existsSync(join(root, 'dist', 'cli.cjs'))) {
  // As a user would: the image loaded into the store once, then run by name (the first run, which
  // materialises the layers and writes the code cache, is the interleaved helper's warm-up).
  const env = { ...process.env, WASMBOX_HOME: join(work, 'cli-home') };
  try {
    await runChild(process.execPath, [cli, 'load', '-q', '-t', 'bench-busybox', '-i', ociDir], { env });
    // The least any Node CLI that starts a container pays: Node, node:child_process and one plain bwrap
    // (no image to read, no overlay, no seccomp or cgroups), as its own process like the CLI.
    const floor = join(work, 'floor.cjs');
    writeFileSync(floor, `require('node:child_process').spawn('bwrap', ${JSON.stringify(bwrapArgs)}, { stdio: 'inherit' })
      .on('close', (code) => { process.exitCode = code; });\n`);
    Object.assign(results, await interleaved({
      node: () => runChild(process.execPath, ['-e', '0']),
      floor: () => runChild(process.execPath, [floor]),
      cli: () => runChild(process.execPath, [cli, 'run', 'bench-busybox', 'true'], { env }),
    }, CLI_RUNS));
    console.log(`node -e 0:                                           ${fmt(results.node)}${fmtSpread('node')}`);
    console.log(`node + child_process + plain bwrap (a Node CLI's floor): ${fmt(results.floor)}${fmtSpread('floor')}   ratio ${(results.floor / results.node).toFixed(2)}`);
    console.log(`wasmbox run bench-busybox true (CLI process):        ${fmt(results.cli)}${fmtSpread('cli')}   ratio ${(results.cli / results.node).toFixed(2)} (target <= 1.3; ${(results.cli - results.floor).toFixed(1)} ms above the floor)`);
  } catch (e) {
    console.log(`CLI: failed (${e.message.split('\n')[0]})`);
  }
} else {
  console.log('CLI: dist/cli.cjs missing (node build.mjs first)');
}

if (spawnSync('podman', ['--version']).status === 0) {
  await podmanPeer();
} else {
  console.log('podman: not installed here');
}

// An embedder that holds much memory: starting any process from Node forks this whole process, so plain
// bwrap's start grows with it; a container starts in the spare launcher made while the previous one ran.
{
  const ballast = [];
  for (let i = 0; i < 256; i++) ballast.push(Buffer.alloc(1 << 20, i));
  const rss = (await import('node:process')).memoryUsage().rss / 1048576;
  const big = await interleaved({ bigBwrap: () => runChild('bwrap', bwrapArgs), bigApi: () => apiRun() });
  console.log(`with ${rss.toFixed(0)} MB resident: plain bwrap ${fmt(big.bigBwrap)}${fmtSpread('bigBwrap')}, API writable root ${fmt(big.bigApi)}${fmtSpread('bigApi')}   ratio ${(big.bigApi / big.bigBwrap).toFixed(2)}`);
  ballast.length = 0;
}

/** `podman run --rm` of the same image against the API's writable root, in a podman store of its own. */
async function podmanPeer() {
  const dir = join(work, 'podman');
  mkdirSync(dir);
  const runtime = spawnSync('runc', ['--version']).status === 0 ? 'runc' : 'crun';
  const conf = join(dir, 'containers.conf');
  writeFileSync(conf, [
    '[containers]',
    // podman's default nofile/nproc limits are above this host's hard limits: setrlimit fails in the runtime
    'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]',
    '[engine]',
    `runtime = "${runtime}"`,
    'cgroup_manager = "cgroupfs"',
    'events_logger = "none"',
    '',
  ].join('\n'));
  const env = { ...process.env, CONTAINERS_CONF: conf };
  const base = ['--root', join(dir, 'storage'), '--runroot', join(dir, 'run')];
  // podman names the image after the directory, which must be lowercase
  const imageDir = join(tmpdir(), `wasmbox-bench-podman-${process.pid}`);
  cpSync(ociDir, imageDir, { recursive: true });
  const pulled = spawnSync('podman', [...base, 'pull', '-q', `oci:${imageDir}`], { env, encoding: 'utf8' });
  rmSync(imageDir, { recursive: true, force: true });
  const id = pulled.stdout.trim().split('\n').pop();
  try {
    if (pulled.status !== 0 || !id) throw new Error(`podman pull oci:DIR failed: ${pulled.stderr.trim()}`);
    const podman = () => runChild('podman', [...base, 'run', '--rm', '--network', 'none', id, '/bin/true'], { env });
    await podman();
    Object.assign(results, await interleaved({ podmanApi: () => apiRun(), podman }, quick ? 5 : 11));
    console.log(`podman run --rm --network none (${runtime}, own store): ${fmt(results.podman)}${fmtSpread('podman')}   API / podman ${(results.podmanApi / results.podman).toFixed(3)} (API ${fmt(results.podmanApi)} in the same rounds)`);
  } catch (e) {
    console.log(`podman (${runtime}): does not run here: ${e.message.split('\n').filter(Boolean).slice(-1)[0]?.trim()}`);
  } finally {
    spawnSync('podman', [...base, 'system', 'reset', '--force'], { env, stdio: 'ignore' });
  }
}
rmSync(work, { recursive: true, force: true });
