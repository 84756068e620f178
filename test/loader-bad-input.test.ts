import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { bytesSource, memoryTree } from '../src/loader/byte-source.ts';
import { MemoryStore } from '../src/loader/memory-store.ts';
import { DEFAULT_LIMITS, effectiveLimits, openImage, type OpenImageOptions } from '../src/loader/open-image.ts';
import { dockerArchiveSource } from '../src/loader/sources/docker-archive.ts';
import { sourceFromBytes } from '../src/loader/sources/detect.ts';
import { ociLayoutSource } from '../src/loader/sources/oci-layout.ts';
import { indexTar } from '../src/loader/tar-index.ts';
import type { Image } from '../src/loader/source.ts';
import { buildLayer, collect, dockerSaveFiles, enc, hex, Layout, OCI, sha, tagged, type Desc } from './helpers/image-fixtures.ts';
import { makeTar } from './helpers/tar-fixtures.ts';

const ref = { transport: 'oci' as const, path: 'mem' };

async function open(files: Map<string, Uint8Array>, opts: OpenImageOptions = {}): Promise<Image> {
  return openImage(await ociLayoutSource(memoryTree(files, 'mem')), ref, opts);
}

async function readLayer(image: Image, i = 0): Promise<Uint8Array> {
  return collect(await image.layers[i]!.open());
}

/** A one-image layout; `tweak` may rewrite blobs after the fact. */
async function single(spec: Parameters<Layout['image']>[0] = {}) {
  const layout = new Layout();
  const img = await layout.image(spec);
  layout.finish([img.manifest]);
  return { layout, img, files: layout.files, blobPath: (d: Desc | string) => `blobs/sha256/${hex(typeof d === 'string' ? d : d.digest)}` };
}

const code = (c: string, text?: string) => expect.objectContaining({ code: c, ...(text ? { message: expect.stringContaining(text) } : {}) });

describe('truncated and corrupt archives and streams', () => {
  it('a truncated OCI archive (cut inside a member) is MALFORMED', async () => {
    const { layout } = await single();
    const tar = await layout.toTar();
    const cut = tar.subarray(0, tar.length - 1024 - 700);
    await expect(sourceFromBytes(cut, 'cut.tar')).rejects.toEqual(code('MALFORMED', 'truncated tar'));
    await expect(indexTar(bytesSource(tar.subarray(0, 300), 'short.tar'))).rejects.toEqual(code('MALFORMED', 'truncated'));
  });

  it('a tar header with a bad checksum is MALFORMED', async () => {
    const { layout } = await single();
    const tar = (await layout.toTar()).slice();
    tar[10] ^= 0xff;
    await expect(indexTar(bytesSource(tar, 'bad.tar'))).rejects.toEqual(code('MALFORMED', 'checksum'));
    await expect(sourceFromBytes(enc('hello, this is not a tar'.repeat(40)), 'x.tar')).rejects.toEqual(code('MALFORMED'));
  });

  it('a truncated gzip layer is MALFORMED when opened (its blob digest matching the truncated bytes)', async () => {
    const tar = await makeTar([{ path: 'f', data: 'x'.repeat(100_000) }]);
    const gz = gzipSync(tar);
    const cut = new Uint8Array(gz.subarray(0, gz.length - 20));
    // The truncated gzip, described honestly by its descriptor: only decompression can notice.
    const layout = new Layout();
    const layerDesc = layout.blob(OCI.tarGzip, cut);
    const cfg = layout.json(OCI.config, { os: 'linux', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: [sha(tar)] } });
    const m = layout.json(OCI.manifest, { schemaVersion: 2, config: cfg, layers: [layerDesc] });
    layout.finish([m]);
    const image = await open(layout.files);
    await expect(readLayer(image)).rejects.toEqual(code('MALFORMED', 'gzip'));
  });

  it('corrupt gzip data is MALFORMED', async () => {
    const tar = await makeTar([{ path: 'f', data: 'y'.repeat(50_000) }]);
    const gz = new Uint8Array(gzipSync(tar));
    gz[gz.length >> 1] ^= 0xff;
    gz[(gz.length >> 1) + 1] ^= 0xff;
    const { files } = await single({ layers: [{ tar: gz, compression: 'none', mediaType: OCI.tarGzip }] });
    const image = await open(files);
    await expect(readLayer(image)).rejects.toEqual(code('MALFORMED'));
  });

  it('a truncated zstd layer is MALFORMED', async () => {
    const built = await buildLayer({ entries: [{ path: 'f', data: 'z'.repeat(200_000) }], compression: 'zstd' });
    const layout = new Layout();
    const layerDesc = layout.blob(OCI.tarZstd, built.blob.subarray(0, built.blob.length - 10));
    const cfg = layout.json(OCI.config, { os: 'linux', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: [built.diffId] } });
    layout.finish([layout.json(OCI.manifest, { schemaVersion: 2, config: cfg, layers: [layerDesc] })]);
    await expect(readLayer(await open(layout.files))).rejects.toEqual(code('MALFORMED', 'zstd'));
  });
});

