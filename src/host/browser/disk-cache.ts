export interface DiskCache {
  get(space: string, key: string): Uint8Array | undefined;
  put(space: string, key: string, bytes: Uint8Array): void;
}

/** Browsers keep what the runtime derives from images in memory only (each runtime's own caches). */
export function openDiskCache(_storeDir: string): DiskCache | undefined {
  return undefined;
}
