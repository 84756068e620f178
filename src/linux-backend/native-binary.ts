/**
 * Where this package's own static programs (native/PROGRAM.c, built into native/bin/PROGRAM-<arch>) are
 * on the host: setid (the user switch with supplementary groups), pty (a container's terminal) and publish (its port relay). This module runs from src/linux-backend/ (sources) or dist/ (bundles): the package
 * root is found by walking up from it to the first directory with a package.json.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SeccompArch } from './syscalls.ts';

export type NativeProgram = 'setid' | 'pty' | 'publish';

/** The program's binary for `arch`, or undefined when this package has none. */
export function findNativeBinary(program: NativeProgram, arch: SeccompArch, moduleUrl: string = import.meta.url): string | undefined {
  let dir: string;
  try {
    dir = path.dirname(fileURLToPath(moduleUrl));
  } catch {
    return undefined;
  }
  for (let depth = 0; depth < 4; depth++) {
    const candidate = path.join(dir, 'native', 'bin', `${program}-${arch}`);
    try {
      fs.accessSync(candidate, fs.constants.R_OK | fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch { /* not here */ }
    if (fs.existsSync(path.join(dir, 'package.json'))) return undefined;
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
  return undefined;
}
