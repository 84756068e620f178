import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bytesSource, memoryTree } from '../src/loader/byte-source.ts';
import { openImage } from '../src/loader/open-image.ts';
import { dockerArchiveSource } from '../src/loader/sources/docker-archive.ts';
import { sourceFromBytes } from '../src/loader/sources/detect.ts';
import { detectLocalRef, openLocalImage, openLocalSource } from '../src/loader/sources/local.ts';
import { indexTar } from '../src/loader/tar-index.ts';
import { collect, dockerSaveFiles, filesToTar, Layout, sha, tagged, wasmBytes, writeFiles } from './helpers/image-fixtures.ts';
import { makeTar } from './helpers/tar-fixtures.ts';

let tmp: string;
beforeAll(async () => { tmp = await mkdtemp(join(tmpdir(), 'wasmbox-sources-')); });
afterAll(async () => { await rm(tmp, { recursive: true, force: true }); });

async function twoTagLayout() {
  const layout = new Layout();
  const a = await layout.image({ layers: [{ entries: [{ path: 'a', data: 'A' }] }] });
  const b = await layout.image({ layers: [{ entries: [{ path: 'b', data: 'B' }] }] });
  layout.finish([tagged(a.manifest, 'a'), tagged(b.manifest, 'b')]);
  return { layout, a, b };
}

describe('OCI archive', () => {
  it('indexes the tar by headers and opens images by tag; a plain .tar path is detected', async () => {
    const { layout, a, b } = await twoTagLayout();
    const file = join(tmp, 'two.tar');
    await writeFile(file, await layout.toTar());
    expect(await detectLocalRef(file)).toEqual({ transport: 'oci-archive', path: file });
    const ia = await openLocalImage(`oci-archive:${file}:a`);
    const ib = await openLocalImage(`oci-archive:${file}:b`);
    expect(ia.digest).toBe(a.manifest.digest);
    expect(ib.digest).toBe(b.manifest.digest);
    expect(await collect(await ib.layers[0]!.open())).toEqual(b.layers[0]!.tar);
    await expect(openLocalImage(file)).rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining('a, b') });
    await expect(openLocalImage(`oci-archive:${file}:c`)).rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining('"c"') });
    const listed = await (await openLocalSource({ transport: 'oci-archive', path: file })).list!();
    expect(listed.map((l) => l.names)).toEqual([['a'], ['b']]);
  });

  it('reads the archive by range: the index holds offsets, not contents', async () => {
    const { layout } = await twoTagLayout();
    const tar = await layout.toTar();
    const index = await indexTar(bytesSource(tar));
    const m = index.get('index.json')!;
    expect(new TextDecoder().decode(tar.subarray(m.offset, m.offset + m.size))).toContain('"manifests"');
  });

  it('opens an OCI layout directory by a plain path', async () => {
    const { layout, a } = await twoTagLayout();
    const dir = await layout.writeDir(join(tmp, 'dir-layout'));
    expect(await detectLocalRef(dir)).toEqual({ transport: 'oci', path: dir });
    expect((await openLocalImage(`oci:${dir}:a`)).digest).toBe(a.manifest.digest);
    expect((await openLocalImage(`oci:${dir}@${a.manifest.digest}`)).digest).toBe(a.manifest.digest);
  });
});

