import type { Command } from 'commander';
import { storeFor } from '../program.ts';

export function register(program: Command): void {
  program
    .command('tag')
    .description('Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE')
    .argument('<source>', 'SOURCE_IMAGE[:TAG], image ID or digest')
    .argument('<target>', 'TARGET_IMAGE[:TAG]')
    .action(async (source: string, target: string, _o: unknown, cmd: Command) => {
      const store = await storeFor(cmd);
      await store.tag(source, target);
    });
}
