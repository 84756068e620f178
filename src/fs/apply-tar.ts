import { extract, type ExtractEvents, type Header } from 'tar-stream';
import { SandboxError, toSandboxError } from '../errors.ts';
import type { Digest } from '../loader/digest.ts';
import { makeRdev, newDevice, newFile, newSlabFile, newSpecial, newSymlink, type InodeMeta } from './inode.ts';
import { LayerBuilder, unsafe, type LayerTree } from './layer-tree.ts';

export interface TarLimits {
  /** Total uncompressed tar bytes (default 8 GiB). */
  maxBytes?: number;
  /** Tar entries, whiteouts included (default 2,000,000). */
  maxEntries?: number;
}

export const DEFAULT_TAR_LIMITS: Required<TarLimits> = { maxBytes: 8 * 2 ** 30, maxEntries: 2_000_000 };

export interface ApplyTarOptions {
  chainId: Digest;
  diffId: Digest;
  limits?: TarLimits;
}

/** Longest entry path accepted (Linux PATH_MAX), and longest component (NAME_MAX), in UTF-8 bytes. */
export const MAX_PATH_BYTES = 4096;
export const MAX_COMPONENT_BYTES = 255;
/** Largest single file a layer tree holds in memory (one Uint8Array). */
export const MAX_LAYER_FILE_BYTES = 2 ** 32 - 1;

type EntryStream = ExtractEvents['entry'][1];

const OPAQUE = '.wh..wh..opq';
const WHITEOUT_META = '.wh..wh.';
const WHITEOUT = '.wh.';

/**
 * Applies one UNCOMPRESSED layer tar on top of `parent` and returns the new merged tree. The parent
 * is never changed and the new tree exists only if everything succeeded, so a bad layer leaves
 * nothing half-applied. Unsafe entries fail with UNSAFE_LAYER, bad tar bytes with MALFORMED, and the
 * limits with LIMIT_EXCEEDED. The input is read to its end (so a verifying source checks its digest),
 * except past a limit, where it is cancelled.
 */
export async function applyTar(
  parent: LayerTree | undefined,
  tar: ReadableStream<Uint8Array>,
  opts: ApplyTarOptions,
): Promise<LayerTree> {
  const limits = { ...DEFAULT_TAR_LIMITS, ...opts.limits };
  const builder = new LayerBuilder(parent);
  const reader = new EntryReader(builder, limits);
  const source = tar.getReader();
  let streamBytes = 0;
  let overLimit = false;
  try {
    for (;;) {
      const { value, done } = await source.read();
      if (done) break;
      streamBytes += value.byteLength;
      if (streamBytes > limits.maxBytes) {
        reader.fail(new SandboxError('LIMIT_EXCEEDED', `layer tar is larger than the limit of ${limits.maxBytes} bytes`));
        overLimit = true;
      }
      // Past a limit the rest is not read (a decompression bomb); any other failure drains the input.
      if (overLimit || reader.failure?.code === 'LIMIT_EXCEEDED') {
        overLimit = true;
        break;
      }
      if (!reader.failure) await reader.write(value);
    }
    if (overLimit) {
      await source.cancel(reader.failure).catch(() => undefined);
    } else if (!reader.failure) {
      await reader.end();
    }
  } catch (e) {
    // The source failed (a digest or decompression error, say): that is the cause to report.
    reader.abort();
    throw toSandboxError(e, 'MALFORMED');
  } finally {
    source.releaseLock();
  }
  if (reader.failure) {
    reader.abort();
    throw reader.failure;
  }
  return builder.finish({ chainId: opts.chainId, diffId: opts.diffId, parent, files: reader.entries, bytes: reader.bytes });
}

/** Feeds tar-stream and turns each entry into a builder call; remembers the first failure. */
class EntryReader {
  failure: SandboxError | undefined;
  entries = 0;
  bytes = 0;
  private readonly ex = extract({ allowUnknownFormat: true } as Parameters<typeof extract>[0]);
  /** Entries handed to us and not yet applied (0 or 1: tar-stream waits for `next`). */
  private inflight = 0;
  private onIdle: (() => void) | undefined;
  private readonly times = new TimeCache();
  private readonly slabs = new SlabAllocator();

  constructor(
    private readonly builder: LayerBuilder,
    private readonly limits: Required<TarLimits>,
  ) {
    this.ex.on('entry', (header: Header, stream: EntryStream, next: () => void) => {
      this.inflight++;
      this.onEntry(header, stream, () => {
        this.inflight--;
        if (this.inflight === 0) this.onIdle?.();
        next();
      });
    });
    this.ex.on('error', (e: unknown) => this.fail(malformed(e)));
  }

  fail(e: SandboxError): void {
    this.failure ??= e;
  }

  abort(): void {
    this.ex.destroy(null as unknown as Error);
  }

  write(chunk: Uint8Array): Promise<void> {
    if (this.ex.write(chunk)) return Promise.resolve();
    return this.waitFor('drain');
  }