describe('digest and size mismatches', () => {
  it('a manifest whose bytes do not match its digest: DIGEST_MISMATCH; with extra bytes: SIZE_MISMATCH', async () => {
    const { files, img, blobPath } = await single();
    const orig = files.get(blobPath(img.manifest))!;
    const flipped = orig.slice();
    flipped[orig.length - 2] = 0x20;
    files.set(blobPath(img.manifest), flipped);
    await expect(open(files)).rejects.toEqual(code('DIGEST_MISMATCH', img.manifest.digest));
    files.set(blobPath(img.manifest), new Uint8Array([...orig, 0x20]));
    await expect(open(files)).rejects.toEqual(code('SIZE_MISMATCH', img.manifest.digest));
    files.set(blobPath(img.manifest), orig.subarray(0, orig.length - 1));
    await expect(open(files)).rejects.toEqual(code('SIZE_MISMATCH'));
  });

  it('a tampered config: DIGEST_MISMATCH, and nothing lands in the store', async () => {
    const { files, img, blobPath } = await single();
    const cfg = files.get(blobPath(img.config))!.slice();
    cfg[5] = cfg[5] === 0x61 ? 0x62 : 0x61;
    files.set(blobPath(img.config), cfg);
    const store = new MemoryStore();
    await expect(open(files, { store })).rejects.toEqual(code('DIGEST_MISMATCH', img.config.digest));
    expect(store.digests()).toEqual([]);
  });

  it('a tampered layer blob: DIGEST_MISMATCH at EOF of blob() and open()', async () => {
    const { files, img, blobPath } = await single({ layers: [{ entries: [{ path: 'a', data: 'a'.repeat(10_000) }], compression: 'none' }] });
    const layer = files.get(blobPath(img.layers[0]!.diffId))!.slice();
    layer[600] ^= 1;
    files.set(blobPath(img.layers[0]!.diffId), layer);
    const image = await open(files);
    await expect(collect(await image.layers[0]!.blob())).rejects.toEqual(code('DIGEST_MISMATCH'));
    await expect(readLayer(image)).rejects.toEqual(code('DIGEST_MISMATCH'));
  });

  it('a layer file shorter than its descriptor: SIZE_MISMATCH', async () => {
    const { files, img, blobPath } = await single();
    const d = sha(img.layers[0]!.blob);
    files.set(blobPath(d), img.layers[0]!.blob.subarray(0, 10));
    await expect(readLayer(await open(files))).rejects.toEqual(code('SIZE_MISMATCH'));
  });

  it('a layer whose uncompressed content does not match the diff_id: DIGEST_MISMATCH naming the diff_id', async () => {
    const wrong = sha(enc('something else'));
    const { files } = await single({ configOverride: (c) => ({ ...c, rootfs: { type: 'layers', diff_ids: [wrong] } }) });
    await expect(readLayer(await open(files))).rejects.toEqual(code('DIGEST_MISMATCH', wrong));
  });

  it('docker-save: a layer.tar that does not match its diff_id is DIGEST_MISMATCH', async () => {
    const files = await dockerSaveFiles([{ repoTags: ['t:1'] }], 'legacy');
    const m = JSON.parse(new TextDecoder().decode(files.get('manifest.json')));
    const path = m[0].Layers[0];
    const tar = files.get(path)!.slice();
    tar[600] ^= 1;
    files.set(path, tar);
    const image = await openImage(await dockerArchiveSource(memoryTree(files)), { transport: 'docker-archive', path: 'x' });
    await expect(readLayer(image)).rejects.toEqual(code('DIGEST_MISMATCH'));
  });
});

