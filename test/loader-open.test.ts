import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryTree } from '../src/loader/byte-source.ts';
import { MemoryStore } from '../src/loader/memory-store.ts';
import { chainIds, openImage } from '../src/loader/open-image.ts';
import { ociLayoutSource } from '../src/loader/sources/oci-layout.ts';
import { openLocalImage } from '../src/loader/sources/local.ts';
import { collect, Layout, sha, tagged, withPlatform, wasmBytes, enc } from './helpers/image-fixtures.ts';
import { makeTar } from './helpers/tar-fixtures.ts';

let tmp: string;
beforeAll(async () => { tmp = await mkdtemp(join(tmpdir(), 'wasmbox-loader-')); });
afterAll(async () => { await rm(tmp, { recursive: true, force: true }); });

describe('openImage over an OCI layout', () => {
  it('opens a tagged linux image from a directory and streams verified, decompressed layers', async () => {
    const layout = new Layout();
    const img = await layout.image({
      layers: [
        { entries: [{ path: 'bin/', type: 'directory' }, { path: 'bin/sh', data: '#!' }], compression: 'gzip' },
        { entries: [{ path: 'etc/motd', data: 'hello' }], compression: 'none' },
        { entries: [{ path: 'etc/zst', data: 'z'.repeat(5000) }], compression: 'zstd' },
      ],
    });
    layout.finish([tagged(img.manifest, 'v1')]);
    const dir = await layout.writeDir(join(tmp, 'layout1'));
    const store = new MemoryStore();
    const image = await openLocalImage(`oci:${dir}:v1`, { store });
    expect(image.digest).toBe(img.manifest.digest);
    expect(image.id).toBe(img.config.digest);
    expect(image.kind).toBe('linux');
    expect(image.platform).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(image.layers.map((l) => l.diffId)).toEqual(img.layers.map((l) => l.diffId));
    expect(image.layers.map((l) => l.kind)).toEqual(['tar', 'tar', 'tar']);
    for (const [i, layer] of image.layers.entries()) {
      expect(await collect(await layer.open())).toEqual(img.layers[i]!.tar);
      expect(await collect(await layer.blob())).toEqual(img.layers[i]!.blob);
    }
    expect(await store.has(img.manifest.digest as never)).toBe(true);
    expect(await store.has(img.config.digest as never)).toBe(true);
    // Layers are not copied into the store by openImage.
    expect(store.digests()).toHaveLength(2);
  });

  it('computes chainIDs per the OCI spec', () => {
    const a = sha(enc('a')), b = sha(enc('b')), c = sha(enc('c'));
    const ab = sha(enc(`${a} ${b}`));
    expect(chainIds([a, b, c] as never)).toEqual([a, ab, sha(enc(`${ab} ${c}`))]);
  });

  it('opens the only image without a tag, from files in memory (the browser path)', async () => {
    const layout = new Layout();
    const img = await layout.image();
    layout.finish([img.manifest]);
    const core = await ociLayoutSource(memoryTree(layout.files, 'mem'));
    const image = await openImage(core, { transport: 'oci', path: 'mem' });
    expect(image.digest).toBe(img.manifest.digest);
  });

  it('picks the platform from an index: wasi first by default, --platform overrides', async () => {
    const layout = new Layout();
    const linuxAmd = await layout.image({ architecture: 'amd64' });
    const linuxArm = await layout.image({ architecture: 'arm64', variant: 'v8' });
    const wasi = await layout.image({ os: 'wasi', architecture: 'wasm', entrypoint: ['/app.wasm'], layers: [{ entries: [{ path: 'app.wasm', data: wasmBytes('component', 10) }] }] });
    const idx = layout.index([
      withPlatform(linuxAmd.manifest, 'linux', 'amd64'),
      withPlatform(linuxArm.manifest, 'linux', 'arm64', 'v8'),
      withPlatform(wasi.manifest, 'wasi', 'wasm'),
    ]);
    layout.finish([tagged(idx, 'multi')]);
    const core = await ociLayoutSource(memoryTree(layout.files));
    const ref = { transport: 'oci' as const, path: 'x', tag: 'multi' };
    const def = await openImage(core, ref);
    expect(def.digest).toBe(wasi.manifest.digest);
    expect(def.kind).toBe('wasm-component');
    expect((await openImage(core, ref, { platform: 'linux/arm64' })).digest).toBe(linuxArm.manifest.digest);
    expect((await openImage(core, ref, { platform: 'linux/x86_64' })).digest).toBe(linuxAmd.manifest.digest);
    await expect(openImage(core, ref, { platform: 'linux/riscv64' })).rejects.toMatchObject({
      code: 'PLATFORM_MISMATCH',
      message: expect.stringContaining('linux/amd64, linux/arm64/v8, wasi/wasm'),
    });
  });

  it('detects wasm modules by the entrypoint file header in a wasi image', async () => {
    const layout = new Layout();
    const img = await layout.image({
      os: 'wasip1', architecture: 'wasm', entrypoint: ['main.wasm'],
      layers: [{ tar: await makeTar([{ path: 'main.wasm', data: wasmBytes('module', 100) }]) }],
    });
    layout.finish([img.manifest]);
    const image = await openImage(await ociLayoutSource(memoryTree(layout.files)), { transport: 'oci', path: 'x' });
    expect(image.kind).toBe('wasm-module');
  });

  it('reads docker media types: a manifest list, v2 manifests, docker configs and gzip layers', async () => {
    const layout = new Layout();
    const D = {
      list: 'application/vnd.docker.distribution.manifest.list.v2+json',
      manifest: 'application/vnd.docker.distribution.manifest.v2+json',
      config: 'application/vnd.docker.container.image.v1+json',
      layer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
    };
    const mk = async (architecture: string) => layout.image({
      architecture,
      configMediaType: D.config,
      layers: [{ entries: [{ path: `arch-${architecture}`, data: architecture }], mediaType: D.layer }],
      manifestOverride: (m) => ({ ...m, mediaType: D.manifest }),
    });
    const amd = await mk('amd64');
    const arm = await mk('arm64');
    const fix = (d: typeof amd.manifest, arch: string) => withPlatform({ ...d, mediaType: D.manifest }, 'linux', arch);
    const list = layout.index([fix(amd.manifest, 'amd64'), fix(arm.manifest, 'arm64')], D.list);
    layout.finish([tagged(list, 'latest')]);
    const core = await ociLayoutSource(memoryTree(layout.files));
    const image = await openImage(core, { transport: 'oci', path: 'x', tag: 'latest' }, { platform: 'linux/arm64' });
    expect(image.digest).toBe(arm.manifest.digest);
    expect(image.manifestDescriptor.mediaType).toBe(D.manifest);
    expect(new TextDecoder().decode(await collect(await image.layers[0]!.open()))).toContain('arch-arm64');
    // the default on this host is linux/<host arch> when the list has no wasi entry
    const host = process.arch === 'arm64' ? arm : amd;
    expect((await openImage(core, { transport: 'oci', path: 'x', tag: 'latest' })).digest).toBe(host.manifest.digest);
  });
});
