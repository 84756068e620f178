import { createRequire } from 'node:module';

const nodeRequire = createRequire(import.meta.url);

/**
 * A Node built-in module loaded on first use. A bundle hoists every static `import ... from 'node:x'` to
 * its top, so a heavy built-in that only some commands need (zlib, stream, crypto, child_process: 3-10 ms
 * each here) would otherwise be loaded by every CLI start.
 */
export function lazyBuiltin<T>(name: string): () => T {
  let mod: T | undefined;
  return () => (mod ??= nodeRequire(name) as T);
}
