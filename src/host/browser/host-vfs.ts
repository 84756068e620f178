import { SandboxError } from '../../errors.ts';
import type { Vfs } from '../../fs/vfs.ts';

/** Browsers have no host directories to mount. */
export function hostDirVfs(_dir: string, _opts: { readOnly: boolean }): Vfs<unknown> {
  throw new SandboxError('CAPABILITY_DENIED', 'host directories can be mounted only in Node');
}
