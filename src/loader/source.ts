import type { Digest } from './digest.ts';
import type { Descriptor, ImageConfig, ImageKind, ImageManifest, Platform } from './types.ts';

/** A parsed image reference. Parsing does no I/O and fails with INVALID_REFERENCE. */
export type ImageRef =
  | { transport: 'oci'; path: string; tag?: string; digest?: Digest }
  | { transport: 'oci-archive'; path: string; tag?: string; digest?: Digest }
  | { transport: 'docker-archive'; path: string; tag?: string }
  | { transport: 'wasm'; path: string }
  /** A local file or directory whose format is found from its content (detectLocalRef). */
  | { transport: 'path'; path: string }
  | { transport: 'store'; name: string; tag?: string; digest?: Digest }
  | { transport: 'registry'; registry: string; repository: string; tag?: string; digest?: Digest };

/** Blobs by digest. Verified on put (size and sha256), idempotent, atomic. */
export interface ContentStore {
  has(d: Digest): Promise<boolean>;
  read(d: Pick<Descriptor, 'digest' | 'size'>): Promise<ReadableStream<Uint8Array>>;
  /** Whole blob in memory (manifests, configs, small layers). */
  readBytes(d: Pick<Descriptor, 'digest' | 'size'>): Promise<Uint8Array>;
  put(
    data: Uint8Array | ReadableStream<Uint8Array>,
    expected?: Pick<Descriptor, 'digest' | 'size'>,
  ): Promise<{ digest: Digest; size: number }>;
}

/** What each image source implements; openImage completes it once for all sources. */
export interface SourceCore {
  /** Tag (or the only image) to the descriptor of a manifest or an index. */
  resolve(ref: ImageRef): Promise<Descriptor>;
  /** Raw bytes of a blob; openImage verifies size and digest while it streams. */
  fetch(d: Descriptor): Promise<ReadableStream<Uint8Array>>;
  /** Every image the source holds, with its names (OCI ref.name annotations, docker RepoTags). */
  list?(): Promise<Array<{ names: string[]; descriptor: Descriptor }>>;
  close?(): Promise<void>;
}

export interface Layer {
  descriptor: Descriptor;
  /** The uncompressed digest from the config's rootfs.diff_ids (for raw wasm layers, the blob digest). */
  diffId: Digest;
  chainId: Digest;
  /** 'tar' layers become filesystem trees; 'wasm' layers are a module or component blob, not untarred. */
  kind: 'tar' | 'wasm';
  /** Decompressed tar bytes (or the raw wasm), verified against diffId at EOF. */
  open(): Promise<ReadableStream<Uint8Array>>;
  /** The blob as stored (compressed), verified against descriptor size and digest at EOF: for copying into a store. */
  blob(): Promise<ReadableStream<Uint8Array>>;
}

export interface Image {
  /** Digest of the manifest (the image's identity, as `docker images --digests` shows). */
  digest: Digest;
  /** The config digest: docker's "IMAGE ID". */
  id: Digest;
  manifestDescriptor: Descriptor;
  manifest: ImageManifest;
  config: ImageConfig;
  platform: Platform;
  kind: ImageKind;
  layers: Layer[];
}