describe('garbage JSON and missing fields', () => {
  it('garbage index.json / oci-layout / manifest / config are MALFORMED, naming the file', async () => {
    const base = await single();
    const cases: Array<[string, Uint8Array, string]> = [
      ['index.json', enc('{"schemaVersion": 2, "manifests": [}'), 'index.json'],
      ['index.json', enc('{"schemaVersion": 2}'), 'manifests'],
      ['index.json', enc('{"schemaVersion": 2, "manifests": [{"mediaType": "x", "digest": "sha256:abc", "size": 1}]}'), 'digest'],
      ['oci-layout', enc('nope'), 'oci-layout'],
    ];
    for (const [path, data, text] of cases) {
      const files = new Map(base.files);
      files.set(path, data);
      await expect(open(files)).rejects.toEqual(code('MALFORMED', text));
    }
  });

  it('a manifest that is not JSON, or lacks layers, is MALFORMED', async () => {
    for (const bytes of [enc('\u0000\u0001garbage'), enc(JSON.stringify({ schemaVersion: 2, mediaType: OCI.manifest, config: { mediaType: OCI.config, digest: sha(enc('')), size: 0 } }))]) {
      const layout = new Layout();
      const m = layout.blob(OCI.manifest, bytes);
      layout.finish([m]);
      await expect(open(layout.files)).rejects.toEqual(code('MALFORMED', m.digest));
    }
  });

  it('a config that is garbage, or lacks rootfs, or has a bad Entrypoint, is MALFORMED', async () => {
    for (const spec of [
      { configBytes: enc('{{{') },
      { configOverride: (c: Record<string, unknown>) => ({ ...c, rootfs: undefined }) },
      { configOverride: (c: Record<string, unknown>) => ({ ...c, config: { Entrypoint: 'not-an-array' } }) },
      { configOverride: (c: Record<string, unknown>) => ({ ...c, rootfs: { type: 'layers', diff_ids: [] } }) },
    ]) {
      const { files } = await single(spec);
      await expect(open(files)).rejects.toEqual(code('MALFORMED'));
    }
  });

  it('a docker-save manifest.json that is garbage or escapes with ../ is MALFORMED', async () => {
    const files = await dockerSaveFiles([{ repoTags: ['t:1'] }], 'legacy');
    const bad = new Map(files);
    bad.set('manifest.json', enc('[{"Config": 3}]'));
    await expect(dockerArchiveSource(memoryTree(bad))).rejects.toEqual(code('MALFORMED', 'Config'));
    bad.set('manifest.json', enc('not json'));
    await expect(dockerArchiveSource(memoryTree(bad))).rejects.toEqual(code('MALFORMED', 'manifest.json'));
    bad.set('manifest.json', enc(JSON.stringify([{ Config: '../../etc/passwd', RepoTags: [], Layers: [] }])));
    await expect(dockerArchiveSource(memoryTree(bad))).rejects.toEqual(code('MALFORMED', 'unsafe path'));
  });
});

describe('unknown media types', () => {
  it('an unknown manifest media type', async () => {
    const layout = new Layout();
    const m = layout.json('application/vnd.example.thing+json', { schemaVersion: 2, mediaType: 'application/vnd.example.thing+json' });
    layout.finish([m]);
    await expect(open(layout.files)).rejects.toEqual(code('UNSUPPORTED_MEDIA_TYPE', 'application/vnd.example.thing+json'));
  });

  it('a docker schema 1 manifest', async () => {
    const layout = new Layout();
    const t = 'application/vnd.docker.distribution.manifest.v1+prettyjws';
    layout.finish([layout.json(t, { schemaVersion: 1, name: 'x' })]);
    await expect(open(layout.files)).rejects.toEqual(code('UNSUPPORTED_MEDIA_TYPE', t));
  });

  it('an unknown layer media type, naming the layer', async () => {
    const { files } = await single({ layers: [{ entries: [{ path: 'a', data: 'a' }], mediaType: 'application/x-rar' }] });
    await expect(open(files)).rejects.toEqual(code('UNSUPPORTED_MEDIA_TYPE', 'application/x-rar'));
  });

  it('a config media type that is not an image config (an artifact)', async () => {
    const { files } = await single({ configMediaType: 'application/vnd.cncf.helm.config.v1+json' });
    await expect(open(files)).rejects.toEqual(code('UNSUPPORTED_MEDIA_TYPE', 'helm'));
  });
});

