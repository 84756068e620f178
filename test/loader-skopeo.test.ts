import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectLocalRef, openLocalImage } from '../src/loader/sources/local.ts';
import { collect, Layout, sha, tagged } from './helpers/image-fixtures.ts';

const hasSkopeo = (() => { try { execFileSync('skopeo', ['--version'], { stdio: 'ignore' }); return true; } catch { return false; } })();

let tmp: string;
beforeAll(async () => { tmp = await mkdtemp(join(tmpdir(), 'wasmbox-skopeo-')); });
afterAll(async () => { await rm(tmp, { recursive: true, force: true }); });

describe.skipIf(!hasSkopeo)('archives written by skopeo', () => {
  it('loads skopeo docker-archive and oci-archive output of our own layout', async () => {
    const layout = new Layout();
    const img = await layout.image({
      layers: [
        { entries: [{ path: 'bin/', type: 'directory' }, { path: 'bin/tool', data: 'T'.repeat(3000), mode: 0o755 }], compression: 'gzip' },
        { entries: [{ path: 'etc/motd', data: 'hello' }], compression: 'none' },
      ],
    });
    layout.finish([tagged(img.manifest, 'v1')]);
    const src = await layout.writeDir(join(tmp, 'src'));
    const dockerTar = join(tmp, 'docker.tar');
    const ociTar = join(tmp, 'oci.tar');
    execFileSync('skopeo', ['copy', '-q', `oci:${src}:v1`, `docker-archive:${dockerTar}:x:y`]);
    execFileSync('skopeo', ['copy', '-q', `oci:${src}:v1`, `oci-archive:${ociTar}:v1`]);

    expect(await detectLocalRef(dockerTar)).toMatchObject({ transport: 'docker-archive' });
    expect(await detectLocalRef(ociTar)).toMatchObject({ transport: 'oci-archive' });
    const wantDiffs = img.layers.map((l) => l.diffId);

    // skopeo writes RepoTags as docker.io/library/x:y and symlinks <id>/layer.tar to uncompressed <hex>.tar
    for (const r of [dockerTar, `docker-archive:${dockerTar}:x:y`, `docker-archive:${dockerTar}:docker.io/library/x:y`]) {
      const image = await openLocalImage(r);
      expect(image.layers.map((l) => l.diffId)).toEqual(wantDiffs);
      expect(image.kind).toBe('linux');
      for (const [i, layer] of image.layers.entries()) expect(sha(await collect(await layer.open()))).toBe(wantDiffs[i]);
    }

    for (const r of [ociTar, `oci-archive:${ociTar}:v1`]) {
      const image = await openLocalImage(r);
      expect(image.layers.map((l) => l.diffId)).toEqual(wantDiffs);
      for (const [i, layer] of image.layers.entries()) expect(sha(await collect(await layer.open()))).toBe(wantDiffs[i]);
    }
  });
});
