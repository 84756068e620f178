// The Node entry: everything the browser entry has, plus what needs the host's files and processes.
export * from './index.browser.ts';
export { hostDirVfs, type HostHandle } from './host/node/host-vfs.ts';
export * from './loader/sources/local.ts';
export { openFileSource, directoryTree, pathKind } from './host/node/byte-source.ts';
export { LayoutStore, Annotation as StoreAnnotation, type StoredImage, type RemoveResult } from './loader/store/layout-store.ts';
export { LoadTransaction } from './loader/store/transaction.ts';
export { loadImage, type LoadOptions } from './loader/store/load.ts';
export { resolveImage, type ResolveImageOptions } from './loader/store/resolve-image.ts';
export { storeSource } from './loader/store/store-source.ts';
export { parseImageName, formatImageName, type ImageName } from './loader/store/names.ts';
export { saveImage, type SaveFormat, type SaveOptions } from './loader/save.ts';
export { pullImage, type PullOptions, type PullResult } from './loader/registry/pull.ts';
export { pushImage, wasmArtifact, type PushOptions, type PushResult, type PushFormat } from './loader/registry/push.ts';
