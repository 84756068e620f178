import type { DiskCache } from '#host/disk-cache';
import { SHARE_PACKED_TREES } from '#host/worker';
import { LayerCache } from '../fs/layer-cache.ts';
import type { LayerTree } from '../fs/layer-tree.ts';
import { Overlay } from '../fs/overlay.ts';
import { decodePackedTree, encodePackedTree } from '../fs/packed-file.ts';
import { packTree, type PackedTree } from '../fs/packed-tree.ts';
import { packedVfs } from '../fs/packed-vfs.ts';
import { treeVfs } from '../fs/tree-vfs.ts';
import type { Vfs } from '../fs/vfs.ts';
import type { Image } from '../loader/source.ts';
import type { RootfsProvider, WasiBackendOptions } from '../sandbox/backend.ts';
import type { CacheBudget } from './cache-budget.ts';

/**
 * A runtime's image trees: one LayerCache (layer trees by chainID) and one cache of packed trees
 * (by image digest) that Workers share without copying. Owned by one runtime instance.
 */
export interface ImageTrees extends RootfsProvider {
  /** The image's merged tree from the shared layer cache (undefined: no tar layers), its layers kept within the budget. */
  rootfsTree(image: Image): Promise<LayerTree | undefined>;
}

/** What the host's default backends are built from (`#host/backends`). */
export interface HostBackendContext extends WasiBackendOptions {
  provider: ImageTrees;
  /** The runtime's home directory (Linux backend state), when it has one. */
  home?: string;
  /** See RuntimeOptions.inheritStdio. */
  inheritStdio?: boolean;
}

/**
 * `diskCache`: where packed root filesystems are kept between processes (Node), asked for when an image's
 * rootfs is first needed; undefined keeps them in memory only. `budget`: bounds what stays in memory
 * between containers (without one, everything stays).
 */
export function createImageTrees(diskCache: () => DiskCache | undefined = () => undefined, budget?: CacheBudget): ImageTrees {
  const layerCache = new LayerCache();
  const packed = new Map<string, Promise<{ vfs: Vfs; packed(): unknown; bytes: number }>>();
  const wasmLayers = new Map<string, Promise<Uint8Array | undefined>>();

  /** Builds (or finds) the image's layer trees, each an entry of the budget, and returns the merged tree. */
  async function rootfsTree(image: Image): Promise<LayerTree | undefined> {
    // Untarring (tar-stream, decompressors) is loaded only when a tree has to be built.
    const { buildRootfs } = await import('../fs/rootfs.ts');
    const tree = await buildRootfs(image, layerCache);
    for (const layer of image.layers) {
      const built = layerCache.get(layer.chainId);
      if (built && budget && !budget.touch(`layer:${layer.chainId}`)) {
        budget.add(`layer:${layer.chainId}`, built.bytes, () => layerCache.delete(layer.chainId));
      }
    }
    return tree;
  }

  /** A cached promise, counted in the budget as `entry` once it has resolved (a failed one is forgotten). */
  function remember<T>(map: Map<string, Promise<T>>, key: string, entry: string, make: () => Promise<T>, size: (value: T) => number): Promise<T> {
    let p = map.get(key);
    if (p) {
      budget?.touch(entry);
      return p;
    }
    p = make();
    map.set(key, p);
    p.then(
      (value) => { if (map.get(key) === p) budget?.add(entry, size(value), () => map.delete(key)); },
      () => { if (map.get(key) === p) map.delete(key); },
    );
    return p;
  }

  return {
    rootfsTree,
    volumes: new Map(),
    rootfs(image: Image) {
      // (a hit also marks the image's layer trees as used: they back its tree until it is packed)
      if (budget) for (const layer of image.layers) budget.touch(`layer:${layer.chainId}`);
      const entry = `rootfs:${image.digest}`;
      return remember(packed, image.digest, entry, async () => {
        const key = topTarChainId(image);
        const cache = key === undefined ? undefined : diskCache();
        const cached = cache && openCached(cache.get('rootfs', key!));
        if (cached) return { vfs: cached.vfs, packed: () => cached.tree, bytes: packedBytes(cached.tree) };
        const tree = await rootfsTree(image);
        // An image without tar layers (a raw wasm layer) gets an empty root directory.
        const vfs = (tree ? treeVfs(tree) : Overlay.view(Overlay.prepare())) as Vfs;
        let packedTree: PackedTree | undefined;
        if (cache && tree) {
          packedTree = packTree(vfs, { shared: SHARE_PACKED_TREES });
          cache.put('rootfs', key!, encodePackedTree(packedTree));
        }
        return {
          vfs,
          bytes: packedTree ? packedBytes(packedTree) : 0,
          packed: () => {
            if (!packedTree) {
              packedTree = packTree(vfs, { shared: SHARE_PACKED_TREES });
              // counted again at its packed size, while the budget still holds it
              if (budget?.touch(entry)) budget.add(entry, packedBytes(packedTree), () => packed.delete(image.digest));
            }
            return packedTree;
          },
        };
      }, (e) => e.bytes);
    },
    wasmLayer(image: Image) {
      return remember(wasmLayers, image.digest, `wasm:${image.digest}`, async () => {
        const layer = image.layers.find((l) => l.kind === 'wasm');
        if (!layer) return undefined;
        return new Uint8Array(await new Response(await layer.open()).arrayBuffer());
      }, (bytes) => bytes?.byteLength ?? 0);
    },
    openPacked(p: unknown): Vfs {
      return packedVfs(p as never) as Vfs;
    },
  };
}

/** The rootfs is a function of the tar layers' content: the chainID of the top one names it. */
function topTarChainId(image: Image): string | undefined {
  for (let i = image.layers.length - 1; i >= 0; i--) if (image.layers[i]!.kind === 'tar') return image.layers[i]!.chainId;
  return undefined;
}

function packedBytes(t: PackedTree): number {
  return t.nodes.byteLength + t.entries.byteLength + t.strings.byteLength + t.data.byteLength;
}

/** A cached packed tree, or undefined when there is none or it is damaged (then it is rebuilt and rewritten). */
function openCached(bytes: Uint8Array | undefined): { tree: PackedTree; vfs: Vfs } | undefined {
  if (!bytes) return undefined;
  try {
    const tree = decodePackedTree(bytes, { shared: SHARE_PACKED_TREES });
    return { tree, vfs: packedVfs(tree) as Vfs };
  } catch {
    return undefined;
  }
}
