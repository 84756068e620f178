import type { Command } from 'commander';
import * as fs from 'node:fs';
import { resolve } from 'node:path';
import { SandboxError } from '../../errors.ts';
import type { Container, Mount, PublishedPort } from '../../runtime/types.ts';
import type { Image } from '../../loader/source.ts';
import type { Platform } from '../../loader/types.ts';
import type { LayoutStore } from '../../loader/store/layout-store.ts';
import { exitCodeForStatus, reportError } from '../exit-codes.ts';
import { noteCodePath } from '../program.ts';
import { writeAllSync } from '../write-all.ts';

interface RunFlags {
  rm?: boolean;
  detach?: boolean;
  name?: string;
  env: string[];
  envFile: string[];
  volume: string[];
  workdir?: string;
  entrypoint?: string;
  memory?: string;
  timeout?: string;
  interactive?: boolean;
  tty?: boolean;
  network?: string;
  publish: string[];
  readOnly?: boolean;
  platform?: string;
  outputLimit?: string;
  pidsLimit?: string;
  storageOpt: string[];
  cpus?: string;
  user?: string;
  groupAdd: string[];
  capAdd: string[];
  capDrop: string[];
  hostname?: string;
}

const collect = (value: string, previous: string[]) => [...previous, value];

export function register(program: Command): void {
  program
    .command('run')
    .description('Run a command in a new container (WASI images in a sandbox)')
    .argument('<image>', 'image name in the store, image reference (oci:DIR, ./image.tar, docker-archive:FILE) or FILE.wasm')
    .argument('[args...]', 'command and arguments (replace the image\'s Cmd)')
    .option('--rm', 'remove the container when it exits (foreground containers are never kept; with -d: removed once it exits)')
    .option('-d, --detach', 'run the container in the background and print its ID (see ps, logs, stop, kill, rm, wait)')
    .option('--name <name>', 'name of a detached container (default wasmbox_<first 8 hex of its ID>)')
    .option('-e, --env <K=V>', 'set an environment variable (a bare K takes the host\'s value)', collect, [])
    .option('--env-file <file>', 'read environment variables from a file', collect, [])
    .option('-v, --volume <HOST:GUEST[:ro]>', 'mount a host directory (or a named in-memory volume) into the container', collect, [])
    .option('-w, --workdir <dir>', 'working directory inside the container (passed to WASI guests as $PWD)')
    .option('--entrypoint <cmd>', 'override the image\'s entrypoint (and clear its Cmd)')
    .option('-m, --memory <size>', 'memory limit (e.g. 64m, 1g)')
    .option('--timeout <duration>', 'kill the container after this long (e.g. 5s, 500ms); exit status 124')
    .option('-i, --interactive', 'keep stdin open for the container')
    .option('-t, --tty', 'give the container a terminal (Linux images: a pseudo-terminal of its own, relayed to this one)')
    .option('--read-only', 'mount the container\'s root filesystem read-only')
    .option('--platform <os/arch>', 'platform to pick from a multi-platform image (e.g. wasi/wasm)')
    .option('--output-limit <size>', 'kill the container once its stdout + stderr pass this size (exit status 137)')
    .option('--storage-opt <size=SIZE>', 'bound on what a WASI container writes to its in-memory filesystem (default size=1g)', collect, [])
    .option('--pids-limit <n>', 'most processes the container may have (Linux images; a WASI guest is one process)')
    .option('--cpus <n>', 'CPU quota in cores, e.g. 0.5 (Linux images)')
    .option('-u, --user <user>', 'user (recorded; WASI guests have no users)')
    .option('--cap-add <cap>', 'add a Linux capability for the container\'s root processes (e.g. NET_ADMIN, or ALL)', collect, [])
    .option('--cap-drop <cap>', 'drop a Linux capability from docker\'s default set (e.g. NET_RAW, or ALL)', collect, [])
    .option('--group-add <group>', 'add a supplementary group (name or gid) for the user of a Linux image', collect, [])
    .option('--hostname <name>', 'container host name')
    .option('--network <mode>', 'none (loopback only, the default) or host (the host\'s network; Linux images)')
    .option('-p, --publish <[ip:]hostPort:containerPort[/tcp]>', 'make a TCP port of the container reachable at a port of the host (Linux images; hostPort 0 or left out: any free port)', collect, [])
    .passThroughOptions()
    .action(async (image: string, args: string[], flags: RunFlags, cmd: Command) => {
      process.exitCode = await runCommand(image, args, flags, cmd);
    });
}

