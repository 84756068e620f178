import { createRequire } from 'node:module';

const nodeRequire = createRequire(import.meta.url);

/**
 * A Node built-in module loaded on first use, for the built-ins the bundles' plugin (build-builtins.mjs)
 * cannot defer: those whose module is a function (node:stream, ~3 ms to load here), which the bundle must
 * receive as they are. Other built-ins are imported as usual; the plugin loads them on first use.
 */
export function lazyBuiltin<T>(name: string): () => T {
  let mod: T | undefined;
  return () => (mod ??= nodeRequire(name) as T);
}
