/**
 * The sandbox Worker: for each StartMessage, builds the guest's filesystems and stdio, runs the
 * module's `_start`, and posts the exit (with the container's final filesystem). One guest at a time;
 * the main thread terminates the Worker for a timeout, a kill or an output cap. `runGuest` is also
 * what the backend's inline mode calls on the calling thread.
 */
import { parentChannel, SHARE_PACKED_TREES } from '#host/worker';
import { hostDirVfs } from '#host/host-vfs';
import { toSandboxError } from '../errors.ts';
import { Overlay } from '../fs/overlay.ts';
import { packTree } from '../fs/packed-tree.ts';
import { packedVfs } from '../fs/packed-vfs.ts';
import { exists, mkdirp } from '../fs/paths.ts';
import type { Vfs } from '../fs/vfs.ts';
import { Preview1, PREVIEW1_MODULE } from './preview1/preview1.ts';
import { outputPosted, parkForever, StdinBytes, StdinRingReader } from './stdio.ts';
import type { FromWorker, StartMessage, WorkerMount } from './worker-protocol.ts';

export type Post = (m: FromWorker, transfer?: Transferable[]) => void;

const channel = parentChannel();
if (channel) {
  const post: Post = (m, transfer) => channel.post(m, transfer);
  channel.onMessage((m) => {
    const msg = m as StartMessage;
    if (msg?.type === 'start') runGuest(msg, post);
  });
}

/** Runs one guest to its end on this thread, reporting through `post`. Never throws. */
export function runGuest(msg: StartMessage, post: Post): void {
  try {
    run(msg, post);
  } catch (e) {
    const err = toSandboxError(e);
    post({ type: 'failed', code: err.code, message: err.message });
  }
}

/** `mustExist`: directories to create in the root when missing (the working directory, mount points). */
function mountVfs(m: WorkerMount, mustExist: string[], quotaBytes: number): Vfs {
  switch (m.source.kind) {
    case 'host':
      return hostDirVfs(m.source.path, { readOnly: m.readOnly }) as Vfs;
    case 'packed':
    case 'vfs': {
      const lower = m.source.kind === 'vfs' ? m.source.vfs : packedVfs(m.source.packed as never) as Vfs;
      const missing = m.guestPath === '/' ? mustExist.filter((p) => !exists(lower, p)) : [];
      if (missing.length > 0) {
        // docker creates a missing working directory and mount points; a read-only root stays
        // read-only for the guest through the preopen's readOnly flag.
        const overlay = Overlay.prepare(lower, { quotaBytes });
        for (const p of missing) mkdirp(overlay, p);
        return overlay;
      }
      return m.readOnly ? Overlay.view(lower) : Overlay.prepare(lower, { quotaBytes });
    }
    case 'empty':
      return m.readOnly ? Overlay.view(Overlay.prepare()) : Overlay.prepare(undefined, { quotaBytes });
  }
}

