import type { Command } from 'commander';
import { print, storeFor } from '../program.ts';
import { ExitCode, reportError } from '../exit-codes.ts';
import type { LayoutStore, StoredImage } from '../../loader/store/layout-store.ts';

export function register(program: Command): void {
  program
    .command('inspect')
    .description('Show low-level information on images, as a JSON array')
    .argument('<image...>', 'NAME[:TAG], image ID or digest')
    .action(async (images: string[], _o: unknown, cmd: Command) => {
      const store = await storeFor(cmd);
      const all = await store.list();
      const out: unknown[] = [];
      let failed = false;
      for (const image of images) {
        try {
          const [hit] = await store.get(image);
          out.push(await describe(store, hit!, all));
        } catch (e) {
          reportError(e);
          failed = true;
        }
      }
      print(JSON.stringify(out, null, 4));
      if (failed) process.exitCode = ExitCode.failed;
    });
}

interface ManifestLike { mediaType?: string; config?: { digest: string; size: number; mediaType: string }; layers?: Array<{ mediaType: string; digest: string; size: number }>; manifests?: unknown[]; annotations?: Record<string, string> }

/** docker inspect's shape (Id, RepoTags, RepoDigests, Created, Config, RootFS...), plus the OCI descriptor. */
async function describe(store: LayoutStore, image: StoredImage, all: StoredImage[]): Promise<Record<string, unknown>> {
  const same = all.filter((i) => i.descriptor.digest === image.descriptor.digest);
  const repoTags = same.filter((i) => i.name).map((i) => `${i.name!.repository}:${i.name!.tag}`);
  const repoDigests = [...new Set(same.flatMap((i) => {
    const repository = i.name?.repository ?? i.repository; // a digest-only entry (pulled as REPO@DIGEST) has no name
    return repository ? [`${repository}@${i.descriptor.digest}`] : [];
  }))];
  const manifest = (await store.readJson(image.descriptor)) as ManifestLike | undefined;
  const config = manifest?.config
    ? ((await store.readJson(manifest.config as never)) as Record<string, unknown> | undefined)
    : undefined;
  const rootfs = (config?.rootfs ?? {}) as { type?: string; diff_ids?: string[] };
  const result: Record<string, unknown> = {
    Id: image.id,
    RepoTags: repoTags,
    RepoDigests: repoDigests,
    Parent: '',
    Comment: '',
    Created: config?.created ?? image.created ?? '',
    Author: config?.author ?? '',
    Config: config?.config ?? null,
    Architecture: config?.architecture ?? image.platform?.architecture ?? '',
    Os: config?.os ?? image.platform?.os ?? '',
    Size: image.size,
    RootFS: { Type: rootfs.type ?? 'layers', Layers: rootfs.diff_ids ?? [] },
    Metadata: { LastTagTime: image.descriptor.annotations?.['io.wasmbox.loaded'] ?? '' },
    Descriptor: image.descriptor,
  };
  if (config?.variant) result.Variant = config.variant;
  if (manifest?.layers) {
    result.Layers = manifest.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size }));
  }
  if (manifest?.manifests) result.Manifests = manifest.manifests;
  return result;
}
