import { SandboxError } from '../../errors.ts';
import { openImage, type OpenImageLimits } from '../open-image.ts';
import { parseRef } from '../ref.ts';
import { hasRegistryDomain } from '../registry/reference.ts';
import type { Digest } from '../digest.ts';
import type { Image } from '../source.ts';
import type { ImageKind } from '../types.ts';
import type { Platform } from '../types.ts';
import type { LayoutStore, StoredImage } from './layout-store.ts';
import { parseImageName } from './names.ts';
import { storeRefText, storeSource } from './store-source.ts';

export interface ResolveImageOptions {
  store: LayoutStore;
  platform?: Platform | string;
  limits?: OpenImageLimits;
  /** A bundled archive for a name the store lacks (the CLI's sample images), loaded on first use. */
  fallback?: (name: string) => string | undefined;
  /**
   * Pulls an image the store lacks (`docker run` pulls first): called for `docker://` references and for
   * names that start with a registry host (`127.0.0.1:5000/app`) when neither the store nor `fallback` has them.
   */
  pull?: (ref: string, o: { platform?: Platform | string }) => Promise<Image>;
  /** The kind of a WASI image, by manifest digest, when the caller has it cached (see OpenImageOptions.kindHint). */
  kindHint?: (manifest: Digest) => ImageKind | undefined;
}

/**
 * An image by what a user typed: a local file or directory (`./app.tar`, `oci:DIR:TAG`, `hello.wasm`) is
 * opened directly (not stored); a name (`hello` = `hello:latest`, `name@sha256:..`, an image ID prefix)
 * comes from the store, loading a bundled sample image of that name first when the store lacks it.
 */
export async function resolveImage(nameOrRef: string, o: ResolveImageOptions): Promise<Image> {
  const ref = parseRef(nameOrRef);
  if (ref.transport === 'registry' && o.pull) return o.pull(nameOrRef, o.platform ? { platform: o.platform } : {});
  if (ref.transport === 'registry') {
    throw new SandboxError('BACKEND_UNAVAILABLE', `${nameOrRef} is a registry reference and pulling is off here: pull it first (wasmbox pull) or give resolveImage a pull hook`);
  }
  if (ref.transport !== 'store') {
    const { openLocalImage } = await import('../sources/local.ts');
    return openLocalImage(ref, { platform: o.platform, limits: o.limits });
  }
  const text = storeRefText(ref);
  if (o.pull && hasRegistryDomain(ref.name) && (await o.store.lookup(text)).length === 0) {
    return o.pull(text, o.platform ? { platform: o.platform } : {});
  }
  await findOrLoad(text, o);
  return openImage(storeSource(o.store), ref, { store: o.store, trustStore: true, platform: o.platform, limits: o.limits, ...(o.kindHint ? { kindHint: o.kindHint } : {}) });
}

/** The store entries for a name, loading the fallback archive for it when the store has none. */
export async function findOrLoad(text: string, o: ResolveImageOptions): Promise<StoredImage[]> {
  const hits = await o.store.lookup(text);
  if (hits.length > 0) return hits;
  const archive = o.fallback?.(text);
  if (archive) {
    const n = parseImageName(text);
    const { loadImage } = await import('./load.ts');
    await loadImage(o.store, archive, { names: [`${n.repository}:${n.tag}`], platform: o.platform, limits: o.limits });
    return o.store.get(text);
  }
  throw new SandboxError('NOT_FOUND', `No such image: ${text} (load it first: wasmbox load -i FILE)`, { data: { image: text } });
}