function run(msg: StartMessage, post: Post): void {
  const mustExist = [msg.cwd, ...msg.mounts.map((m) => m.guestPath)].filter((p) => p !== '/');
  const vfsByMount = msg.mounts.map((m) => ({ mount: m, vfs: mountVfs(m, mustExist, msg.storageBytes) }));
  const flow = msg.outputFlow ? new Int32Array(msg.outputFlow) : undefined;
  const limit = msg.outputLimit;
  let written = 0;
  let stopped = false;

  const output = (stream: 1 | 2) => (bytes: Uint8Array): void => {
    if (stopped) return;
    let data = bytes;
    const over = limit !== undefined && written + data.length > limit;
    if (over) data = data.subarray(0, Math.max(0, limit - written));
    written += data.length;
    if (data.length > 0) {
      // A copy: the guest's bytes are a view into its memory, which must not be cloned whole.
      const copy = data.slice();
      post({ type: 'output', stream, data: copy }, [copy.buffer]);
      if (flow) outputPosted(flow, copy.length);
    }
    if (over) {
      stopped = true;
      post({ type: 'output-limit' });
      if (flow) parkForever(flow);
    }
  };

  const stdin =
    msg.stdin.kind === 'ring' ? new StdinRingReader(msg.stdin.buffer)
    : msg.stdin.kind === 'bytes' ? new StdinBytes(msg.stdin.data)
    : new StdinBytes(new Uint8Array(0));

  const sleepCell = typeof SharedArrayBuffer === 'function' ? new Int32Array(new SharedArrayBuffer(4)) : undefined;
  const preview1 = new Preview1({
    args: msg.args,
    env: msg.env,
    preopens: vfsByMount.map(({ mount, vfs }) => ({ guestPath: mount.guestPath, vfs, readOnly: mount.readOnly })),
    stdin: { read: (max: number) => stdin.read(max), ready: () => stdin.ready() },
    stdout: output(1),
    stderr: output(2),
    ...(sleepCell ? { sleep: (ns: bigint) => { Atomics.wait(sleepCell, 0, 0, Number(ns) / 1e6); } } : {}),
  });

  const imports: WebAssembly.Imports = { [PREVIEW1_MODULE]: preview1.imports };
  for (const mem of msg.memories) {
    if (!mem.import) continue;
    const memory = new WebAssembly.Memory({
      initial: mem.initialPages,
      ...(mem.maximumPages !== undefined ? { maximum: mem.maximumPages } : {}),
      ...(mem.shared ? { shared: true } : {}),
    } as WebAssembly.MemoryDescriptor);
    imports[mem.import.module] = { ...(imports[mem.import.module] ?? {}), [mem.import.name]: memory };
    // The guest's memory is the one it imports (clang's --import-memory), unless it exports one as well.
    preview1.bindMemory(memory);
  }

  let instance: WebAssembly.Instance;
  try {
    instance = new WebAssembly.Instance(msg.module, imports);
  } catch (e) {
    if (e instanceof WebAssembly.LinkError) {
      post({ type: 'failed', code: 'NOT_RUNNABLE', message: `the module cannot be linked: ${e.message}` });
      return;
    }
    if (e instanceof WebAssembly.RuntimeError) {
      post({ type: 'ready' });
      exit(134, 'trap', 'wasm trap in the start function: ' + e.message);
      return;
    }
    throw e;
  }
  post({ type: 'ready' });

  let code: number;
  let reason: 'exit' | 'trap' = 'exit';
  let detail: string | undefined;
  try {
    code = preview1.start(instance);
  } catch (e) {
    if (e instanceof WebAssembly.RuntimeError || e instanceof RangeError) {
      code = 134;
      reason = 'trap';
      detail = `wasm trap: ${e.message}`;
    } else {
      throw e;
    }
  }
  exit(code, reason, detail);

  function exit(code: number, reason: 'exit' | 'trap', detail?: string): void {
    const root = vfsByMount.find(({ mount }) => mount.guestPath === '/' && mount.source.kind !== 'host');
    const volumes = vfsByMount
      .filter(({ mount }) => mount.volume !== undefined && !mount.readOnly)
      .map(({ mount, vfs }) => ({ name: mount.volume!, packed: packTree(vfs, { shared: SHARE_PACKED_TREES }) }));
    // Over the image's packed tree, only what the guest changed goes back (the host has the tree).
    const upper = root && msg.returnFs !== 'live' && root.mount.source.kind === 'packed' && root.vfs instanceof Overlay ? root.vfs.exportUpper() : undefined;
    const fs = !root ? {}
      : msg.returnFs === 'live' ? { rootVfs: root.vfs }
      : upper ? { rootUpper: upper.upper }
      : { rootfs: packTree(root.vfs, { shared: SHARE_PACKED_TREES }) };
    post({ type: 'exit', code, reason, ...(detail !== undefined ? { detail } : {}), ...fs, volumes }, upper?.transfer);
  }
}
