// The benchmark in its smallest mode (--smoke), made twice (--repeat 2): each run goes end to end against a real
// gateway, simulator, PostgreSQL and pgbench, and writes every figure to its JSON; the report is each figure's median
// of the runs. No timing is asserted: figures are the bench's to report, not a test's.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ROOT } from './support/build.js';

const run = promisify(execFile);

const positive = expect.any(Number);

function latency() {
  return expect.objectContaining({ sent: positive, ok: positive, failed: 0, throughput: positive, p50Ms: positive, p95Ms: positive, p99Ms: positive });
}

describe('npm run bench -- --smoke --repeat 2', () => {
  it('produces every figure in each run, each with its baseline and ratio, and reports their medians', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-'));
    const file = join(dir, 'result.json');
    try {
      await run(process.execPath, ['--import', join(ROOT, 'node_modules/tsx/dist/loader.mjs'), join(ROOT, 'test/bench/main.ts'), '--smoke', '--repeat', '2', '--json', file], {
        cwd: ROOT,
        env: process.env,
        maxBuffer: 16 * 1024 * 1024,
      });
      const merged = JSON.parse(readFileSync(file, 'utf8'));
      expect([merged.mode, merged.repeat, merged.runs.length]).toEqual(['smoke', 2, 2]);
      // Of two runs, the median is the upper middle: the larger.
      const [a, b] = merged.runs;
      expect(merged.submit.closed.gateway.throughput).toBe(Math.max(a.submit.closed.gateway.throughput, b.submit.closed.gateway.throughput));
      expect(merged.campaign.ratio).toBe(Math.max(a.campaign.ratio, b.campaign.ratio));
      expect(merged.reads.orgUnits.statements).toBe(Math.max(a.reads.orgUnits.statements, b.reads.orgUnits.statements));
      for (const r of merged.runs) checkRun(r);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});

/** Every figure of one run, with its baseline and ratio. */
function checkRun(r: any): void {
  expect(r.mode).toBe('smoke');

  expect(r.submit.open.map((o: { rate: number }) => o.rate)).toEqual([10, 50, 100]);
  for (const o of r.submit.open) {
    expect(o.gateway).toEqual(latency());
    expect(o.direct).toEqual(latency());
    expect(o.ratio).toEqual({ p50: positive, p95: positive, p99: positive });
    expect(o.addedMs).toEqual({ p50: expect.any(Number), p95: expect.any(Number), p99: expect.any(Number) });
  }
  expect(r.submit.closed.clients).toBe(32);
  expect(r.submit.closed.gateway).toEqual(latency());
  expect(r.submit.closed.direct).toEqual(latency());
  expect(r.submit.closed.throughputRatio).toEqual(positive);

  expect(r.campaign).toEqual(expect.objectContaining({ clients: 64, admissionsPerSecond: positive, pgbenchTps: positive, ratio: positive }));
  expect(r.campaign.gateway).toEqual(latency());
  expect(r.campaign.gateway.ok).toBe(r.campaign.jobs);

  for (const name of ['orgUnits', 'accountPeriod', 'budgetBalance']) {
    expect(r.reads[name], name).toEqual({ p50Ms: positive, statements: positive, rawSqlP50Ms: positive, ratio: positive });
  }
  expect(r.reads.submitStatements).toBeGreaterThan(0);

  expect(r.chargeback.runs).toHaveLength(2);
  for (const c of r.chargeback.runs) {
    expect(c.groupByMs).toEqual(positive);
    for (const policy of ['PROPORTIONAL', 'MARGINAL', 'COMMITTED_SHARES']) expect(c.policies[policy], policy).toEqual({ ms: positive, ratio: positive });
  }
  expect(Object.keys(r.chargeback.growth).sort()).toEqual(['COMMITTED_SHARES', 'MARGINAL', 'PROPORTIONAL']);

  expect(r.drain.inFlightLeft).toBe(0);
  const phases = { 'open 10/s': positive, 'open 50/s': positive, 'open 100/s': positive, 'closed 32 clients': positive, 'campaign 64 clients': positive };
  expect(r.rss).toEqual({ readyMb: positive, underLoadMb: positive, idleAfterLoadMb: positive, hwmMb: positive, peakByPhaseMb: phases });
  expect(r.rss.hwmMb).toBeGreaterThanOrEqual(r.rss.readyMb);
  // Under load is the largest of the phases' peaks.
  expect(r.rss.underLoadMb).toBe(Math.max(...(Object.values(r.rss.peakByPhaseMb) as number[])));
}
