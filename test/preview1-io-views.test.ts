// fd_read/fd_write reuse their views of guest buffers (GuestMemory.ioView): after memory.grow
// (which detaches the old buffer) the same ranges must reach the new memory.
import { describe, expect, it } from 'vitest';
import { Overlay } from '../src/fs/overlay.ts';
import { E, Harness } from './helpers/preview1-harness.ts';

describe('fd_read/fd_write views of guest memory', () => {
  it('reads and writes the same buffer before and after the memory grows', () => {
    const h = new Harness([{ guestPath: '/', vfs: Overlay.prepare(), readOnly: false }]);
    const [rc, fd] = h.open(3, 'f', { oflags: 1 });
    expect(rc).toBe(E.SUCCESS);
    const buf = h.alloc(16, 1);
    const iov = h.alloc(8, 4);
    const out = h.alloc(4, 4);
    const io = (name: string, text?: string): string => {
      const u8 = h.u8;
      if (text !== undefined) u8.set(new TextEncoder().encode(text), buf);
      h.view.setUint32(iov, buf, true);
      h.view.setUint32(iov + 4, text?.length ?? 16, true);
      expect(h.call(name, fd, iov, 1, 0n, out)).toBe(E.SUCCESS);
      return new TextDecoder().decode(h.u8.subarray(buf, buf + h.u32(out)));
    };
    io('fd_pwrite', 'abcd');
    expect(io('fd_pread')).toBe('abcd');
    h.memory.grow(1);
    io('fd_pwrite', 'wxyz');
    expect(io('fd_pread')).toBe('wxyz');
    h.memory.grow(1);
    h.u8.fill(0, buf, buf + 16);
    expect(io('fd_pread')).toBe('wxyz');
  });
});
