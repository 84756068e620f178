import { defaultBackends } from '#host/backends';
import { openDiskCache, type DiskCache } from '#host/disk-cache';
import { sampleImagePath } from '#host/sample-images';
import { SandboxError } from '../errors.ts';
import { parseRef } from '../loader/ref.ts';
import type { LayoutStore } from '../loader/store/layout-store.ts';
import type { Image } from '../loader/source.ts';
import type { ImageKind, Platform } from '../loader/types.ts';
import { CacheBudget, DEFAULT_CACHE_BYTES } from './cache-budget.ts';
import { newContainerId } from './ids.ts';
import { createImageTrees, type ImageTrees } from './image-trees.ts';
import { resolveSpec, type RunOptions } from './spec.ts';
import type { Backend, Container, ContainerSpec, ExitStatus } from './types.ts';

export interface RuntimeOptions {
  /** The image store directory (Node; default $WASMBOX_HOME, else the XDG data dir). */
  home?: string;
  /** The image store to use instead of the one at `home`. */
  store?: LayoutStore;
  /** Backends to choose from, in order (default: the host's: WASI, and Linux where it exists). */
  backends?: Backend[];
  /**
   * Bytes of memory kept for images between containers: layer trees, packed root filesystems, module
   * bytes and compiled modules, the least recently used dropped first (default 256 MiB; 0 keeps nothing).
   * What a running container holds is not counted, and never taken from it.
   */
  cacheBytes?: number;
  /** Platform for references that name an index (e.g. 'wasi/wasm', 'linux/amd64'). */
  platform?: string;
  /** The sandbox Worker script (default: the built worker next to the bundle). */
  workerUrl?: string | URL;
  /**
   * Keep a sandbox Worker booted ahead of the next container (faster starts, one idle thread; default off).
   * `false` also stops the Linux backend mounting the next writable root ahead (for a process that runs
   * one container).
   */
  keepWarm?: boolean;
  /**
   * Native (Linux) containers without an output limit write straight to this process's stdout and stderr
   * (file descriptors 1 and 2, given to them as their own), and an interactive one reads this process's
   * stdin: their `stdout`/`stderr` streams then end empty. For a CLI: no output is pumped through it.
   */
  inheritStdio?: boolean;
  /** Run WASI guests that need no Worker on the calling thread (see WasiBackendOptions.inline). */
  inline?: { stdout(b: Uint8Array): void; stderr(b: Uint8Array): void };
  /** An image archive to load for a name the store lacks (default: the bundled sample images; `false`: none). */
  fallback?: false | ((name: string) => string | undefined);
  /**
   * How `REGISTRY/REPO[:TAG]` names missing from the store are pulled (default: from the registry, with
   * credentials from `wasmbox login` and Docker's config; `false`: never pull).
   */
  pull?: false | ((ref: string, o: { platform?: string | Platform; store: LayoutStore }) => Promise<Image>);
}

/** What `run` adds to `RunOptions`: stdio for a whole run. */
export interface RunIo {
  /** Bytes (or text) for the guest's stdin, given whole; the guest reads end of file after them. */
  stdin?: Uint8Array | string | ReadableStream<Uint8Array>;
  /** Where the guest's output goes as it is written; without one, it is collected into the result. */
  stdout?: WritableStream<Uint8Array> | ((chunk: Uint8Array) => void);
  stderr?: WritableStream<Uint8Array> | ((chunk: Uint8Array) => void);
  platform?: string;
}

export interface RunResult extends ExitStatus {
  /** The container (its filesystem stays readable through `container.fs()`). */
  container: Container;
  /** Collected output (empty when a sink was given). */
  stdout: Uint8Array;
  stderr: Uint8Array;
}

export type ImageInput = string | Image;

