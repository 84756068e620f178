export * from './errors.ts';
export * from './loader/digest.ts';
export * from './loader/types.ts';
export * from './loader/media-types.ts';
export * from './fs/vfs.ts';
export * from './fs/resolve.ts';
export * from './fs/overlay.ts';
