// Gives the memory that glibc's malloc keeps after it is freed back to the system.
//
// Most of what a loaded gateway's RSS grows by is not its data but V8's compilers: each optimising compilation
// allocates zones of 32 KB segments with malloc and frees them when it ends. glibc keeps freed memory for reuse, and
// free chunks in the middle of its heaps (as opposed to the top) are returned only by `malloc_trim`, which
// JavaScript cannot call. Measured on the submit benchmark: 11–17 MB of the process's peak RSS are such chunks
// (docs/benchmark.md, "the submit load's RSS"), freed in bursts (compilations). So every interval, when the arenas
// hold at least 2 MB free and the process has grown by 2 MB since the last trim, `malloc_trim(0)` runs on a
// thread of libuv's pool (koffi's asynchronous call), not on the event loop: it releases the free pages (madvise).
// It is not free: malloc keeps reusing much of that memory under load (socket read buffers, new compilations), and
// each reused page faults in again (~14,000 more minor faults in a benchmark run, a few per job). Measured: 145–154
// MB at the submit load's peak against 151–171 without, 143–156 once it is over against 151–176
// (docs/benchmark.md, "malloc_trim").
//
// Only where the C library is glibc (`libc.so.6` exporting `mallinfo2`, glibc ≥ 2.33); elsewhere (musl, macOS) the
// process runs without it and says so once at start.
import type { Logger } from '../logging.js';
import { runPeriodically, type Periodic } from './periodic.js';

/** Free memory below this is left to malloc, and so is a process that has not grown by this since its last trim. */
export const TRIM_MIN_BYTES = 2 * 1024 * 1024;

/** The C library's allocator, as this module uses it. */
export interface NativeHeap {
  /** Bytes free in malloc's arenas (mallinfo2's `fordblks`: free chunks, fast bins and each arena's top). */
  freeBytes(): number;
  /** `malloc_trim(0)` off the event loop; true when it released memory. */
  trim(): Promise<boolean>;
}

/** glibc's allocator through koffi, or why it is not available here. */
export async function openNativeHeap(library = 'libc.so.6'): Promise<NativeHeap | { unavailable: string }> {
  if (process.platform !== 'linux') return { unavailable: `not on Linux (${process.platform})` };
  try {
    const { default: koffi } = await import('koffi');
    const libc = koffi.load(library);
    // struct mallinfo2 (glibc ≥ 2.33): ten size_t fields, in this order.
    const info = koffi.struct({
      arena: 'size_t',
      ordblks: 'size_t',
      smblks: 'size_t',
      hblks: 'size_t',
      hblkhd: 'size_t',
      usmblks: 'size_t',
      fsmblks: 'size_t',
      uordblks: 'size_t',
      fordblks: 'size_t',
      keepcost: 'size_t',
    });
    const mallinfo2 = libc.func('mallinfo2', info, []) as () => { fordblks: number | bigint };
    const mallocTrim = libc.func('int malloc_trim(size_t pad)');
    return {
      freeBytes: () => Number(mallinfo2().fordblks),
      trim: () =>
        new Promise<boolean>((resolve, reject) => {
          mallocTrim.async(0, (error: unknown, released: number) => (error ? reject(error) : resolve(released === 1)));
        }),
    };
  } catch (error) {
    return { unavailable: error instanceof Error ? error.message : String(error) };
  }
}

/** One pass: what malloc holds free, and whether a trim released any (null: not trimmed). */
export interface TrimOutcome {
  freeBytes: number;
  released: boolean | null;
}

/**
 * The passes of one process: a pass trims when at least `minBytes` are free and the resident size has grown by at
 * least `minBytes` since the last trim (memory that was trimmed, faulted in again by reuse and freed again shows as
 * growth; memory malloc keeps reusing does not, and trimming it again would only make it fault in again).
 */
export function createTrimPasses(heap: NativeHeap, minBytes: number, rssBytes: () => number = () => process.memoryUsage.rss()): () => Promise<TrimOutcome> {
  let rssAfterLastTrim = 0;
  return async () => {
    const freeBytes = heap.freeBytes();
    if (freeBytes < minBytes || rssBytes() < rssAfterLastTrim + minBytes) return { freeBytes, released: null };
    const released = await heap.trim();
    rssAfterLastTrim = rssBytes();
    return { freeBytes, released };
  };
}

/**
 * Trims every `intervalMs` (0: never) while the process runs; `onPass` is told each pass's outcome (the metrics).
 * Null when off or not available (logged once).
 */
export async function startMemoryTrim(
  intervalMs: number,
  logger: Logger,
  onPass: (outcome: TrimOutcome) => void,
  opts: { library?: string; minBytes?: number } = {},
): Promise<Periodic | null> {
  if (intervalMs <= 0) return null;
  const heap = await openNativeHeap(opts.library);
  if ('unavailable' in heap) {
    logger.info({ reason: heap.unavailable }, 'memory trim: not available here (glibc only); freed native memory stays with malloc');
    return null;
  }
  const pass = createTrimPasses(heap, opts.minBytes ?? TRIM_MIN_BYTES);
  return runPeriodically(
    'memory trim',
    async () => {
      onPass(await pass());
      return false;
    },
    intervalMs,
    logger,
  );
}
