import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { LayoutStore } from '../src/loader/store/layout-store.ts';
import { sha256, type Digest } from '../src/loader/digest.ts';
import { MediaType } from '../src/loader/media-types.ts';
import type { Descriptor } from '../src/loader/types.ts';
import type { LoadTransaction } from '../src/loader/store/transaction.ts';
import { isSandboxError } from '../src/errors.ts';
import { dirListing } from './helpers/cli.ts';

const enc = new TextEncoder();

function blob(mediaType: string, data: Uint8Array): { d: Descriptor; data: Uint8Array } {
  return { d: { mediaType, digest: sha256(data), size: data.byteLength }, data };
}

/** A small image whose layers are the given byte strings (store tests do not untar them). */
function makeImage(layerTexts: string[], os = 'wasi', architecture = 'wasm') {
  const layers = layerTexts.map((t) => blob(MediaType.ociLayer, enc.encode(t)));
  const config = blob(
    MediaType.ociConfig,
    enc.encode(JSON.stringify({ os, architecture, created: '2024-01-02T03:04:05Z', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.d.digest) } })),
  );
  const manifest = blob(
    MediaType.ociManifest,
    enc.encode(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: config.d, layers: layers.map((l) => l.d) })),
  );
  return { manifest, config, layers, all: [config, ...layers, manifest] };
}

