import { describe, expect, it } from 'vitest';
import { memoryTree } from '../src/loader/byte-source.ts';
import { openImage } from '../src/loader/open-image.ts';
import { ociLayoutSource } from '../src/loader/sources/oci-layout.ts';
import { wasmKind } from '../src/loader/wasm-image.ts';
import { collect, enc, Layout, OCI, wasmBytes, withPlatform } from './helpers/image-fixtures.ts';
import { makeTar } from './helpers/tar-fixtures.ts';

async function open(layout: Layout, platform?: string) {
  return openImage(await ociLayoutSource(memoryTree(layout.files)), { transport: 'oci', path: 'mem' }, platform ? { platform } : {});
}

function rawWasmImage(layerType: string, configType: string, config: unknown, wasm: Uint8Array): Layout {
  const layout = new Layout();
  const layer = layout.blob(layerType, wasm);
  const cfg = layout.blob(configType, enc(JSON.stringify(config)));
  const manifest = layout.json(OCI.manifest, { schemaVersion: 2, mediaType: OCI.manifest, config: cfg, layers: [layer] });
  return layout.finish([manifest]);
}

describe('wasm images in the forms in use today', () => {
  it('tells modules from components by the header version/layer fields', () => {
    expect(wasmKind(wasmBytes('module'))).toBe('module');
    expect(wasmKind(wasmBytes('component'))).toBe('component');
    expect(wasmKind(enc('\0asm'))).toBeUndefined();
    expect(wasmKind(enc('#!/bin/sh\n'))).toBeUndefined();
  });

  it('a normal image with os wasi, architecture wasm and a .wasm entrypoint (module and component)', async () => {
    for (const kind of ['module', 'component'] as const) {
      const layout = new Layout();
      const img = await layout.image({
        os: 'wasi', architecture: 'wasm', entrypoint: ['/bin/app.wasm'],
        layers: [
          { entries: [{ path: 'bin/', type: 'directory' }, { path: 'bin/app.wasm', data: wasmBytes(kind === 'module' ? 'component' : 'module') }] },
          // the upper layer replaces the module: the top-most copy decides
          { entries: [{ path: 'bin/app.wasm', data: wasmBytes(kind, 32) }, { path: 'etc/x', data: 'x' }] },
        ],
      });
      layout.finish([img.manifest]);
      expect((await open(layout)).kind).toBe(`wasm-${kind}`);
    }
  });

  it('a raw component layer (application/vnd.bytecodealliance.wasm.component.layer.v0+wasm)', async () => {
    const wasm = wasmBytes('component', 40);
    const layout = new Layout();
    const layer = layout.blob('application/vnd.bytecodealliance.wasm.component.layer.v0+wasm', wasm);
    const cfg = layout.json(OCI.config, { os: 'wasip2', architecture: 'wasm', rootfs: { type: 'layers', diff_ids: [layer.digest] } });
    const m = layout.json(OCI.manifest, { schemaVersion: 2, mediaType: OCI.manifest, config: cfg, layers: [layer] });
    layout.finish([withPlatform(m, 'wasip2', 'wasm')]);
    const image = await open(layout);
    expect(image.kind).toBe('wasm-component');
    expect(image.layers[0]!.kind).toBe('wasm');
    expect(await collect(await image.layers[0]!.open())).toEqual(wasm);
  });

  it('the CNCF artifact: config application/vnd.wasm.config.v0+json, an application/wasm layer', async () => {
    const wasm = wasmBytes('module', 20);
    const layout = rawWasmImage('application/wasm', 'application/vnd.wasm.config.v0+json', {
      created: '2024-01-01T00:00:00Z', author: 'someone', architecture: 'wasm', os: 'wasip1',
      layerDigests: ['sha256:x'], component: { exports: [], imports: [] },
    }, wasm);
    const image = await open(layout);
    expect(image.kind).toBe('wasm-module');
    expect(image.platform).toEqual({ os: 'wasip1', architecture: 'wasm' });
    expect(image.config.rootfs.diff_ids).toEqual([image.layers[0]!.descriptor.digest]);
    expect(image.layers[0]!.diffId).toBe(image.layers[0]!.descriptor.digest);
    expect(await collect(await image.layers[0]!.open())).toEqual(wasm);
  });

  it('the legacy wasm-to-oci content layer (application/vnd.wasm.content.layer.v1+wasm)', async () => {
    const layout = rawWasmImage('application/vnd.wasm.content.layer.v1+wasm', 'application/vnd.wasm.config.v1+json', {}, wasmBytes('module', 8));
    const image = await open(layout);
    expect(image.kind).toBe('wasm-module');
    expect(image.layers[0]!.kind).toBe('wasm');
  });

  it('a raw wasm layer that is not wasm is MALFORMED', async () => {
    const layout = rawWasmImage('application/wasm', 'application/vnd.wasm.config.v0+json', { os: 'wasip1', architecture: 'wasm' }, enc('MZ not wasm'));
    await expect(open(layout)).rejects.toMatchObject({ code: 'MALFORMED', message: expect.stringContaining('not a WebAssembly') });
  });

  it('an index holding wasi and linux picks wasi by default and linux with --platform', async () => {
    const layout = new Layout();
    const wasi = await layout.image({ os: 'wasip1', architecture: 'wasm', entrypoint: ['/a.wasm'], layers: [{ tar: await makeTar([{ path: 'a.wasm', data: wasmBytes() }]) }] });
    const linux = await layout.image({ os: 'linux', architecture: 'arm64' });
    const idx = layout.index([withPlatform(linux.manifest, 'linux', 'arm64'), withPlatform(wasi.manifest, 'wasip1', 'wasm')]);
    layout.finish([idx]);
    expect((await open(layout)).kind).toBe('wasm-module');
    expect((await open(layout, 'wasi/wasm')).digest).toBe(wasi.manifest.digest);
    expect((await open(layout, 'linux/aarch64')).kind).toBe('linux');
  });
});
