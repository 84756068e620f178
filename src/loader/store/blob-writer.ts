import { SandboxError } from '../../errors.ts';
import { createSha256, type Digest } from '../digest.ts';
import type { Descriptor } from '../types.ts';
import { createTempFile, type FileWriter } from '#host/files';

export interface WrittenBlob {
  digest: Digest;
  size: number;
  /** The closed (fsynced) temp file; the caller renames or removes it. */
  file: FileWriter;
}

/**
 * Streams a blob into a new temp file in `tmpDir`, counting and hashing as it goes.
 * Size is checked while streaming (so an oversized stream stops early) and the digest at EOF.
 * On any failure the temp file is removed and the stream cancelled.
 */
export async function writeVerifiedBlob(
  tmpDir: string,
  data: Uint8Array | ReadableStream<Uint8Array>,
  expected?: Pick<Descriptor, 'digest' | 'size'>,
): Promise<WrittenBlob> {
  const file = await createTempFile(tmpDir, 'blob-');
  const hash = createSha256();
  let size = 0;
  const take = async (chunk: Uint8Array): Promise<void> => {
    size += chunk.byteLength;
    if (expected && size > expected.size) {
      throw new SandboxError('SIZE_MISMATCH', `blob ${expected.digest} is larger than its declared size ${expected.size}`, {
        data: { digest: expected.digest, expected: expected.size },
      });
    }
    hash.update(chunk);
    await file.write(chunk);
  };
  try {
    if (data instanceof Uint8Array) {
      await take(data);
    } else {
      const reader = data.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          await take(value);
        }
      } catch (e) {
        await reader.cancel(e).catch(() => {});
        throw e;
      } finally {
        reader.releaseLock();
      }
    }
    const digest = `sha256:${hash.digestHex()}` as Digest;
    if (expected && size !== expected.size) {
      throw new SandboxError('SIZE_MISMATCH', `blob ${expected.digest} is ${size} bytes, its descriptor says ${expected.size}`, {
        data: { digest: expected.digest, expected: expected.size, actual: size },
      });
    }
    if (expected && digest !== expected.digest) {
      throw new SandboxError('DIGEST_MISMATCH', `blob digest mismatch: expected ${expected.digest}, got ${digest}`, {
        data: { expected: expected.digest, actual: digest },
      });
    }
    await file.close();
    return { digest, size, file };
  } catch (e) {
    await file.abort();
    throw e;
  }
}