async function putAll(tx: LoadTransaction, img: ReturnType<typeof makeImage>): Promise<void> {
  for (const b of img.all) await tx.put(b.data, b.d);
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'wasmbox-store-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('LayoutStore', () => {
  it('is an OCI image layout with one named index entry per tag', async () => {
    const store = await LayoutStore.open(dir);
    const img = makeImage(['layer one', 'layer two']);
    const tx = await store.beginLoad();
    await putAll(tx, img);
    const [entry] = await tx.commit([{ repository: 'hello', tag: 'latest' }], img.manifest.d);
    expect(entry!.id).toBe(img.config.d.digest);
    expect(JSON.parse(readFileSync(join(dir, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
    expect(index.manifests).toHaveLength(1);
    expect(index.manifests[0].digest).toBe(img.manifest.d.digest);
    expect(index.manifests[0].annotations['org.opencontainers.image.ref.name']).toBe('hello:latest');
    expect(index.manifests[0].platform).toEqual({ os: 'wasi', architecture: 'wasm' });
    for (const b of img.all) {
      expect(readFileSync(join(dir, 'blobs/sha256', b.d.digest.slice(7)))).toEqual(Buffer.from(b.data));
    }
    const [listed] = await store.list();
    expect(listed!.name).toEqual({ repository: 'hello', tag: 'latest' });
    expect(listed!.created).toBe('2024-01-02T03:04:05Z');
    expect(listed!.size).toBe(img.all.reduce((n, b) => n + b.d.size, 0));
    // staging is empty again
    expect(readdirSync(store.stagingDir)).toEqual([]);
  });

  it('a new store opened without waiting for its layout is complete before anything is published', async () => {
    const fresh = join(dir, 'fresh');
    const store = await LayoutStore.open(fresh, { waitForLayout: false });
    // Staging works at once; publishing waits for oci-layout and index.json.
    const img = makeImage(['x'.repeat(1000)]);
    const tx = await store.beginLoad();
    await putAll(tx, img);
    await tx.commit([{ repository: 'early', tag: '1' }], img.manifest.d);
    expect(JSON.parse(readFileSync(join(fresh, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    expect(JSON.parse(readFileSync(join(fresh, 'index.json'), 'utf8')).manifests).toHaveLength(1);
    expect(readdirSync(fresh).filter((n) => n.includes('.tmp-'))).toEqual([]);
    // Opened again (waiting, the default): the layout is whole at once.
    const other = join(dir, 'other');
    await LayoutStore.open(other);
    expect(readdirSync(other).sort()).toEqual(['.wasmbox', 'blobs', 'index.json', 'oci-layout']);
  });

  it('stores blobs larger than the writeback step byte for byte', async () => {
    const store = await LayoutStore.open(dir);
    const big = new Uint8Array(21 * 2 ** 20 + 123);
    for (let i = 0; i < big.length; i += 4096) big[i] = (i >> 12) & 0xff;
    const b = blob(MediaType.ociLayer, big);
    // Streamed in 1 MiB chunks, as a download arrives.
    let off = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        if (off >= big.length) return c.close();
        c.enqueue(big.subarray(off, off + 2 ** 20));
        off += 2 ** 20;
      },
    });
    await store.put(stream, b.d);
    expect(readFileSync(join(dir, 'blobs/sha256', b.d.digest.slice(7))).equals(Buffer.from(big))).toBe(true);
  });

  it('finds images by name, name:tag, digest and ID prefix', async () => {
    const store = await LayoutStore.open(dir);
    const img = makeImage(['a']);
    const tx = await store.beginLoad();
    await putAll(tx, img);
    await tx.commit([{ repository: 'app', tag: 'latest' }, { repository: 'app', tag: 'v1' }], img.manifest.d);
    expect(await store.lookup('app')).toHaveLength(1);
    expect((await store.lookup('app:v1'))[0]!.name!.tag).toBe('v1');
    expect((await store.lookup('docker.io/library/app:v1'))[0]!.name!.tag).toBe('v1');
    expect(await store.lookup('app:v2')).toEqual([]);
    expect(await store.lookup(img.config.d.digest)).toHaveLength(2);
    expect(await store.lookup(img.config.d.digest.slice(7, 19))).toHaveLength(2);
    expect(await store.lookup(img.manifest.d.digest)).toHaveLength(2);
    await expect(store.get('nothere')).rejects.toSatisfy((e) => isSandboxError(e, 'NOT_FOUND') && /No such image: nothere/.test((e as Error).message));
  });

  it('rejects a blob whose digest or size does not match, leaving no file behind', async () => {
    const store = await LayoutStore.open(dir);
    const before = dirListing(dir);
    const tx = await store.beginLoad();
    const good = blob(MediaType.ociLayer, enc.encode('the real bytes'));
    await expect(tx.put(enc.encode('other bytes!!!'), good.d)).rejects.toSatisfy((e) => isSandboxError(e, 'DIGEST_MISMATCH'));
    await expect(tx.put(enc.encode('the real bytes plus'), good.d)).rejects.toSatisfy((e) => isSandboxError(e, 'SIZE_MISMATCH'));
    await expect(store.put(enc.encode('short'), good.d)).rejects.toSatisfy((e) => isSandboxError(e, 'SIZE_MISMATCH'));
    await tx.abort();
    expect(dirListing(dir)).toEqual(before);
  });

  it('a load that fails in its last layer leaves the store byte-identical', async () => {
    const store = await LayoutStore.open(dir);
    const first = makeImage(['shared base', 'first top']);
    let tx = await store.beginLoad();
    await putAll(tx, first);
    await tx.commit([{ repository: 'first', tag: 'latest' }], first.manifest.d);
    const before = dirListing(dir);

    const second = makeImage(['shared base', 'second middle', 'second top']);
    tx = await store.beginLoad();
    await tx.put(second.config.data, second.config.d);
    await tx.put(second.layers[0]!.data, second.layers[0]!.d);
    await tx.put(second.layers[1]!.data, second.layers[1]!.d);
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(enc.encode('second '));
        c.enqueue(enc.encode('tpo'));
        c.close();
      },
    });
    await expect(tx.put(stream, second.layers[2]!.d)).rejects.toSatisfy((e) => isSandboxError(e, 'DIGEST_MISMATCH'));
    await tx.abort();
    expect(dirListing(dir)).toEqual(before);
  });

  it('refuses to commit an image whose blobs were not all loaded', async () => {
    const store = await LayoutStore.open(dir);
    const img = makeImage(['x', 'y']);
    const before = dirListing(dir);
    const tx = await store.beginLoad();
    await tx.put(img.config.data, img.config.d);
    await tx.put(img.manifest.data, img.manifest.d);
    await expect(tx.commit([{ repository: 'partial', tag: 'latest' }], img.manifest.d)).rejects.toSatisfy((e) =>
      isSandboxError(e, 'INVALID_STATE'),
    );
    expect(dirListing(dir)).toEqual(before);
  });

  it('rmi removes the name and only the blobs nothing else references', async () => {
    const store = await LayoutStore.open(dir);
    const a = makeImage(['base', 'a top']);
    const b = makeImage(['base', 'b top']);
    for (const [name, img] of [['a', a], ['b', b]] as const) {
      const tx = await store.beginLoad();
      await putAll(tx, img);
      await tx.commit([{ repository: name, tag: 'latest' }], img.manifest.d);
    }
    await store.tag('a', 'a:again');
    let r = await store.remove('a');
    expect(r.untagged).toEqual(['a:latest']);
    expect(r.deleted).toEqual([]); // still tagged a:again
    r = await store.remove('a:again');
    const blobs = new Set(readdirSync(join(dir, 'blobs/sha256')));
    expect(new Set(r.deleted)).toEqual(new Set([a.manifest.d.digest, a.config.d.digest, a.layers[1]!.d.digest]));
    const has = (d: Digest) => blobs.has(d.slice(7));
    expect(has(a.layers[0]!.d.digest)).toBe(true); // shared with b
    expect(b.all.every((x) => has(x.d.digest))).toBe(true);
    expect(a.all.filter((x) => x !== a.layers[0]).some((x) => has(x.d.digest))).toBe(false);
    expect((await store.list()).map((i) => i.name?.repository)).toEqual(['b']);
  });

  it('a blob pinned by a pending load survives a concurrent rmi', async () => {
    const store = await LayoutStore.open(dir);
    const a = makeImage(['common']);
    let tx = await store.beginLoad();
    await putAll(tx, a);
    await tx.commit([{ repository: 'a', tag: 'latest' }], a.manifest.d);
    const b = makeImage(['common'], 'linux', 'amd64');
    tx = await store.beginLoad();
    expect(await tx.has(b.layers[0]!.d.digest)).toBe(true); // dedup: the load reuses the stored blob
    await store.remove('a'); // deletes the layer from blobs/, the pending load keeps its link
    await tx.put(b.config.data, b.config.d);
    await tx.put(b.manifest.data, b.manifest.d);
    await tx.commit([{ repository: 'b', tag: 'latest' }], b.manifest.d);
    expect(existsSync(join(dir, 'blobs/sha256', b.layers[0]!.d.digest.slice(7)))).toBe(true);
  });

  it('tag moving a name to another image collects the old one', async () => {
    const store = await LayoutStore.open(dir);
    const a = makeImage(['one']);
    const b = makeImage(['two']);
    for (const [name, img] of [['x', a], ['y', b]] as const) {
      const tx = await store.beginLoad();
      await putAll(tx, img);
      await tx.commit([{ repository: name, tag: 'latest' }], img.manifest.d);
    }
    await store.tag('y', 'x');
    expect(existsSync(join(dir, 'blobs/sha256', a.config.d.digest.slice(7)))).toBe(false);
    expect((await store.lookup('x'))[0]!.id).toBe(b.config.d.digest);
  });

  it('is readable by skopeo as oci:DIR:NAME:TAG', async () => {
    const store = await LayoutStore.open(dir);
    const img = makeImage(['layer'], 'linux', 'amd64');
    const tx = await store.beginLoad();
    await putAll(tx, img);
    await tx.commit([{ repository: 'hello', tag: '1.0' }, { repository: 'hello', tag: 'latest' }], img.manifest.d);
    const out = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${dir}:hello:1.0`], { encoding: 'utf8' }));
    expect(out.Digest).toBe(img.manifest.d.digest);
    expect(out.Layers).toEqual([img.layers[0]!.d.digest]);
  });
});
