// Browsers have no host files: every call is denied. The browser keeps images in the loader's MemoryStore.
import { SandboxError } from '../../errors.ts';

export const filesAvailable = false;

export interface FileInfo { size: number; isFile: boolean; isDirectory: boolean; mtimeMs: number }

export interface FileWriter {
  readonly path: string;
  write(chunk: Uint8Array): Promise<void>;
  commit(target: string): Promise<void>;
  close(): Promise<void>;
  abort(): Promise<void>;
}

function denied(): never {
  throw new SandboxError('CAPABILITY_DENIED', 'host files are not available in this environment (use a MemoryStore)');
}
const deniedAsync = async (): Promise<never> => denied();

export const joinPath = (...parts: string[]): string => parts.filter((p) => p !== '').join('/').replace(/\/+/g, '/');
export const dirnameOf = (p: string): string => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) || '/' : '.');
export const basenameOf = (p: string): string => p.slice(p.lastIndexOf('/') + 1);
export const resolvePath = (p: string): string => p;

export const defaultDataDir = (): string => denied();
export const envVar = (_name: string): string | undefined => undefined;
export const uniqueSuffix = (): string => Math.random().toString(16).slice(2);
export const currentPid = (): number => 0;
export const processAlive = (_pid: number): boolean => false;

export const statPath = (_p: string): Promise<FileInfo | undefined> => deniedAsync();
export const statPathSync = (_p: string): FileInfo | undefined => undefined;
export const mkdirp = (_p: string): Promise<void> => deniedAsync();
export const readFileBytes = (_p: string): Promise<Uint8Array> => deniedAsync();
export const readFileIfExists = (_p: string): Promise<Uint8Array | undefined> => deniedAsync();
export const openReadStream = (_p: string): Promise<ReadableStream<Uint8Array>> => deniedAsync();
export const createTempFile = (_dir: string, _prefix?: string): Promise<FileWriter> => deniedAsync();
export const writeFileAtomic = (_target: string, _data: Uint8Array): Promise<void> => deniedAsync();
export const syncDir = (_dir: string): Promise<void> => deniedAsync();
export const renamePath = (_from: string, _to: string): Promise<void> => deniedAsync();
export const linkPath = (_e: string, _l: string): Promise<'linked' | 'missing' | 'unsupported'> => deniedAsync();
export const copyPath = (_from: string, _to: string): Promise<void> => deniedAsync();
export const removePath = (_p: string): Promise<void> => deniedAsync();
export const listDir = (_p: string): Promise<string[]> => deniedAsync();
export const createExclusive = (_p: string, _content: string): Promise<boolean> => deniedAsync();
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