async function runCommand(image: string, args: string[], flags: RunFlags, cmd: Command): Promise<number> {
  try {
    if (flags.detach) return await detach(image, args, flags, cmd);
    if (flags.tty && flags.interactive && !process.stdin.isTTY) {
      throw new SandboxError('INVALID_ARGUMENT', 'the input device is not a TTY: -it needs a terminal on stdin (run without -t to pipe input)');
    }
    const options = await runOptions(args, flags);
    const { createRuntime } = await import('../../runtime/runtime.ts');
    const home = cmd.optsWithGlobals<{ home?: string }>().home;
    // A guest with no timeout, output cap or interactive stdin runs on this thread (no Worker to
    // boot); Ctrl-C then ends the whole process, as it would a native program.
    const inline = flags.timeout === undefined && flags.outputLimit === undefined && !flags.interactive;
    const runtime = createRuntime({
      ...(home ? { home } : {}),
      keepWarm: false,
      // A native container writes to our stdout itself when it is a pipe or /dev/null (nothing to pump).
      inheritStdio: true,
      pull: implicitPull,
      ...(inline ? { inline: { stdout: (b: Uint8Array) => writeAllSync(1, b), stderr: (b: Uint8Array) => writeAllSync(2, b) } } : {}),
    });
    // Otherwise boot the sandbox Worker while the image is opened and compiled on this thread.
    if (!inline) void runtime.prewarm();
    const img = await runtime.image(resolveLocalPath(image, resolve), flags.platform ? { platform: flags.platform } : {});
    const backend = (await runtime.backendFor(img)).name;
    const onThisThread = inline && backend === 'wasi';
    noteCodePath(cmd, `run:${backend}${onThisThread ? ':inline' : ''}`);
    const container = await runtime.create(img, options);
    // A guest on this thread, or a native container given our stdio, writes to descriptors 1 and 2 itself:
    // no streams to pump (and no Node stdout stream to set up, which costs a start several milliseconds).
    const direct = onThisThread || container.inheritedStdio === true;
    const terminal = flags.tty === true && container.resize !== undefined ? relayTerminal(container, flags.interactive === true) : undefined;
    const pumps = direct ? [] : [pipeOut(container.stdout, process.stdout), pipeOut(container.stderr, process.stderr)];
    const onSignal = (signal: NodeJS.Signals) => { void container.kill(signal); };
    // A guest on this thread keeps the default signal actions (a JS handler could not run anyway).
    if (!onThisThread) {
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
    }
    try {
      await container.start();
      if (flags.interactive) {
        if (!container.inheritedStdio) void pipeIn(container.stdin);
      } else if (!direct && !terminal) await container.stdin.close().catch(() => {});
      const status = await container.wait();
      await Promise.all(pumps);
      if (status.reason !== 'exit' && status.detail) process.stderr.write(`wasmbox: ${status.detail}\n`);
      return exitCodeForStatus(status);
    } finally {
      terminal?.restore();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      if (flags.interactive) process.stdin.destroy();
    }
  } catch (e) {
    return reportError(e);
  }
}

/** `run -d`: the container runs under a supervisor of its own (src/cli/detached), this command returns. */
async function detach(image: string, args: string[], flags: RunFlags, cmd: Command): Promise<number> {
  if (flags.interactive || flags.tty) {
    throw new SandboxError('INVALID_ARGUMENT', '-d cannot be combined with -i or -t: nothing would stay attached to the container\'s stdin or terminal');
  }
  const { runDetached } = await import('../detached/launch.ts');
  const home = cmd.optsWithGlobals<{ home?: string }>().home;
  noteCodePath(cmd, 'run:detached');
  return runDetached({
    image,
    ref: resolveLocalPath(image, resolve),
    ...(flags.platform ? { platform: flags.platform } : {}),
    ...(flags.name !== undefined ? { name: flags.name } : {}),
    autoRemove: flags.rm === true,
    ...(home ? { home } : {}),
    options: await runOptions(args, flags),
    pull: implicitPull,
  });
}

/** A path to an existing file or directory given without a transport runs from that path. */
function resolveLocalPath(image: string, resolve: (p: string) => string): string {
  return image.startsWith('./') || image.startsWith('../') ? resolve(image) : image;
}

