import type { Image } from '../loader/source.ts';
import { applyTar, type TarLimits } from './apply-tar.ts';
import type { LayerCache } from './layer-cache.ts';
import type { LayerTree } from './layer-tree.ts';

export interface RootfsOptions {
  limits?: TarLimits;
}

/**
 * The image's filesystem: each tar layer in order, applied on the one before and cached by chainID.
 * Undefined for an image without tar layers (a raw wasm layer image, say).
 */
export async function buildRootfs(image: Image, cache: LayerCache, opts: RootfsOptions = {}): Promise<LayerTree | undefined> {
  let tree: LayerTree | undefined;
  for (const layer of image.layers) {
    if (layer.kind !== 'tar') continue;
    const parent = tree;
    tree = await cache.getOrBuild(layer.chainId, async () =>
      applyTar(parent, await layer.open(), {
        chainId: layer.chainId,
        diffId: layer.diffId,
        ...(opts.limits ? { limits: opts.limits } : {}),
      }),
    );
  }
  return tree;
}