  async end(): Promise<void> {
    const finished = this.waitFor('finish');
    (this.ex as unknown as { end(): void }).end();
    await finished;
    if (!this.failure && this.inflight > 0) await new Promise<void>((resolve) => (this.onIdle = resolve));
  }

  private waitFor(event: 'drain' | 'finish'): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.ex.off(event, done);
        this.ex.off('close', done);
        resolve();
      };
      this.ex.on(event, done);
      this.ex.on('close', done);
    });
  }

  private onEntry(header: Header, stream: EntryStream, done: () => void): void {
    // tar-stream destroys the entry stream with the parser's error; that error is handled on `ex`.
    stream.on('error', () => undefined);
    const skip = (): void => {
      // tar-stream routes no data for directories, so their stream never ends: do not wait for it.
      if (header.type === 'directory') return done();
      stream.on('end', done);
      stream.resume();
    };
    if (this.failure) return skip();
    try {
      if (++this.entries > this.limits.maxEntries) {
        throw new SandboxError('LIMIT_EXCEEDED', `layer tar has more than ${this.limits.maxEntries} entries`);
      }
      if (header.type === 'directory') {
        if (header.size > 0) throw new SandboxError('MALFORMED', `directory entry ${JSON.stringify(header.name)} has data`);
        this.apply(header, undefined);
        done();
        return;
      }
      const isFile = header.type === 'file' || header.type === 'contiguous-file';
      if (!isFile || header.size === 0) {
        stream.on('end', () => this.guard(() => this.apply(header, undefined), done));
        stream.resume();
        return;
      }
      const size = header.size;
      if (size > MAX_LAYER_FILE_BYTES || this.bytes + size > this.limits.maxBytes) {
        throw new SandboxError('LIMIT_EXCEEDED', `layer file ${JSON.stringify(header.name)} of ${size} bytes exceeds the limits`);
      }
      const place = this.slabs.alloc(size);
      let offset = 0;
      stream.on('data', (c: unknown) => {
        const chunk = c as Uint8Array;
        if (offset + chunk.byteLength <= size) place.buffer.set(chunk, place.offset + offset);
        offset += chunk.byteLength;
      });
      stream.on('end', () =>
        this.guard(() => {
          if (offset !== size) throw new SandboxError('MALFORMED', `layer file ${JSON.stringify(header.name)} is truncated`);
          this.bytes += size;
          this.apply(header, place);
        }, done),
      );
    } catch (e) {
      this.fail(toSandboxError(e));
      skip();
    }
  }

  private guard(f: () => void, done: () => void): void {
    try {
      if (!this.failure) f();
    } catch (e) {
      this.fail(toSandboxError(e));
    }
    done();
  }

  private apply(h: Header, data: { buffer: Uint8Array; offset: number } | undefined): void {
    const comps = entryPath(h.name, 'entry');
    const path = comps.join('/');
    const last = comps[comps.length - 1];
    if (comps.length > 0 && comps[0]!.startsWith(WHITEOUT_META) && comps[0] !== OPAQUE) return; // AUFS metadata, as docker skips
    if (last !== undefined && last.startsWith(WHITEOUT)) {
      const dir = comps.slice(0, -1);
      if (last === OPAQUE) return this.builder.opaque(dir);
      if (last.startsWith(WHITEOUT_META)) return;
      const name = last.slice(WHITEOUT.length);
      if (name === '' || name === '.' || name === '..') throw unsafe(path, 'whiteout of an invalid name');
      return this.builder.whiteout(dir, name);
    }
    const meta = this.meta(h);
    const b = this.builder;
    switch (h.type) {
      case 'directory':
        return b.putDir(comps, meta);
      case 'file':
      case 'contiguous-file':
        if (data === undefined) return b.putNode(comps, newFile(b.allocIno(), meta));
        if (data.offset === 0 && data.buffer.length === h.size) return b.putNode(comps, newFile(b.allocIno(), meta, data.buffer));
        return b.putNode(comps, newSlabFile(b.allocIno(), meta, data.buffer, data.offset, h.size));
      case 'symlink':
        if (!h.linkname) throw new SandboxError('MALFORMED', `symlink ${JSON.stringify(path)} has an empty target`);
        if (h.linkname.includes('\0')) throw unsafe(path, 'symlink target contains NUL');
        return b.putNode(comps, newSymlink(b.allocIno(), meta, h.linkname));
      case 'link':
        return b.putHardLink(comps, entryPath(h.linkname ?? '', 'hard link target', path));
      case 'character-device':
      case 'block-device': {
        const rdev = makeRdev(h.devmajor, h.devminor);
        const kind = h.type === 'block-device' ? 'blockdev' : 'chardev';
        return b.putNode(comps, newDevice(b.allocIno(), kind, meta, rdev));
      }
      case 'fifo':
        return b.putNode(comps, newSpecial(b.allocIno(), 'fifo', meta));
      default:
        throw new SandboxError('MALFORMED', `layer entry ${JSON.stringify(path)} has an unsupported tar type`);
    }
  }

  private meta(h: Header): InodeMeta {
    const pax = (h.pax ?? {}) as Record<string, string>;
    const uid = pax.uid !== undefined ? Number(pax.uid) : h.uid;
    const gid = pax.gid !== undefined ? Number(pax.gid) : h.gid;
    if (!isId(uid) || !isId(gid)) throw new SandboxError('MALFORMED', `layer entry ${JSON.stringify(h.name)} has a bad uid/gid`);
    const mtimeNs = pax.mtime !== undefined ? this.times.fromPax(pax.mtime, h.name) : this.times.fromSeconds(h.mtime.getTime() / 1000, h.name);
    const meta: InodeMeta = { mode: h.mode & 0o7777, uid, gid, mtimeNs };
    if (pax.atime !== undefined) meta.atimeNs = this.times.fromPax(pax.atime, h.name);
    if (pax.ctime !== undefined) meta.ctimeNs = this.times.fromPax(pax.ctime, h.name);
    return meta;
  }
}