async function runOptions(args: string[], flags: RunFlags) {
  const { parseSize, parseDuration, parseEnvFile, parsePublish } = await import('../../runtime/spec.ts');
  const env: string[] = [];
  if (flags.envFile.length) {
    for (const file of flags.envFile) {
      let text: string;
      try {
        text = await fs.promises.readFile(file, 'utf8');
      } catch (e) {
        throw new SandboxError('INVALID_ARGUMENT', `cannot read env file ${file}: ${(e as Error).message}`, { cause: e });
      }
      env.push(...parseEnvFile(text));
    }
  }
  env.push(...flags.env);
  const limits = {
    ...(flags.memory !== undefined ? { memoryBytes: parseSize(flags.memory) } : {}),
    ...(flags.timeout !== undefined ? { timeoutMs: parseDuration(flags.timeout) } : {}),
    ...(flags.outputLimit !== undefined ? { outputBytes: parseSize(flags.outputLimit) } : {}),
    ...(flags.pidsLimit !== undefined ? { pids: parseCount('--pids-limit', flags.pidsLimit, true) } : {}),
    ...storageLimit(flags.storageOpt, parseSize),
    ...(flags.cpus !== undefined ? { cpus: parseCount('--cpus', flags.cpus, false) } : {}),
  };
  return {
    args,
    env,
    hostEnv: process.env,
    ...(flags.entrypoint !== undefined ? { entrypoint: flags.entrypoint } : {}),
    ...(flags.workdir !== undefined ? { workdir: flags.workdir } : {}),
    ...(flags.user !== undefined ? { user: flags.user } : {}),
    ...(flags.groupAdd.length ? { groupAdd: flags.groupAdd } : {}),
    ...(flags.capAdd.length ? { capAdd: flags.capAdd } : {}),
    ...(flags.capDrop.length ? { capDrop: flags.capDrop } : {}),
    ...(flags.hostname !== undefined ? { hostname: flags.hostname } : {}),
    mounts: await Promise.all(flags.volume.map(parseVolume)),
    readOnly: flags.readOnly ?? false,
    interactive: flags.interactive ?? false,
    ...(flags.network !== undefined ? { network: parseNetwork(flags.network) } : {}),
    ...publishedPorts(flags, parsePublish),
    ...(flags.tty ? { tty: true, ...(process.stdout.isTTY ? { ttySize: { cols: process.stdout.columns, rows: process.stdout.rows } } : {}) } : {}),
    limits,
  };
}

/** docker run's implicit pull of a registry image missing from the store, reported on stderr as docker does. */
async function implicitPull(ref: string, o: { platform?: string | Platform; store: LayoutStore }): Promise<Image> {
  process.stderr.write(`Unable to find image '${ref}' locally\n`);
  const [{ pullImage }, { hostCredentials }, { progressReporter }] = await Promise.all([
    import('../../loader/registry/pull.ts'), import('#host/credentials'), import('./pull.ts'),
  ]);
  const progress = await progressReporter('pull', false, process.stderr);
  try {
    const pulled = await pullImage(o.store, ref, {
      credentials: hostCredentials(o.store.dir),
      ...(o.platform ? { platform: o.platform } : {}),
      ...(progress.listener ? { onProgress: progress.listener } : {}),
    });
    progress.stop();
    process.stderr.write(`Status: Downloaded newer image for ${ref}\n`);
    return pulled.image;
  } finally {
    progress.stop();
  }
}

/** docker's `--storage-opt size=SIZE`; no other storage option means anything here. */
function storageLimit(opts: string[], parseSize: (s: string) => number): { storageBytes?: number } {
  let storageBytes: number | undefined;
  for (const o of opts) {
    const m = /^size=(.+)$/.exec(o);
    if (!m) throw new SandboxError('INVALID_ARGUMENT', `invalid --storage-opt '${o}': only size=SIZE is supported (e.g. size=256m)`);
    storageBytes = parseSize(m[1]!);
  }
  return storageBytes === undefined ? {} : { storageBytes };
}