export interface Runtime {
  /** Opens an image: a name in the store, a reference (`oci:DIR`, `./img.tar`, `x.wasm`...), or an Image. */
  image(ref: ImageInput, o?: { platform?: string }): Promise<Image>;
  /** The spec a container would get (image config + options, docker's rules). */
  spec(image: Image, opts?: RunOptions): ContainerSpec;
  /** Creates a container (not started). */
  create(ref: ImageInput, opts?: RunOptions & { platform?: string }): Promise<Container>;
  /** create + start + wait, with stdio. Resolves for every guest outcome; rejects only for wasmbox failures. */
  run(ref: ImageInput, opts?: RunOptions & RunIo): Promise<RunResult>;
  /** The backend that would run `image` (the first whose probe accepts it). */
  backendFor(image: Image): Promise<Backend>;
  /** Boots what the next container needs ahead of time (a sandbox Worker), while other work goes on. */
  prewarm(): Promise<void>;
  /** Ends the idle sandbox Workers the runtime keeps for reuse (in a browser they would live on). */
  close(): Promise<void>;
  /** What the runtime keeps in memory for images between containers (see RuntimeOptions.cacheBytes). */
  cacheUsage(): { bytes: number; entries: number; limit: number };
  /**
   * Removes what the backends keep on disk for images the store no longer holds (materialised root
   * filesystems), except what a container uses; `live`: the store's rootfsChainIds. Returns what went.
   */
  pruneRootfs(live: Set<string>): Promise<string[]>;
}

/** `docker run`'s implicit pull, with the credentials stored next to the image store. */
async function pullMissing(store: LayoutStore, ref: string, o: { platform?: string | Platform }): Promise<Image> {
  const [{ pullImage }, { hostCredentials }] = await Promise.all([import('../loader/registry/pull.ts'), import('#host/credentials')]);
  return (await pullImage(store, ref, { credentials: hostCredentials(store.dir), ...(o.platform ? { platform: o.platform } : {}) })).image;
}

/** A runtime: its own caches (layer trees, packed trees, compiled modules), nothing global. */
export function createRuntime(opts: RuntimeOptions = {}): Runtime {
  // The disk cache lives in the store, known from the options or once the store is first opened.
  let storeDir: string | undefined = opts.store?.dir ?? opts.home;
  let diskCache: DiskCache | undefined;
  const cache = () => (storeDir === undefined ? undefined : (diskCache ??= openDiskCache(storeDir)));
  const budget = new CacheBudget(opts.cacheBytes ?? DEFAULT_CACHE_BYTES);
  const trees: ImageTrees = createImageTrees(cache, budget);
  let backends: Promise<Backend[]> | undefined;
  const getBackends = () => (backends ??= opts.backends
    ? Promise.resolve(opts.backends)
    : defaultBackends({
      provider: trees,
      cacheBudget: budget,
      ...(opts.home !== undefined ? { home: opts.home } : {}),
      ...(opts.workerUrl !== undefined ? { workerUrl: opts.workerUrl } : {}),
      ...(opts.keepWarm !== undefined ? { keepWarm: opts.keepWarm } : {}),
      ...(opts.inline !== undefined ? { inline: opts.inline } : {}),
      ...(opts.inheritStdio ? { inheritStdio: true } : {}),
    }));
  let storePromise: Promise<LayoutStore> | undefined;

  async function image(ref: ImageInput, o: { platform?: string } = {}): Promise<Image> {
    if (typeof ref !== 'string') return ref;
    const platform = o.platform ?? opts.platform;
    const parsed = parseRef(ref);
    if (parsed.transport !== 'store' && parsed.transport !== 'registry') {
      // A file or directory reference (image archive, OCI layout, bare .wasm) needs no store.
      const { openLocalImage } = await import('../loader/sources/local.ts');
      return openLocalImage(parsed, platform ? { platform } : {});
    }
    const { resolveImage } = await import('../loader/store/resolve-image.ts');
    storePromise ??= opts.store ? Promise.resolve(opts.store) : openStore(opts.home);
    const store = (await storePromise) as LayoutStore;
    storeDir ??= store.dir;
    let hinted = false;
    const opened = await resolveImage(ref, {
      store,
      kindHint: (manifest) => {
        const kind = kindFromCache(cache()?.get('kind', manifest));
        hinted = kind !== undefined;
        return kind;
      },
      ...(platform ? { platform } : {}),
      ...(opts.fallback !== false ? { fallback: opts.fallback ?? sampleImagePath } : {}),
      ...(opts.pull !== false ? { pull: (r: string, po: { platform?: string | Platform }) => (opts.pull ? opts.pull(r, { ...po, store }) : pullMissing(store, r, po)) } : {}),
    });
    if (!hinted && opened.kind !== 'linux') cache()?.put('kind', opened.digest, new TextEncoder().encode(opened.kind));
    return opened;
  }

  async function backendFor(img: Image): Promise<Backend> {
    const reasons: string[] = [];
    for (const b of await getBackends()) {
      const r = await b.probe(img);
      if (r.ok) return b;
      reasons.push(`${b.name}: ${r.reason}`);
    }
    const what = `${img.platform.os}/${img.platform.architecture}${img.platform.variant ? '/' + img.platform.variant : ''}`;
    throw new SandboxError(
      'BACKEND_UNAVAILABLE',
      img.kind === 'linux'
        ? `no backend here runs ${what} images: native Linux images need the Linux backend (Linux host, namespaces)${reasons.length ? ` (${reasons.join('; ')})` : ''}`
        : `no backend here runs this ${img.kind} image (${what})${reasons.length ? `: ${reasons.join('; ')}` : ''}`,
      { data: { platform: what, kind: img.kind } },
    );
  }

  function spec(img: Image, o: RunOptions = {}): ContainerSpec {
    return resolveSpec(img.config, o, newContainerId(12));
  }

  async function create(ref: ImageInput, o: RunOptions & { platform?: string } = {}): Promise<Container> {
    const img = await image(ref, o.platform !== undefined ? { platform: o.platform } : {});
    const backend = await backendFor(img);
    return backend.create(img, spec(img, o));
  }

  async function run(ref: ImageInput, o: RunOptions & RunIo = {}): Promise<RunResult> {
    const hasStdin = o.stdin !== undefined;
    const container = await create(ref, { ...o, interactive: o.interactive || hasStdin });
    const out = collectInto(container.stdout, o.stdout);
    const err = collectInto(container.stderr, o.stderr);
    const feeding = feedStdin(container, o.stdin);
    await container.start();
    const status = await container.wait();
    const [stdout, stderr] = await Promise.all([out, err]);
    await feeding.catch(() => {});
    return { ...status, container, stdout, stderr };
  }

  async function prewarm(): Promise<void> {
    for (const b of await getBackends()) (b as { prewarm?: () => void }).prewarm?.();
  }

  async function close(): Promise<void> {
    if (!backends) return;
    await Promise.all((await backends).map((b) => (b as { close?: () => Promise<void> }).close?.()));
  }

  async function pruneRootfs(live: Set<string>): Promise<string[]> {
    const removed: string[] = [];
    for (const b of await getBackends()) removed.push(...((await b.pruneRootfs?.(live)) ?? []));
    return removed;
  }

  return { image, spec, create, run, backendFor, prewarm, close, cacheUsage: () => budget.usage, pruneRootfs };
}

