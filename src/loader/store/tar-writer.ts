import { pack as createPack, type Header } from 'tar-stream';
import { SandboxError } from '../../errors.ts';

export interface TarWriter {
  addDirectory(name: string): Promise<void>;
  /** A regular file; a stream must yield exactly `size` bytes. */
  addFile(name: string, data: Uint8Array | ReadableStream<Uint8Array>, size?: number): Promise<void>;
  /** Ends the archive and waits until every byte reached `sink`. */
  finish(): Promise<void>;
  /** Stops writing; `finish` will not be called. */
  destroy(err?: Error): void;
}

// Fixed metadata keeps archives reproducible: same image, same bytes.
const MTIME = new Date(0);

/** Writes a tar through tar-stream into `sink`, one entry at a time, honouring back-pressure. */
export function createTarWriter(sink: (chunk: Uint8Array) => Promise<void>): TarWriter {
  const pack = createPack();
  // Pull the archive bytes out one chunk at a time: pause while the sink writes, resume when it is done.
  const drained = new Promise<void>((resolve, reject) => {
    let busy: Promise<void> = Promise.resolve();
    pack.on('data', (data: unknown) => {
      const chunk = data as Uint8Array;
      pack.pause();
      busy = sink(chunk).then(
        () => {
          pack.resume();
        },
        (e: unknown) => {
          pack.destroy(e as Error);
          reject(e);
        },
      );
    });
    pack.on('end', () => {
      busy.then(resolve, reject);
    });
    pack.on('error', (e: Error) => reject(e));
    pack.on('close', () => {
      busy.then(() => reject(new SandboxError('INTERNAL', 'tar writer closed early')), reject);
    });
  });
  // Observe failures early so an unhandled rejection cannot escape while entries are still being added.
  let failure: unknown;
  drained.catch((e: unknown) => {
    failure = e;
  });

  const entry = (headers: Partial<Header> & { name: string }): { sink: ReturnType<typeof pack.entry>; done: Promise<void> } => {
    let resolve!: () => void;
    let reject!: (e: unknown) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const s = pack.entry(headers, (err) => (err ? reject(err) : resolve()));
    return { sink: s, done };
  };

  const write = async (s: ReturnType<typeof pack.entry>, chunk: Uint8Array): Promise<void> => {
    if (failure) throw failure;
    if (!s.write(chunk)) await new Promise<void>((res) => s.once('drain', () => res()));
  };

  return {
    async addDirectory(name) {
      const e = entry({ name: name.endsWith('/') ? name : `${name}/`, type: 'directory', mode: 0o755, mtime: MTIME });
      e.sink.end(undefined);
      await e.done;
    },
    async addFile(name, data, size) {
      if (data instanceof Uint8Array) {
        const e = entry({ name, type: 'file', mode: 0o644, mtime: MTIME, size: data.byteLength });
        await write(e.sink, data);
        e.sink.end(undefined);
        await e.done;
        return;
      }
      if (size === undefined) throw new SandboxError('INTERNAL', `tar entry ${name}: a streamed file needs its size`);
      const e = entry({ name, type: 'file', mode: 0o644, mtime: MTIME, size });
      const reader = data.getReader();
      let written = 0;
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          written += value.byteLength;
          if (written > size) throw new SandboxError('SIZE_MISMATCH', `tar entry ${name}: more than the ${size} bytes announced`);
          await write(e.sink, value);
        }
      } catch (err) {
        await reader.cancel(err).catch(() => {});
        pack.destroy(err as Error);
        throw err;
      } finally {
        reader.releaseLock();
      }
      if (written !== size) {
        const err = new SandboxError('SIZE_MISMATCH', `tar entry ${name}: ${written} bytes, ${size} announced`);
        pack.destroy(err);
        throw err;
      }
      e.sink.end(undefined);
      await e.done;
    },
    async finish() {
      pack.finalize();
      await drained;
    },
    destroy(err) {
      pack.destroy(err);
      drained.catch(() => {});
    },
  };
}