/** -p, parsed; on the host's network they are discarded with docker's warning (the ports are the host's already). */
function publishedPorts(flags: RunFlags, parsePublish: (spec: string) => PublishedPort): { publish?: PublishedPort[] } {
  const publish = flags.publish.map(parsePublish);
  if (!publish.length) return {};
  if (flags.network === 'host') {
    process.stderr.write('WARNING: Published ports are discarded when using host network mode\n');
    return {};
  }
  return { publish };
}

function parseNetwork(mode: string): 'none' | 'host' {
  if (mode === 'none' || mode === 'host') return mode;
  throw new SandboxError('INVALID_ARGUMENT', `invalid --network '${mode}': 'none' (loopback only) and 'host' are supported`);
}

function parseCount(flag: string, value: string, integer: boolean): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new SandboxError('INVALID_ARGUMENT', `invalid ${flag} '${value}': expected a positive ${integer ? 'whole ' : ''}number`);
  }
  return n;
}

/** docker's -v: `HOST:GUEST[:ro|rw]` with an absolute (or ./relative) host path, or `NAME:GUEST` for a volume. */
async function parseVolume(spec: string): Promise<Mount> {
  const parts = spec.split(':');
  let mode: 'ro' | 'rw' = 'rw';
  if (parts.length === 3) {
    const m = parts.pop()!;
    if (m !== 'ro' && m !== 'rw') throw new SandboxError('INVALID_ARGUMENT', `invalid mount mode '${m}' in ${spec}: use ro or rw`);
    mode = m;
  }
  if (parts.length !== 2 || !parts[0] || !parts[1]) {
    throw new SandboxError('INVALID_ARGUMENT', `invalid volume specification '${spec}': use HOST:GUEST[:ro]`);
  }
  const [source, guest] = parts as [string, string];
  if (!guest.startsWith('/')) throw new SandboxError('INVALID_ARGUMENT', `invalid volume ${spec}: the container path must be absolute`);
  const isPath = source.startsWith('/') || source.startsWith('./') || source.startsWith('../') || source === '.';
  if (!isPath) {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(source)) throw new SandboxError('INVALID_ARGUMENT', `invalid volume name '${source}'`);
    return { guest, source: { type: 'volume', name: source }, mode };
  }
  const path = resolve(source);
  const st = await fs.promises.stat(path).catch(() => undefined);
  if (!st) throw new SandboxError('INVALID_ARGUMENT', `invalid mount ${spec}: ${path} does not exist`);
  if (!st.isDirectory()) throw new SandboxError('INVALID_ARGUMENT', `invalid mount ${spec}: ${path} is not a directory`);
  return { guest, source: { type: 'host', path }, mode };
}


/** Copies a container stream to stdout/stderr; once the reader is gone (EPIPE) the rest is dropped. */
async function pipeOut(stream: ReadableStream<Uint8Array>, out: NodeJS.WriteStream): Promise<void> {
  const reader = stream.getReader();
  let broken = false;
  const onError = () => { broken = true; void reader.cancel().catch(() => {}); };
  out.on('error', onError);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done || broken) break;
      if (!out.write(value)) {
        await new Promise<void>((r) => {
          const stop = () => { out.off('drain', stop); out.off('error', stop); r(); };
          out.once('drain', stop);
          out.once('error', stop);
        });
      }
    }
  } catch {
    // The container failed; wait() reports it.
  } finally {
    out.off('error', onError);
    if (broken) out.on('error', () => {});
  }
}

/**
 * A container's pseudo-terminal on ours: with -i our terminal goes raw (keys, ^C included, reach the
 * container's line discipline, as under docker -it), and our window's size follows to the container's.
 */
function relayTerminal(container: Container, interactive: boolean): { restore(): void } {
  const raw = interactive && process.stdin.isTTY === true;
  if (raw) process.stdin.setRawMode(true);
  const resize = () => container.resize?.(process.stdout.columns, process.stdout.rows);
  if (process.stdout.isTTY) process.stdout.on('resize', resize);
  const restore = () => {
    if (raw) process.stdin.setRawMode(false);
    process.stdout.off('resize', resize);
    process.off('exit', restore);
  };
  process.on('exit', restore);
  return { restore };
}

async function pipeIn(stdin: WritableStream<Uint8Array>): Promise<void> {
  const writer = stdin.getWriter();
  try {
    for await (const chunk of process.stdin) await writer.write(chunk as Uint8Array);
  } catch {
    // The container is gone.
  } finally {
    await writer.close().catch(() => {});
  }
}
