import type { Command } from 'commander';
import { storeFor } from '../program.ts';

export function register(program: Command): void {
  program
    .command('save')
    .description('Save an image from the store to an archive (OCI archive by default)')
    .argument('<image>', 'NAME[:TAG], image ID or digest')
    .option('-o, --output <file>', 'archive to write (default: stdout, when it is not a terminal)')
    .option('--format <format>', 'oci-archive or docker-archive', 'oci-archive')
    .action(async (name: string, o: { output?: string; format: string }, cmd: Command) => {
      const { SandboxError } = await import('../../errors.ts');
      if (o.format !== 'oci-archive' && o.format !== 'docker-archive') {
        throw new SandboxError('INVALID_ARGUMENT', `unknown --format ${JSON.stringify(o.format)}: use oci-archive or docker-archive`);
      }
      const store = await storeFor(cmd);
      const [{ saveImage }, { openImage }, { storeSource }, { parseImageName }] = await Promise.all([
        import('../../loader/save.ts'),
        import('../../loader/open-image.ts'),
        import('../../loader/store/store-source.ts'),
        import('../../loader/store/names.ts'),
      ]);
      const hits = await store.get(name);
      const entry = hits[0]!;
      // By name: that name goes into the archive; by ID or digest: every name of the image.
      let names: string[];
      try {
        const n = parseImageName(name);
        names = hits.some((h) => h.name?.repository === n.repository) ? [`${entry.name!.repository}:${entry.name!.tag}`] : [];
      } catch {
        names = [];
      }
      if (names.length === 0) names = hits.filter((h) => h.name).map((h) => `${h.name!.repository}:${h.name!.tag}`);
      const image = await openImage(storeSource(store), entry.descriptor, { store });
      if (o.output !== undefined) {
        await saveImage(image, store, o.output, { format: o.format, names });
        return;
      }
      if (process.stdout.isTTY) {
        throw new SandboxError('INVALID_ARGUMENT', 'cowardly refusing to write an archive to a terminal: use -o FILE or redirect stdout');
      }
      // The archive is written whole first, so that a failure leaves stdout empty rather than truncated.
      const [{ createReadStream, rmSync }, { join }, { randomBytes }, { pipeline }] = await Promise.all([
        import('node:fs'), import('node:path'), import('node:crypto'), import('node:stream/promises'),
      ]);
      const temp = join(store.tmpDir, `${process.pid}-save-${randomBytes(6).toString('hex')}.tar`);
      try {
        await saveImage(image, store, temp, { format: o.format, names });
        await pipeline(createReadStream(temp), process.stdout);
      } finally {
        rmSync(temp, { force: true });
      }
    });
}
