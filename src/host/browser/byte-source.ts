import { SandboxError } from '../../errors.ts';
import type { ByteSource, FileTree } from '../../loader/byte-source.ts';

// Browsers have no paths: hand the loader a Blob, ArrayBuffer or Uint8Array (toByteSource) or a memoryTree.
function noFiles(path: string): SandboxError {
  return new SandboxError('INVALID_ARGUMENT', `no local file system in this host; cannot open ${path} (pass a Blob or bytes instead)`);
}

export async function openFileSource(path: string): Promise<ByteSource> {
  throw noFiles(path);
}

export function directoryTree(dir: string): FileTree {
  return { name: dir, open: async () => { throw noFiles(dir); } };
}

export async function pathKind(_path: string): Promise<'file' | 'directory' | 'missing'> {
  return 'missing';
}
