import { Command } from 'commander';
import type { LayoutStore } from '../loader/store/layout-store.ts';
import { register as registerLoad } from './commands/load.ts';
import { register as registerImages } from './commands/images.ts';
import { register as registerInspect } from './commands/inspect.ts';
import { register as registerRmi } from './commands/rmi.ts';
import { register as registerTag } from './commands/tag.ts';
import { register as registerSave } from './commands/save.ts';
import { register as registerExport } from './commands/export.ts';
import { register as registerRun } from './commands/run.ts';
import { register as registerPull } from './commands/pull.ts';
import { register as registerPush } from './commands/push.ts';
import { register as registerLogin } from './commands/login.ts';
import { register as registerPs } from './commands/ps.ts';
import { register as registerLogs } from './commands/logs.ts';
import { register as registerStop } from './commands/stop.ts';
import { register as registerRm } from './commands/rm.ts';
import { register as registerWait } from './commands/wait.ts';
import { register as registerSupervise } from './detached/supervise.ts';

export const VERSION = '0.1.0';

const COMMANDS: ReadonlyArray<readonly [string, (program: Command) => void]> = [
  ['load', registerLoad], ['images', registerImages], ['inspect', registerInspect], ['rmi', registerRmi],
  ['tag', registerTag], ['save', registerSave], ['export', registerExport], ['run', registerRun],
  ['pull', registerPull], ['push', registerPush], ['login', registerLogin],
  ['ps', registerPs], ['logs', registerLogs], ['stop', registerStop], ['rm', registerRm], ['wait', registerWait],
  ['__supervise', registerSupervise],
];
/** Commands registered by another's module (login registers logout, stop registers kill). */
const REGISTERED_BY: Record<string, string> = { logout: 'login', kill: 'stop' };

/**
 * The wasmbox command line. Each command lives in its own module with `register(program)`, and imports
 * its heavy dependencies lazily inside its action so that start-up stays close to `node -e 0`.
 * Given the command word, only that command is built (the others are needed only for help and
 * suggestions, when no known command is named).
 */
export function createProgram(command?: string): Command {
  const program = new Command('wasmbox')
    .description('Run container images (WASI and native Linux) from OCI and docker archives')
    .version(VERSION, '-v, --version')
    .option('--home <dir>', 'image store directory (default: $WASMBOX_HOME, else $XDG_DATA_HOME/wasmbox)')
    .enablePositionalOptions()
    .showSuggestionAfterError(true)
    .configureOutput({
      // docker style: "wasmbox: unknown option '--x'"
      outputError: (str, write) => write(`wasmbox: ${str.replace(/^error: /, '')}`),
    })
    // Usage errors throw instead of exiting; main() turns them into status 125 as docker does.
    .exitOverride();
  const chosen = COMMANDS.filter(([name]) => name === command || (command !== undefined && REGISTERED_BY[command] === name));
  for (const [, register] of chosen.length > 0 ? chosen : COMMANDS) register(program);
  return program;
}

/** The stores a command line opened (by its root command), so main() can wait for their layout. */
const openedStores = new WeakMap<Command, Array<Promise<LayoutStore>>>();
/** The way a command line went (by its root command): see noteCodePath. */
const codePaths = new WeakMap<Command, string>();

function rootOf(cmd: Command): Command {
  let root = cmd;
  while (root.parent) root = root.parent;
  return root;
}

/**
 * Names the way a command went when it has several (`run:linux`, `run:wasi:inline`): bin/wasmbox.cjs
 * keeps its code cache by command, and makes it again when a run goes a way the cache has not seen.
 */
export function noteCodePath(cmd: Command, path: string): void {
  codePaths.set(rootOf(cmd), path);
}

export function codePathOf(program: Command): string | undefined {
  return codePaths.get(program);
}

/**
 * The image store the command should use: `--home`, else $WASMBOX_HOME, else the XDG data dir. A new
 * store's layout files are written while the command goes on (a pull's downloads start meanwhile);
 * main() waits for them before the process ends (storesSettled).
 */
export function storeFor(cmd: Command): Promise<LayoutStore> {
  const opening = (async () => {
    const { LayoutStore } = await import('../loader/store/layout-store.ts');
    const home = cmd.optsWithGlobals<{ home?: string }>().home;
    return LayoutStore.open(home ?? LayoutStore.defaultDir(), { waitForLayout: false });
  })();
  const root = rootOf(cmd);
  const list = openedStores.get(root) ?? [];
  list.push(opening);
  openedStores.set(root, list);
  return opening;
}

/** Waits until every store this command line opened has its layout on disk (rejects if one could not be written). */
export async function storesSettled(program: Command): Promise<void> {
  for (const opening of openedStores.get(program) ?? []) {
    const store = await opening.catch(() => undefined); // (a store that failed to open failed its command already)
    await store?.settled();
  }
}

export function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}
