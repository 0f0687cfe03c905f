// The trim of the memory glibc's malloc keeps after it is freed (src/background/memory-trim.ts): on this machine's
// glibc, memory freed in the middle of malloc's heap stays in the process's RSS until a trim returns it; the policy
// (only with enough free, and after enough growth); and a process where it is not available runs without it.
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it, vi } from 'vitest';
import { createTrimPasses, openNativeHeap, startMemoryTrim, TRIM_MIN_BYTES, type NativeHeap } from '../src/background/memory-trim.js';
import { createLogger } from '../src/logging.js';
import { loadConfig } from '../src/config.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const rssBytes = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
const MB = 1024 * 1024;

describe('memory trim', () => {
  it("gives back what malloc keeps: 64 MB freed under a live chunk stay in the RSS until the trim, then leave it", async () => {
    const heap = await openNativeHeap();
    if ('unavailable' in heap) throw new Error(`glibc expected on this machine: ${heap.unavailable}`);
    // 32 KB chunks, as V8's compiler zones are: below malloc's mmap threshold, so they come from its heap. The last
    // one stays alive, above the others: freeing them leaves a hole that free() itself does not give back.
    let chunks: Buffer[] | null = Array.from({ length: 2048 }, () => Buffer.alloc(32 * 1024, 1));
    const pin = Buffer.alloc(32 * 1024, 2);
    const freeBefore = heap.freeBytes();
    chunks = null;
    // Backing stores are freed after a full collection, possibly on V8's sweeper thread: wait until malloc has them.
    const deadline = Date.now() + 10_000;
    while (heap.freeBytes() - freeBefore < 48 * MB && Date.now() < deadline) {
      gc();
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(heap.freeBytes() - freeBefore).toBeGreaterThanOrEqual(48 * MB);
    const rssFreed = rssBytes();
    const outcome = await createTrimPasses(heap, TRIM_MIN_BYTES)();
    const rssTrimmed = rssBytes();
    expect(outcome.released).toBe(true);
    expect(outcome.freeBytes).toBeGreaterThanOrEqual(48 * MB);
    expect(rssFreed - rssTrimmed).toBeGreaterThanOrEqual(40 * MB);
    expect(pin[0]).toBe(2);
    expect(chunks).toBeNull();
  });

  it('trims when enough is free and the process has grown since its last trim, not again for the same memory', async () => {
    let free = TRIM_MIN_BYTES - 1;
    let rss = 100 * MB;
    let trims = 0;
    const heap: NativeHeap = {
      freeBytes: () => free,
      async trim() {
        trims += 1;
        rss -= 3 * MB;
        return true;
      },
    };
    const pass = createTrimPasses(heap, TRIM_MIN_BYTES, () => rss);
    expect(await pass()).toEqual({ freeBytes: TRIM_MIN_BYTES - 1, released: null });
    free = TRIM_MIN_BYTES;
    expect(await pass()).toEqual({ freeBytes: TRIM_MIN_BYTES, released: true });
    expect(trims).toBe(1);
    // The same free memory, reused and freed again without the process growing: left alone.
    rss += TRIM_MIN_BYTES - 1;
    expect(await pass()).toEqual({ freeBytes: TRIM_MIN_BYTES, released: null });
    expect(trims).toBe(1);
    // Grown by the floor since the last trim (97 MB after it): trimmed again.
    rss += 1;
    expect(await pass()).toEqual({ freeBytes: TRIM_MIN_BYTES, released: true });
    expect(trims).toBe(2);
    // Grown, but too little free to be worth it.
    rss += 10 * MB;
    free = TRIM_MIN_BYTES - 1;
    expect((await pass()).released).toBeNull();
    expect(trims).toBe(2);
  });

  it('runs every interval and reports each pass; off at 0; without glibc the process runs without it and says so', async () => {
    const logger = createLogger('silent');
    const onTrim = vi.fn();
    const running = await startMemoryTrim(5, logger, onTrim, { minBytes: 0 });
    expect(running).not.toBeNull();
    await vi.waitFor(() => expect(onTrim.mock.calls.length).toBeGreaterThanOrEqual(3), { timeout: 5_000, interval: 5 });
    for (const [outcome] of onTrim.mock.calls) expect(outcome).toEqual({ freeBytes: expect.any(Number), released: expect.toSatisfy((r) => r === null || typeof r === 'boolean') });
    expect(onTrim.mock.calls.some(([outcome]) => typeof outcome.released === 'boolean')).toBe(true);
    await running!.stop();
    const after = onTrim.mock.calls.length;
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(onTrim.mock.calls.length).toBe(after);

    expect(await startMemoryTrim(0, logger, onTrim)).toBeNull();

    const info = vi.spyOn(logger, 'info');
    expect(await startMemoryTrim(5, logger, onTrim, { library: 'libc-that-is-not-here.so.6' })).toBeNull();
    expect(info).toHaveBeenCalledWith(expect.objectContaining({ reason: expect.any(String) }), expect.stringMatching(/^memory trim: not available/));
  });

  it('MEMORY_TRIM_INTERVAL_MS: every second by default, 0 turns it off, nonsense is refused', () => {
    const base = {};
    expect(loadConfig(base).memoryTrimIntervalMs).toBe(1000);
    expect(loadConfig({ ...base, MEMORY_TRIM_INTERVAL_MS: '0' }).memoryTrimIntervalMs).toBe(0);
    expect(() => loadConfig({ ...base, MEMORY_TRIM_INTERVAL_MS: '-1' })).toThrow(/MEMORY_TRIM_INTERVAL_MS/);
    expect(() => loadConfig({ ...base, MEMORY_TRIM_INTERVAL_MS: 'often' })).toThrow(/MEMORY_TRIM_INTERVAL_MS/);
  });
});
