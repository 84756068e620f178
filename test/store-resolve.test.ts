import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isSandboxError } from '../src/errors.ts';
import { LayoutStore } from '../src/loader/store/layout-store.ts';
import { loadImage, nameStem, namesFor } from '../src/loader/store/load.ts';
import { resolveImage } from '../src/loader/store/resolve-image.ts';
import { sampleImageNames, sampleImagePath } from '../src/host/node/sample-images.ts';
import { Layout, collect, hex, sha, tagged } from './helpers/image-fixtures.ts';

let dir: string;
let store: LayoutStore;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wasmbox-resolve-'));
  store = await LayoutStore.open(join(dir, 'home'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function archive(tag: string) {
  const layout = new Layout();
  const img = await layout.image({
    layers: [
      { entries: [{ path: 'a.txt', data: 'layer one' }], compression: 'gzip' },
      { entries: [{ path: 'b.txt', data: 'layer two' }], compression: 'none' },
    ],
  });
  layout.finish([tagged(img.manifest, tag)]);
  const file = join(dir, 'img.tar');
  writeFileSync(file, await layout.toTar());
  return { file, img };
}

describe('resolveImage', () => {
  it('opens a stored image by name, name:tag, image ID prefix and digest, with verified layers', async () => {
    const { file, img } = await archive('app:1');
    await loadImage(store, file, { names: ['app:1', 'app:latest'] });
    for (const ref of ['app', 'app:1', hex(img.config.digest).slice(0, 10), img.manifest.digest, `app@${img.manifest.digest}`]) {
      const image = await resolveImage(ref, { store });
      expect(image.digest, ref).toBe(img.manifest.digest);
      expect(image.id).toBe(img.config.digest);
    }
    const image = await resolveImage('app:1', { store });
    for (const [i, layer] of image.layers.entries()) expect(sha(await collect(await layer.open()))).toBe(img.layers[i]!.diffId);
  });

  it('detects a blob corrupted on disk when the image is read back', async () => {
    const { file, img } = await archive('app:1');
    await loadImage(store, file);
    const blob = join(store.blobDir, hex(sha(img.layers[1]!.blob)));
    const bytes = readFileSync(blob);
    bytes[100] ^= 1;
    writeFileSync(blob, bytes);
    const image = await resolveImage('app:1', { store });
    await expect(collect(await image.layers[1]!.open())).rejects.toSatisfy((e) => isSandboxError(e, 'DIGEST_MISMATCH'));
  });

  it('opens a local archive without storing it', async () => {
    const { file, img } = await archive('app:1');
    const before = readFileSync(store.indexPath, 'utf8');
    const image = await resolveImage(file, { store });
    expect(image.digest).toBe(img.manifest.digest);
    expect(readFileSync(store.indexPath, 'utf8')).toBe(before);
    expect(readdirSync(store.blobDir)).toEqual([]);
  });

  it('loads a bundled sample image on first use, and only then', async () => {
    const [name] = sampleImageNames();
    expect(name, 'the package ships sample images in images/').toBeDefined();
    const image = await resolveImage(name!, { store, fallback: sampleImagePath });
    const [stored] = await store.get(`${name}:latest`);
    expect(stored!.descriptor.digest).toBe(image.digest);
    const index = readFileSync(store.indexPath, 'utf8');
    await resolveImage(`${name}:latest`, { store, fallback: sampleImagePath });
    expect(readFileSync(store.indexPath, 'utf8')).toBe(index);
    await expect(resolveImage('no-such-sample', { store, fallback: sampleImagePath })).rejects.toSatisfy(
      (e) => isSandboxError(e, 'NOT_FOUND') && /No such image: no-such-sample/.test((e as Error).message),
    );
  });

  it('rejects malformed references before any I/O', async () => {
    await expect(resolveImage('UPPER/Case', { store })).rejects.toSatisfy((e) => isSandboxError(e, 'INVALID_REFERENCE'));
  });
});

describe('names of loaded images', () => {
  it('takes full names as they are, tags under the file name, else FILE:latest', () => {
    expect(namesFor(['docker.io/library/hello:1', 'latest'], 'x')).toEqual([{ repository: 'hello', tag: '1' }]);
    expect(namesFor(['v2'], 'app')).toEqual([{ repository: 'app', tag: 'v2' }]);
    expect(namesFor([], 'app')).toEqual([{ repository: 'app', tag: 'latest' }]);
    expect(nameStem('/x/My Image.oci.tar')).toBe('my-image');
    expect(nameStem('/x/hello.wasm')).toBe('hello');
    expect(nameStem('/x/---.tar')).toBe('image');
  });
});