describe('limits and missing things', () => {
  it('a gzip bomb stops at maxLayerBytes with LIMIT_EXCEEDED', async () => {
    const tar = await makeTar([{ path: 'zeros', data: new Uint8Array(16 * 1024 * 1024) }]);
    const { files } = await single({ layers: [{ tar, compression: 'gzip' }] });
    const image = await open(files, { limits: { maxLayerBytes: 1024 * 1024 } });
    expect(image.layers[0]!.descriptor.size).toBeLessThan(100_000);
    await expect(readLayer(image)).rejects.toEqual(code('LIMIT_EXCEEDED', String(1024 * 1024)));
    // an explicit undefined keeps the default bound rather than removing it
    expect(effectiveLimits({ maxLayerBytes: undefined, maxManifestBytes: 5 })).toEqual({ maxLayerBytes: DEFAULT_LIMITS.maxLayerBytes, maxManifestBytes: 5 });
    // within the limit it reads fine
    expect((await readLayer(await open(files))).length).toBe(tar.length);
  });

  it('a manifest larger than maxManifestBytes is refused before it is read', async () => {
    const { files } = await single();
    await expect(open(files, { limits: { maxManifestBytes: 100 } })).rejects.toEqual(code('LIMIT_EXCEEDED'));
  });

  it('a missing tag and a missing blob are NOT_FOUND', async () => {
    const layout = new Layout();
    const img = await layout.image();
    layout.finish([tagged(img.manifest, 'one')]);
    const core = await ociLayoutSource(memoryTree(layout.files, 'mem'));
    await expect(openImage(core, { ...ref, tag: 'two' })).rejects.toEqual(code('NOT_FOUND', '"two"'));
    layout.files.delete(`blobs/sha256/${hex(img.config.digest)}`);
    await expect(openImage(core, { ...ref, tag: 'one' })).rejects.toEqual(code('NOT_FOUND', img.config.digest));
  });

  it('an index.json listing several images and no tag asks for one', async () => {
    const layout = new Layout();
    const a = await layout.image({ architecture: 'amd64' });
    const b = await layout.image({ architecture: 'arm64' });
    layout.finish([tagged(a.manifest, 'a'), tagged(b.manifest, 'b')]);
    await expect(open(layout.files)).rejects.toEqual(code('NOT_FOUND', 'name one'));
  });

  it('an index.json listing one image per platform acts as a multi-platform index', async () => {
    const layout = new Layout();
    const a = await layout.image({ architecture: 'amd64' });
    const b = await layout.image({ architecture: 'arm64' });
    layout.finish([{ ...a.manifest, platform: { os: 'linux', architecture: 'amd64' } }, { ...b.manifest, platform: { os: 'linux', architecture: 'arm64' } }]);
    expect((await open(layout.files, { platform: 'linux/arm64' })).digest).toBe(b.manifest.digest);
    await expect(open(layout.files, { platform: 'wasi/wasm' })).rejects.toEqual(code('PLATFORM_MISMATCH', 'linux/amd64, linux/arm64'));
  });

  it('--platform that does not match a single-manifest image is PLATFORM_MISMATCH; a bad --platform is INVALID_ARGUMENT', async () => {
    const { files } = await single({ architecture: 'arm64' });
    await expect(open(files, { platform: 'linux/amd64' })).rejects.toEqual(code('PLATFORM_MISMATCH', 'linux/arm64'));
    await expect(open(files, { platform: 'linux' })).rejects.toEqual(code('INVALID_ARGUMENT'));
  });

  it('an image for another OS is PLATFORM_MISMATCH', async () => {
    const { files } = await single({ os: 'windows' });
    await expect(open(files)).rejects.toEqual(code('PLATFORM_MISMATCH', 'windows'));
  });
});

describe('a store is not trusted blindly', () => {
  it('a tampered blob in the store is caught when read back', async () => {
    const { files, img } = await single({ layers: [{ entries: [{ path: 'a', data: 'a'.repeat(5000) }], compression: 'none' }] });
    const store = new MemoryStore();
    const image = await open(files, { store });
    const layer = image.layers[0]!;
    await store.put(await layer.blob(), layer.descriptor);
    // corrupt the store's copy in place (what a damaged disk or a meddler would do)
    const copy = await store.readBytes(layer.descriptor);
    copy[700] ^= 1;
    await expect(collect(await layer.blob())).rejects.toEqual(code('DIGEST_MISMATCH', 'in the store'));
    const manifest = await store.readBytes(img.manifest as never);
    manifest[manifest.length - 2] = 0x20;
    await expect(open(files, { store })).rejects.toEqual(code('DIGEST_MISMATCH', 'in the store'));
  });
});
