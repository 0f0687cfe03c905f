// runPeriodically's runWithin (src/background/periodic.ts): a pass brought forward, shared by the calls that ask for it,
// run after the pass in progress, and never during a failure's backoff. Fake timers: the clock is the test's.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runPeriodically, type Periodic } from '../src/background/periodic.js';
import type { Logger } from '../src/logging.js';

const logger = { warn: () => {}, error: () => {}, info: () => {} } as unknown as Logger;
let periodic: Periodic | null = null;

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(async () => {
  const p = periodic;
  periodic = null;
  vi.useRealTimers();
  await p?.stop();
});

/** A periodic whose passes are counted; `pass` may hold a pass open or fail it. */
function start(intervalMs: number, pass: (n: number) => Promise<boolean> = async () => false) {
  const starts: number[] = [];
  periodic = runPeriodically('test', async () => {
    starts.push(Date.now());
    return pass(starts.length);
  }, intervalMs, logger, { backoffMaxMs: 60_000, random: () => 1 });
  return starts;
}

describe('runWithin', () => {
  it('brings the next pass forward to within the time asked; calls meanwhile share it; then the interval again', async () => {
    const starts = start(10_000);
    await vi.advanceTimersByTimeAsync(0);
    expect(starts).toHaveLength(1);
    const t0 = Date.now();
    periodic!.runWithin(50);
    await vi.advanceTimersByTimeAsync(20);
    periodic!.runWithin(50); // later than the pass already asked for: changes nothing
    periodic!.runWithin(200);
    await vi.advanceTimersByTimeAsync(29);
    expect(starts).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(starts.map((s) => s - t0)).toEqual([0, 50]);
    // Back to the interval.
    await vi.advanceTimersByTimeAsync(9_999);
    expect(starts).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(starts).toHaveLength(3);
  });

  it('asked for during a pass: one more pass within that time of its end', async () => {
    let release: () => void = () => {};
    const starts = start(10_000, (n) => (n === 1 ? new Promise<boolean>((r) => (release = () => r(false))) : Promise.resolve(false)));
    await vi.advanceTimersByTimeAsync(0);
    periodic!.runWithin(30);
    periodic!.runWithin(10);
    await vi.advanceTimersByTimeAsync(500);
    expect(starts).toHaveLength(1);
    const ended = Date.now();
    release();
    await vi.advanceTimersByTimeAsync(9);
    expect(starts).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(starts.at(-1)! - ended).toBe(10);
    expect(starts).toHaveLength(2);
  });

  it('is ignored while failed passes back off (the database is away: no pass sooner than the backoff)', async () => {
    const starts = start(100, async (n) => {
      if (n <= 2) throw new Error('a failing pass');
      return false;
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(starts).toHaveLength(1);
    periodic!.runWithin(5); // backing off 100 ms after the first failure
    await vi.advanceTimersByTimeAsync(99);
    expect(starts).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(starts).toHaveLength(2);
    periodic!.runWithin(5); // 200 ms after the second
    await vi.advanceTimersByTimeAsync(199);
    expect(starts).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(starts).toHaveLength(3);
    // Recovered: asked for again, it is honoured.
    const t = Date.now();
    periodic!.runWithin(5);
    await vi.advanceTimersByTimeAsync(5);
    expect(starts.at(-1)! - t).toBe(5);
  });
});
