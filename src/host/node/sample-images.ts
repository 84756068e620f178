import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The sample images that ship in the package as `images/NAME.tar` (OCI archives). The directory is found
 * relative to this code: `dist/*.js` -> `../images`, or `src/host/node/sample-images.ts` -> `../../../images`
 * when run from source (tests).
 */
export function sampleImagesDir(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const rel of ['../images', '../../../images']) {
    const dir = join(here, rel);
    if (existsSync(join(dir, '..', 'package.json')) && existsSync(dir)) return dir;
  }
  return undefined;
}

/** The archive of sample image `name` (`hello`, `hello:latest`), or undefined when there is none. */
export function sampleImagePath(name: string): string | undefined {
  const m = /^(?:docker\.io\/)?(?:library\/)?([a-z0-9][a-z0-9._-]*)(?::latest)?$/.exec(name);
  if (!m) return undefined;
  const dir = sampleImagesDir();
  if (!dir) return undefined;
  const file = join(dir, `${m[1]}.tar`);
  return existsSync(file) ? file : undefined;
}

export function sampleImageNames(): string[] {
  const dir = sampleImagesDir();
  if (!dir) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.tar'))
    .map((f) => f.slice(0, -4))
    .sort();
}
