import * as fs from 'node:fs';
import * as path from 'node:path';
import { uniqueSuffix } from './files.ts';

/**
 * What the runtime derives from stored images and keeps between processes: packed root filesystems by
 * the chainID of the top layer (`rootfs`), image kinds by manifest digest (`kind`). Keys are digests.
 */
export interface DiskCache {
  get(space: string, key: string): Uint8Array | undefined;
  /** Best effort: a cache that cannot be written is only slower. */
  put(space: string, key: string, bytes: Uint8Array): void;
}

/** The cache under a store directory (`DIR/.wasmbox/cache/SPACE/HEX`); `wasmbox rmi` empties it. */
export function openDiskCache(storeDir: string): DiskCache {
  const root = path.join(storeDir, '.wasmbox', 'cache');
  const file = (space: string, key: string) => path.join(root, space, key.replace(/^sha256:/, ''));
  return {
    get(space, key) {
      try {
        return fs.readFileSync(file(space, key));
      } catch {
        return undefined;
      }
    },
    put(space, key, bytes) {
      const target = file(space, key);
      const tmp = `${target}.${uniqueSuffix()}.tmp`;
      try {
        fs.mkdirSync(path.dirname(target), { recursive: true });
        fs.writeFileSync(tmp, bytes, { mode: 0o644 });
        fs.renameSync(tmp, target);
      } catch {
        try { fs.rmSync(tmp, { force: true }); } catch { /* already gone */ }
      }
    },
  };
}
