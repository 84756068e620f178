import * as fs from 'node:fs';

const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Writes all of `b` to a file descriptor, blocking this thread (retrying a non-blocking pipe that is full);
 * a reader that went away (EPIPE) ends it quietly.
 */
export function writeAllSync(fd: number, b: Uint8Array): void {
  let off = 0;
  while (off < b.length) {
    try {
      off += fs.writeSync(fd, b, off, b.length - off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') Atomics.wait(pause, 0, 0, 1);
      else if ((e as NodeJS.ErrnoException).code === 'EPIPE') return;
      else throw e;
    }
  }
}
