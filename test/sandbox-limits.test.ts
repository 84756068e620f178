import { describe, expect, it } from 'vitest';
import { limitMemory, readMemories, WASM_PAGE_BYTES } from '../src/sandbox/memory-limit.ts';
import { isSandboxError } from '../src/errors.ts';

// A tiny module built byte by byte: `grow(n)` runs memory.grow on the module's memory.
function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}
function uleb(n: number): number[] {
  const out: number[] = [];
  do { let b = n & 0x7f; n >>>= 7; if (n) b |= 0x80; out.push(b); } while (n);
  return out;
}
function str(s: string): number[] {
  const b = [...new TextEncoder().encode(s)];
  return [...uleb(b.length), ...b];
}
function growModule(memory: { initial: number; max?: number; imported?: boolean }): Uint8Array {
  const limits = memory.max === undefined ? [0, ...uleb(memory.initial)] : [1, ...uleb(memory.initial), ...uleb(memory.max)];
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 1, 0x7f, 1, 0x7f]),
    ...(memory.imported ? section(2, [1, ...str('env'), ...str('memory'), 2, ...limits]) : []),
    ...section(3, [1, 0]),
    ...(memory.imported ? [] : section(5, [1, ...limits])),
    ...section(0, [...str('custom'), 1, 2, 3]),
    ...section(7, [2, ...str('grow'), 0, 0, ...str('memory'), 2, 0]),
    ...section(10, [1, ...uleb(6), 0, 0x20, 0, 0x40, 0, 0x0b]),
  ];
  return Uint8Array.from(bytes);
}

async function instantiate(bytes: Uint8Array, imports: WebAssembly.Imports = {}) {
  const module = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
  const instance = await WebAssembly.instantiate(module, imports);
  return instance.exports as { grow(n: number): number; memory: WebAssembly.Memory };
}

describe('memory limit by rewriting the module', () => {
  it('makes memory.grow fail past the limit for a defined memory without a maximum', async () => {
    const original = growModule({ initial: 1 });
    const unlimited = await instantiate(original);
    expect(unlimited.grow(8)).toBe(1);

    const limited = limitMemory(original, 4 * WASM_PAGE_BYTES);
    expect(limited.memories).toEqual([{ initialPages: 1, maximumPages: 4, shared: false, memory64: false }]);
    const g = await instantiate(limited.bytes);
    expect(g.grow(2)).toBe(1);
    expect(g.grow(2)).toBe(-1);
    expect(g.grow(1)).toBe(3);
    expect(g.grow(1)).toBe(-1);
    expect(g.memory.buffer.byteLength).toBe(4 * WASM_PAGE_BYTES);
  });

  it('keeps a declared maximum that is already below the limit, and rounds the limit down to pages', async () => {
    const limited = limitMemory(growModule({ initial: 1, max: 2 }), 100 * WASM_PAGE_BYTES);
    expect(limited.memories[0]!.maximumPages).toBe(2);
    const lowered = limitMemory(growModule({ initial: 1, max: 50 }), 3 * WASM_PAGE_BYTES + 100);
    expect(lowered.memories[0]!.maximumPages).toBe(3);
    expect((await instantiate(lowered.bytes)).grow(5)).toBe(-1);
  });

  it('rewrites an imported memory so a memory created with the limit links', async () => {
    const limited = limitMemory(growModule({ initial: 1, imported: true }), 2 * WASM_PAGE_BYTES);
    expect(limited.memories).toEqual([
      { import: { module: 'env', name: 'memory' }, initialPages: 1, maximumPages: 2, shared: false, memory64: false },
    ]);
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 2 });
    const g = await instantiate(limited.bytes, { env: { memory } });
    expect(g.grow(1)).toBe(1);
    expect(g.grow(1)).toBe(-1);
  });

  it('refuses a module whose initial memory is above the limit before it runs', () => {
    let error: unknown;
    try { limitMemory(growModule({ initial: 20 }), 1 << 20); } catch (e) { error = e; }
    expect(isSandboxError(error, 'LIMIT_EXCEEDED')).toBe(true);
    expect((error as Error).message).toMatch(/1.25 MiB|1280 KiB/);
  });

  it('reads memories without changing the bytes, and rejects what is not a core module', () => {
    const m = growModule({ initial: 3, max: 7 });
    expect(readMemories(m)[0]).toMatchObject({ initialPages: 3, maximumPages: 7 });
    expect(() => readMemories(new TextEncoder().encode('#!/bin/sh\necho hi\n'))).toThrow(/not a WebAssembly module/);
    const component = Uint8Array.from([0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0]);
    expect(() => readMemories(component)).toThrow(/component/);
    expect(() => readMemories(m.subarray(0, m.length - 3))).toThrow(/truncated/);
  });
});