async function openStore(home: string | undefined): Promise<LayoutStore> {
  const { LayoutStore } = await import('../loader/store/layout-store.ts');
  return LayoutStore.open(home ?? LayoutStore.defaultDir());
}

async function feedStdin(container: Container, input: RunIo['stdin']): Promise<void> {
  const writer = container.stdin.getWriter();
  try {
    if (input === undefined) return;
    if (typeof input === 'string') await writer.write(new TextEncoder().encode(input));
    else if (input instanceof Uint8Array) await writer.write(input);
    else {
      const reader = input.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        await writer.write(value);
      }
    }
  } finally {
    await writer.close().catch(() => {});
  }
}

async function collectInto(stream: ReadableStream<Uint8Array>, sink: RunIo['stdout']): Promise<Uint8Array> {
  if (sink && typeof sink !== 'function') {
    await stream.pipeTo(sink).catch(() => {});
    return new Uint8Array(0);
  }
  const chunks: Uint8Array[] = [];
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (sink) sink(value);
      else chunks.push(value);
    }
  } catch {
    // The container failed; run() reports that through wait().
  }
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const outBytes = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) { outBytes.set(c, at); at += c.length; }
  return outBytes;
}

/** A WASI image's kind as the disk cache recorded it (telling it otherwise means reading its layers). */
function kindFromCache(bytes: Uint8Array | undefined): ImageKind | undefined {
  if (!bytes) return undefined;
  const text = new TextDecoder().decode(bytes);
  return text === 'wasm-module' || text === 'wasm-component' ? text : undefined;
}