function isId(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0 && n <= 0xffffffff;
}

const encoder = new TextEncoder();

/**
 * A tar member name as path components. Absolute names and `..` are refused outright (not cleaned):
 * no image needs them and the contract is a typed error.
 */
export function entryPath(raw: string, what: string, forPath?: string): string[] {
  const shown = forPath ?? raw;
  if (raw.includes('\0')) throw unsafe(shown, `${what} name contains NUL`);
  if (raw.startsWith('/')) throw unsafe(shown, `${what} name ${JSON.stringify(raw)} is absolute`);
  if (raw.length > MAX_PATH_BYTES / 3 && encoder.encode(raw).length > MAX_PATH_BYTES) {
    throw unsafe(shown, `${what} name is longer than ${MAX_PATH_BYTES} bytes`);
  }
  const out: string[] = [];
  for (const c of raw.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') throw unsafe(shown, `${what} name ${JSON.stringify(raw)} contains '..'`);
    if (c.length > MAX_COMPONENT_BYTES / 3 && encoder.encode(c).length > MAX_COMPONENT_BYTES) {
      throw unsafe(shown, `${what} name has a component longer than ${MAX_COMPONENT_BYTES} bytes`);
    }
    out.push(c);
  }
  return out;
}

/**
 * Small files share large buffers (trees are immutable and live as a whole, so a slab is never held
 * by one file that outlives the others for long). Large files get their own buffer.
 */
class SlabAllocator {
  static readonly SLAB_BYTES = 1 << 20;
  static readonly MAX_SHARED = 16 << 10;
  private slab = new Uint8Array(0);
  private used = 0;

  /** Where `size` bytes go: a fresh buffer (offset 0) or a part of the current slab. */
  alloc(size: number): { buffer: Uint8Array; offset: number } {
    if (size > SlabAllocator.MAX_SHARED) return { buffer: new Uint8Array(size), offset: 0 };
    if (this.used + size > this.slab.length) {
      this.slab = new Uint8Array(SlabAllocator.SLAB_BYTES);
      this.used = 0;
    }
    const offset = this.used;
    this.used += size;
    return { buffer: this.slab, offset };
  }
}

/** Timestamps as nanosecond bigints, sharing one bigint per distinct value seen recently. */
class TimeCache {
  private readonly cache = new Map<string | number, bigint>();

  fromSeconds(secs: number, name: string): bigint {
    if (!Number.isSafeInteger(secs)) throw new SandboxError('MALFORMED', `layer entry ${JSON.stringify(name)} has a bad mtime`);
    return this.remember(secs, () => BigInt(secs) * 1_000_000_000n);
  }

  /** PAX time: decimal seconds with an optional fraction ("1700000000.123456789", "-1.5"). */
  fromPax(s: string, name: string): bigint {
    return this.remember(s, () => {
      const m = /^(-?)(\d{1,20})(?:\.(\d*))?$/.exec(s);
      if (!m) throw new SandboxError('MALFORMED', `layer entry ${JSON.stringify(name)} has a bad PAX time ${JSON.stringify(s.slice(0, 40))}`);
      const ns = BigInt(m[2]!) * 1_000_000_000n + BigInt((m[3] ?? '').padEnd(9, '0').slice(0, 9));
      return m[1] ? -ns : ns;
    });
  }

  private remember(key: string | number, make: () => bigint): bigint {
    let v = this.cache.get(key);
    if (v === undefined) {
      if (this.cache.size >= 4096) this.cache.clear();
      v = make();
      this.cache.set(key, v);
    }
    return v;
  }
}

function malformed(e: unknown): SandboxError {
  if (e instanceof SandboxError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new SandboxError('MALFORMED', `malformed layer tar: ${msg}`, { cause: e });
}