describe('docker-save archives', () => {
  for (const form of ['legacy', 'blobs'] as const) {
    it(`${form} form: synthesizes a docker v2 manifest, config digest = sha256(config JSON)`, async () => {
      const files = await dockerSaveFiles([
        { repoTags: ['app:1', 'app:latest'], spec: { layers: [{ entries: [{ path: 'x', data: 'X' }], compression: 'none' }, { entries: [{ path: 'y', data: 'Y' }], compression: 'gzip' }] } },
        { repoTags: ['other/thing:2'] },
      ], form);
      const file = join(tmp, `save-${form}.tar`);
      await writeFile(file, await filesToTar(files));
      expect(await detectLocalRef(file)).toEqual({ transport: 'docker-archive', path: file });
      const image = await openLocalImage(`docker-archive:${file}:app:1`);
      const manifestJson = JSON.parse(new TextDecoder().decode(files.get('manifest.json')));
      const configBytes = files.get(manifestJson[0].Config)!;
      expect(image.id).toBe(sha(configBytes));
      expect(image.manifest.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
      expect(image.manifest.layers.map((l) => l.mediaType)).toEqual([
        'application/vnd.docker.image.rootfs.diff.tar',
        'application/vnd.docker.image.rootfs.diff.tar.gzip',
      ]);
      const diffIds = JSON.parse(new TextDecoder().decode(configBytes)).rootfs.diff_ids;
      for (const [i, layer] of image.layers.entries()) {
        expect(layer.diffId).toBe(diffIds[i]);
        expect(sha(await collect(await layer.open()))).toBe(diffIds[i]);
      }
      // docker's short names match the normalized RepoTags
      expect((await openLocalImage(`docker-archive:${file}:docker.io/library/app:latest`)).id).toBe(image.id);
      expect((await openLocalImage(`docker-archive:${file}:other/thing:2`)).id).not.toBe(image.id);
      // the synthesized manifest is stable
      expect((await openLocalImage(`docker-archive:${file}:app:1`)).digest).toBe(image.digest);
      const listed = await (await openLocalSource({ transport: 'docker-archive', path: file })).list!();
      expect(listed.map((l) => l.names)).toEqual([['app:1', 'app:latest'], ['other/thing:2']]);
    });
  }

  it('newer docker (>= 25) archives hold both manifest.json and an OCI layout; both routes give the same layers', async () => {
    const files = await dockerSaveFiles([{ repoTags: ['app:1'] }], 'blobs', true);
    const file = join(tmp, 'save-docker25.tar');
    await writeFile(file, await filesToTar(files));
    const viaOci = await openLocalImage(file);
    const viaDocker = await openLocalImage(`docker-archive:${file}`);
    expect(viaOci.id).toBe(viaDocker.id);
    expect(viaOci.layers.map((l) => l.diffId)).toEqual(viaDocker.layers.map((l) => l.diffId));
  });

  it('follows a symlinked layer.tar (docker dedupes identical layers that way)', async () => {
    const files = await dockerSaveFiles([{ repoTags: ['dup:1'], spec: { layers: [{ entries: [{ path: 'same', data: 's' }] }, { entries: [{ path: 'same', data: 's' }] }] } }], 'legacy');
    const manifest = JSON.parse(new TextDecoder().decode(files.get('manifest.json')));
    const [first, second] = manifest[0].Layers as string[];
    files.delete(second!);
    const entries = [...files].map(([path, d]) => ({ path, data: d }));
    const tar = await makeTar([...entries, { path: second!, type: 'symlink' as const, linkname: `../${first}` }]);
    const core = await sourceFromBytes(tar, 'dedup.tar');
    const image = await openImage(core, { transport: 'docker-archive', path: 'dedup.tar' });
    expect(image.layers).toHaveLength(2);
    expect(await collect(await image.layers[1]!.open())).toEqual(await collect(await image.layers[0]!.open()));
  });

  it('works over an unpacked directory too', async () => {
    const files = await dockerSaveFiles([{ repoTags: ['d:1'] }], 'legacy');
    const dir = join(tmp, 'unpacked-save');
    await writeFiles(dir, files);
    expect(await detectLocalRef(dir)).toEqual({ transport: 'docker-archive', path: dir });
    expect((await openLocalImage(dir)).kind).toBe('linux');
    const core = await dockerArchiveSource(memoryTree(files));
    expect((await openImage(core, { transport: 'docker-archive', path: 'mem' })).layers).toHaveLength(1);
  });
});

describe('bare .wasm', () => {
  it('wraps a module as a one-layer wasi/wasm image whose entrypoint is the module', async () => {
    const mod = wasmBytes('module', 64);
    const file = join(tmp, 'hello.wasm');
    await writeFile(file, mod);
    const image = await openLocalImage(file);
    expect(image.kind).toBe('wasm-module');
    expect(image.platform).toEqual({ os: 'wasi', architecture: 'wasm' });
    expect(image.config.config?.Entrypoint).toEqual(['/hello.wasm']);
    expect(image.layers).toHaveLength(1);
    const tar = await collect(await image.layers[0]!.open());
    const idx = await indexTar(bytesSource(tar));
    const m = idx.get('hello.wasm')!;
    expect(tar.subarray(m.offset, m.offset + m.size)).toEqual(mod);
    // deterministic: the same module gives the same image
    expect((await openLocalImage(file)).digest).toBe(image.digest);
  });

  it('recognises a component and is detected by content from bytes (the browser path)', async () => {
    const comp = wasmBytes('component', 16);
    const image = await openImage(await sourceFromBytes(new Blob([comp as BlobPart]), 'app.wasm'), { transport: 'wasm', path: 'app.wasm' });
    expect(image.kind).toBe('wasm-component');
    const file = join(tmp, 'noext');
    await writeFile(file, comp);
    expect(await detectLocalRef(file)).toEqual({ transport: 'wasm', path: file });
  });

  it('refuses a .wasm that is not WebAssembly', async () => {
    const file = join(tmp, 'fake.wasm');
    await writeFile(file, 'not wasm at all');
    await expect(openLocalImage(file)).rejects.toMatchObject({ code: 'MALFORMED', message: expect.stringContaining('fake.wasm') });
  });

  it('a gzip-compressed archive is refused with a clear message (it cannot be read by range)', async () => {
    const file = join(tmp, 'saved.tar.gz');
    const { gzipSync } = await import('node:zlib');
    await writeFile(file, gzipSync(await filesToTar(await dockerSaveFiles([{ repoTags: ['z:1'] }], 'legacy'))));
    await expect(openLocalImage(file)).rejects.toMatchObject({ code: 'INVALID_REFERENCE', message: expect.stringContaining('gzip') });
  });

  it('reports a missing path as NOT_FOUND', async () => {
    await expect(openLocalImage(join(tmp, 'nope.tar'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(openLocalImage(join(tmp, 'nope.wasm'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
