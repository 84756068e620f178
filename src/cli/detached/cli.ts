import type { Command } from 'commander';
import { toSandboxError } from '../../errors.ts';
import { detachedRoot, resolveContainer, type DetachedContainer } from './state.ts';

/** Where the detached containers of this command line's store live. */
export async function rootFor(cmd: Command): Promise<string> {
  const home = cmd.optsWithGlobals<{ home?: string }>().home;
  if (home) return detachedRoot(home);
  const { LayoutStore } = await import('../../loader/store/layout-store.ts');
  return detachedRoot(LayoutStore.defaultDir());
}

/**
 * docker's way with `stop a b c`: each container in turn, its name printed when done, an error for each
 * one that failed (an unknown name among them); status 1 if any failed.
 */
export async function forEachContainer(
  root: string,
  refs: string[],
  action: (c: DetachedContainer, ref: string) => Promise<string | undefined>,
): Promise<number> {
  let failed = false;
  for (const ref of refs) {
    try {
      const line = await action(resolveContainer(root, ref), ref);
      if (line !== undefined) process.stdout.write(`${line}\n`);
    } catch (e) {
      failed = true;
      process.stderr.write(`wasmbox: ${toSandboxError(e).message}\n`);
    }
  }
  return failed ? 1 : 0;
}
