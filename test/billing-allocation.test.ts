import DecimalImport from 'decimal.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  allocateInvoice,
  presetTiers,
  type AllocationInput,
  type AllocationPolicy,
  type ContractTerms,
  type OrgUnitRef,
  type Statement,
  type StatementLine,
  type UsageEntry,
} from '../src/billing/allocation.js';
import { BillingValidationError } from '../src/primitives/errors.js';
import {
  formatCents,
  formatCreditSeconds,
  formatDecimal,
  largestRemainder,
  parseCreditSeconds,
  parseUsd,
} from '../src/primitives/money.js';
import { rational } from '../src/primitives/rational.js';

// decimal.js ships CJS typings and an ESM build with only a default export; take the class either way.
type DecimalCtor = typeof DecimalImport.Decimal;
const Decimal: DecimalCtor =
  (DecimalImport as unknown as { Decimal?: DecimalCtor }).Decimal ?? (DecimalImport as unknown as DecimalCtor);
type Dec = InstanceType<DecimalCtor>;
const D = Decimal.clone({ precision: 100, rounding: Decimal.ROUND_HALF_UP });

const M = 1_000_000n; // micro-credit-seconds per credit-second
const cs = (n: bigint | number) => BigInt(n) * M;

function expectReason(fn: () => unknown, reason: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(BillingValidationError);
  expect((caught as BillingValidationError).reason).toBe(reason);
}

// org
// ├─ dept-media
// │  ├─ team-a
// │  └─ team-b
// └─ dept-sales
//    └─ team-c
// Canonical line order (pre-order, siblings by id): org, dept-media, team-a, team-b, dept-sales, team-c.
const units: OrgUnitRef[] = [
  { id: 'team-c', parentId: 'dept-sales' },
  { id: 'dept-sales', parentId: 'org' },
  { id: 'team-b', parentId: 'dept-media' },
  { id: 'org', parentId: null },
  { id: 'team-a', parentId: 'dept-media' },
  { id: 'dept-media', parentId: 'org' },
];

let seq = 0n;
const entry = (unitId: string, microCs: bigint, day = 1): UsageEntry => ({
  unitId,
  microCs,
  settledAt: new Date(Date.UTC(2026, 10, day, 12)),
  seq: ++seq,
});

/** team-a 350,000 cs, team-b 210,000 cs, team-c 140,000 cs: 700,000 cs in all. */
const workedMonth: UsageEntry[] = [
  entry('team-a', cs(200_000), 2),
  entry('team-b', cs(210_000), 3),
  entry('team-c', cs(140_000), 4),
  entry('team-a', cs(150_000), 5),
];

function line(statement: Statement, unitId: string): StatementLine {
  const found = statement.lines.find((l) => l.unitId === unitId);
  if (!found) throw new Error(`no line for ${unitId}`);
  return found;
}
/** ownCents of each unit, as dollars. */
function own(statement: Statement): Record<string, string> {
  return Object.fromEntries(statement.lines.map((l) => [l.unitId, formatCents(l.ownCents)]));
}
/** costCents (subtree) of each unit, as dollars. */
function cost(statement: Statement): Record<string, string> {
  return Object.fromEntries(statement.lines.map((l) => [l.unitId, formatCents(l.costCents)]));
}
function ownOverageCs(statement: Statement): Record<string, string> {
  return Object.fromEntries(statement.lines.map((l) => [l.unitId, formatCreditSeconds(l.ownOverageMicroCs)]));
}

describe('money', () => {
  it('parses credit-seconds into micro-credit-seconds', () => {
    expect(parseCreditSeconds('600000.5')).toBe(600_000_500_000n);
    expect(parseCreditSeconds('0.000001')).toBe(1n);
    expect(parseCreditSeconds('12')).toBe(12_000_000n);
    expect(parseCreditSeconds('0')).toBe(0n);
    expect(parseCreditSeconds('1000000000000')).toBe(10n ** 18n);
    expect(parseCreditSeconds('-1.5', { allowNegative: true })).toBe(-1_500_000n);
  });

  it('rejects more than 6 decimals, negatives and garbage', () => {
    expectReason(() => parseCreditSeconds('1.1234567'), 'INVALID_AMOUNT');
    expectReason(() => parseCreditSeconds('-1'), 'INVALID_AMOUNT');
    for (const garbage of ['', 'abc', '1e6', ' 1', '1 ', '1.', '.5', '1,000', '+1', '0x10', 'NaN', 'Infinity', '--1', '1.2.3']) {
      expectReason(() => parseCreditSeconds(garbage, { allowNegative: true }), 'INVALID_AMOUNT');
      expectReason(() => parseUsd(garbage, { allowNegative: true }), 'INVALID_AMOUNT');
    }
    expectReason(() => parseCreditSeconds(12 as unknown as string), 'INVALID_AMOUNT');
    expectReason(() => parseCreditSeconds('1'.repeat(65)), 'INVALID_AMOUNT');
  });

  it('formats credit-seconds as a minimal plain decimal', () => {
    expect(formatCreditSeconds(600_000_500_000n)).toBe('600000.5');
    expect(formatCreditSeconds(0n)).toBe('0');
    expect(formatCreditSeconds(1n)).toBe('0.000001');
    expect(formatCreditSeconds(-1_500_000n)).toBe('-1.5');
    expect(formatCreditSeconds(10n ** 18n)).toBe('1000000000000');
    expect(formatCreditSeconds(54_545_454_545n)).toBe('54545.454545');
  });

  it('round-trips credit-seconds', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 24n), max: 10n ** 24n }), (micro) => {
        expect(parseCreditSeconds(formatCreditSeconds(micro), { allowNegative: true })).toBe(micro);
      }),
    );
  });

  it('parses USD exactly, as a rational of dollars', () => {
    expect(parseUsd('0.00833')).toEqual({ num: 833n, den: 100_000n });
    expect(parseUsd('0.0075')).toEqual({ num: 3n, den: 400n });
    expect(parseUsd('0.000123456')).toEqual({ num: 1929n, den: 15_625_000n }); // 123456 / 10^9
    expect(parseUsd('5000.00')).toEqual({ num: 5000n, den: 1n });
    expect(parseUsd('0.01000')).toEqual(parseUsd('0.01'));
    expectReason(() => parseUsd('-0.01'), 'INVALID_AMOUNT');
    expect(formatDecimal(parseUsd('0.00833'))).toBe('0.00833');
    expect(formatDecimal(parseUsd('0.000123456'))).toBe('0.000123456');
    expect(formatDecimal(parseUsd('5000.00'))).toBe('5000');
    expect(() => formatDecimal(rational(1n, 3n))).toThrow(RangeError);
  });

  it('formats cents as dollars', () => {
    expect(formatCents(583_300n)).toBe('5833.00');
    expect(formatCents(83_300n)).toBe('833.00');
    expect(formatCents(5n)).toBe('0.05');
    expect(formatCents(0n)).toBe('0.00');
    expect(formatCents(-5n)).toBe('-0.05');
    expect(formatCents(750_000_200_000n)).toBe('7500002000.00');
  });

  it('splits by largest remainder, ties by index', () => {
    expect(largestRemainder(100n, [1n, 1n, 1n])).toEqual([34n, 33n, 33n]);
    expect(largestRemainder(10n, [0n, 1n, 1n])).toEqual([0n, 5n, 5n]);
    expect(largestRemainder(1n, [rational(1n, 2n), rational(1n, 2n)])).toEqual([1n, 0n]);
    expect(largestRemainder(7n, [rational(1n, 3n), rational(2n, 3n)])).toEqual([2n, 5n]); // 2.33, 4.67
    expect(largestRemainder(0n, [0n, 0n])).toEqual([0n, 0n]);
    expect(largestRemainder(0n, [])).toEqual([]);
    expectReason(() => largestRemainder(5n, []), 'INVALID_AMOUNT');
    expectReason(() => largestRemainder(1n, [0n, 0n]), 'INVALID_AMOUNT');
    expectReason(() => largestRemainder(1n, [2n, -1n]), 'INVALID_AMOUNT');
  });

  it('largest remainder sums exactly, stays within one unit of the exact share, and gives zero weights nothing', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 15n }),
        fc.array(fc.oneof(fc.constant(0n), fc.bigInt({ min: 1n, max: 10n ** 18n })), { minLength: 1, maxLength: 20 }),
        (total, weights) => {
          fc.pre(weights.some((w) => w > 0n));
          const parts = largestRemainder(total, weights);
          const weightSum = weights.reduce((a, b) => a + b, 0n);
          expect(parts.reduce((a, b) => a + b, 0n)).toBe(total);
          parts.forEach((part, i) => {
            const w = weights[i]!;
            expect(part).toBeGreaterThanOrEqual(0n);
            if (w === 0n) expect(part).toBe(0n);
            // floor(exact) ≤ part ≤ floor(exact) + 1
            const floor = (total * w) / weightSum;
            expect(part === floor || part === floor + 1n).toBe(true);
          });
        },
      ),
    );
  });
});

describe('presetTiers', () => {
  it('are the published tiers', () => {
    expect(presetTiers.MMC_1000).toEqual({
      model: 'USAGE_BASED',
      mmcUsd: '1000',
      contractRateUsd: '0.00833',
      includedMicroCs: 120_000_000_000n,
      overageRateUsd: '0.01000',
    });
    expect(presetTiers.MMC_5000).toEqual({
      model: 'USAGE_BASED',
      mmcUsd: '5000',
      contractRateUsd: '0.00750',
      includedMicroCs: 600_000_000_000n,
      overageRateUsd: '0.00833',
    });
    expect(presetTiers.MMC_20000).toEqual({
      model: 'USAGE_BASED',
      mmcUsd: '20000',
      contractRateUsd: '0.00667',
      includedMicroCs: 2_400_000_000_000n,
      overageRateUsd: '0.00750',
    });
  });
});

describe('worked example: $5,000 tier, 700,000 cs', () => {
  const base = { terms: presetTiers.MMC_5000, units, usage: workedMonth } satisfies Partial<AllocationInput>;

  it('invoices MMC + 100,000 cs overage at $0.00833 = $5,833.00', () => {
    const s = allocateInvoice({ ...base, policy: 'PROPORTIONAL' });
    expect(s.usedMicroCs).toBe(cs(700_000));
    expect(s.includedMicroCs).toBe(cs(600_000));
    expect(s.overageMicroCs).toBe(cs(100_000));
    expect(formatCents(s.mmcCents)).toBe('5000.00');
    expect(formatCents(s.overageCents)).toBe('833.00');
    expect(formatCents(s.invoiceCents)).toBe('5833.00');
    expect(s.forfeitedCents).toBe(0n);
  });

  it('PROPORTIONAL: T·U_u/U = $2,916.50 / $1,749.90 / $1,166.60', () => {
    const s = allocateInvoice({ ...base, policy: 'PROPORTIONAL' });
    expect(s.lines.map((l) => l.unitId)).toEqual(['org', 'dept-media', 'team-a', 'team-b', 'dept-sales', 'team-c']);
    expect(own(s)).toEqual({
      org: '0.00',
      'dept-media': '0.00',
      'team-a': '2916.50',
      'team-b': '1749.90',
      'dept-sales': '0.00',
      'team-c': '1166.60',
    });
    expect(cost(s)).toEqual({
      org: '5833.00',
      'dept-media': '4666.40',
      'team-a': '2916.50',
      'team-b': '1749.90',
      'dept-sales': '1166.60',
      'team-c': '1166.60',
    });
    // Overage cs in proportion to usage: 100,000 × 350/700, × 210/700, × 140/700.
    expect(ownOverageCs(s)).toMatchObject({ 'team-a': '50000', 'team-b': '30000', 'team-c': '20000' });
    expect(line(s, 'team-a')).toMatchObject({ ownInPoolMicroCs: cs(300_000), depth: 2, parentId: 'dept-media' });
    expect(line(s, 'dept-media')).toMatchObject({
      ownMicroCs: 0n,
      microCs: cs(560_000),
      inPoolMicroCs: cs(480_000),
      overageMicroCs: cs(80_000),
      depth: 1,
    });
    expect(line(s, 'org')).toMatchObject({ microCs: cs(700_000), inPoolMicroCs: cs(600_000), overageMicroCs: cs(100_000) });
  });

  it('MARGINAL: the pool goes in settlement order, the crossing entry split', () => {
    // Settlement order: team-a 200,000 → team-b 210,000 → team-c 140,000 → team-a 150,000.
    // Running total 200k, 410k, 550k, then team-a's second entry crosses 600k: 50,000 in the pool,
    // 100,000 overage. Pool price MMC/I = $5,000 / 600,000 = $1/120 per cs.
    //   team-a: 250,000/120 = 2,083.3333… + 100,000 × 0.00833 = 833 → $2,916.3333… → 291,633.33… ¢
    //   team-b: 210,000/120 = $1,750.00                                → 175,000.00 ¢
    //   team-c: 140,000/120 = $1,166.6666…                             → 116,666.67 ¢
    // Floors 291,633 + 175,000 + 116,666 = 583,299; the missing cent goes to the largest remainder (team-c, .67).
    const s = allocateInvoice({ ...base, policy: 'MARGINAL', usage: [...workedMonth].reverse() });
    expect(formatCents(s.invoiceCents)).toBe('5833.00');
    expect(own(s)).toEqual({
      org: '0.00',
      'dept-media': '0.00',
      'team-a': '2916.33',
      'team-b': '1750.00',
      'dept-sales': '0.00',
      'team-c': '1166.67',
    });
    expect(cost(s)).toMatchObject({ org: '5833.00', 'dept-media': '4666.33', 'dept-sales': '1166.67' });
    expect(line(s, 'team-a')).toMatchObject({ ownInPoolMicroCs: cs(250_000), ownOverageMicroCs: cs(100_000) });
    expect(line(s, 'team-b')).toMatchObject({ ownInPoolMicroCs: cs(210_000), ownOverageMicroCs: 0n });
    expect(line(s, 'team-c')).toMatchObject({ ownInPoolMicroCs: cs(140_000), ownOverageMicroCs: 0n });
  });

  it('MARGINAL: another order puts the overage on team-c', () => {
    // team-a 350,000 → team-b 210,000 → team-c 140,000: team-c crosses at 560k, 40,000 in the pool.
    //   team-a: 350,000/120 = $2,916.6666… → 291,666.67 ¢
    //   team-b: $1,750.00
    //   team-c: 40,000/120 = 333.3333… + 833 = $1,166.3333… → 116,633.33 ¢
    // Floors sum to 583,299; the cent goes to team-a (.67).
    const usage = [entry('team-a', cs(350_000), 2), entry('team-b', cs(210_000), 3), entry('team-c', cs(140_000), 4)];
    const s = allocateInvoice({ ...base, policy: 'MARGINAL', usage });
    expect(own(s)).toMatchObject({ 'team-a': '2916.67', 'team-b': '1750.00', 'team-c': '1166.33' });
    expect(ownOverageCs(s)).toMatchObject({ 'team-a': '0', 'team-b': '0', 'team-c': '100000' });
    expect(formatCents(s.invoiceCents)).toBe('5833.00');
  });

  it('COMMITTED_SHARES 0.5 / 0.3 / 0.2: shares matching usage reproduce PROPORTIONAL', () => {
    // s·I = 300k / 180k / 120k; excesses 50k / 30k / 20k; $833 split 5:3:2 = 416.50 / 249.90 / 166.60
    // plus commitments 2,500 / 1,500 / 1,000.
    const s = allocateInvoice({
      ...base,
      policy: 'COMMITTED_SHARES',
      shares: [
        { unitId: 'team-a', share: '0.5' },
        { unitId: 'team-b', share: '0.3' },
        { unitId: 'team-c', share: '0.2' },
      ],
    });
    expect(own(s)).toMatchObject({ 'team-a': '2916.50', 'team-b': '1749.90', 'team-c': '1166.60', org: '0.00' });
    expect(ownOverageCs(s)).toMatchObject({ 'team-a': '50000', 'team-b': '30000', 'team-c': '20000' });
    expect(formatCents(s.invoiceCents)).toBe('5833.00');
  });

  it('COMMITTED_SHARES 0.6 / 0.25 / 0.15: only units over their share pay overage', () => {
    // s·I = 360k / 150k / 90k; excesses max(0, 350−360) = 0 / 60k / 50k; E = 110k.
    //   team-a: 0.6 × 5,000 = $3,000.00
    //   team-b: 1,250 + 833 × 60/110 = 1,250 + 454.3636… → 170,436.36 ¢
    //   team-c:   750 + 833 × 50/110 =   750 + 378.6363… → 112,863.64 ¢
    // Floors 300,000 + 170,436 + 112,863 = 583,299; the cent goes to team-c (.64 > .36).
    // Overage cs 100,000 × 60/110 = 54,545.4545…, × 50/110 = 45,454.5454… → the last micro-cs to team-c.
    const s = allocateInvoice({
      ...base,
      policy: 'COMMITTED_SHARES',
      shares: [
        { unitId: 'team-a', share: '0.6' },
        { unitId: 'team-b', share: '0.25' },
        { unitId: 'team-c', share: '0.15' },
      ],
    });
    expect(own(s)).toMatchObject({ 'team-a': '3000.00', 'team-b': '1704.36', 'team-c': '1128.64' });
    expect(cost(s)).toMatchObject({ org: '5833.00', 'dept-media': '4704.36', 'dept-sales': '1128.64' });
    expect(ownOverageCs(s)).toMatchObject({ 'team-a': '0', 'team-b': '54545.454545', 'team-c': '45454.545455' });
    expect(line(s, 'team-b').ownInPoolMicroCs).toBe(155_454_545_455n);
  });

  it('COMMITTED_SHARES with a share on a unit that uses nothing itself', () => {
    // Shares: team-a 0.5, team-b 0.3, dept-sales 0.2 (no own usage), team-c 0.
    // Excesses: team-a 350−300 = 50k, team-b 210−180 = 30k, team-c 140−0 = 140k, dept-sales 0; E = 220k.
    //   team-a: 2,500 + 833 × 50/220  = 2,689.3181… → 268,931.82 ¢
    //   team-b: 1,500 + 833 × 30/220  = 1,613.5909… → 161,359.09 ¢
    //   team-c:     0 + 833 × 140/220 =   530.0909… →  53,009.09 ¢
    //   dept-sales: 0.2 × 5,000       = 1,000.00
    // Floors sum to 583,299; the cent goes to team-a (.82).
    // Overage cs 100,000 × 5/22, 3/22, 14/22: remainders .27 / .36 / .36 micro-cs; the tie between
    // team-b and team-c goes to team-b, earlier in tree order.
    const s = allocateInvoice({
      ...base,
      policy: 'COMMITTED_SHARES',
      shares: [
        { unitId: 'dept-sales', share: '0.2' },
        { unitId: 'team-a', share: '0.5' },
        { unitId: 'team-b', share: '0.3' },
        { unitId: 'team-c', share: '0' },
      ],
    });
    expect(own(s)).toEqual({
      org: '0.00',
      'dept-media': '0.00',
      'team-a': '2689.32',
      'team-b': '1613.59',
      'dept-sales': '1000.00',
      'team-c': '530.09',
    });
    expect(cost(s)).toMatchObject({ org: '5833.00', 'dept-media': '4302.91', 'dept-sales': '1530.09' });
    expect(ownOverageCs(s)).toMatchObject({
      'team-a': '22727.272727',
      'team-b': '13636.363637',
      'team-c': '63636.363636',
      'dept-sales': '0',
    });
  });
});

describe('under the pool: 400,000 cs on the $5,000 tier', () => {
  const usage = [entry('team-a', cs(200_000), 2), entry('team-b', cs(120_000), 3), entry('team-c', cs(80_000), 4)];
  const base = { terms: presetTiers.MMC_5000, units, usage } satisfies Partial<AllocationInput>;

  it('PROPORTIONAL: the whole MMC to the users', () => {
    const s = allocateInvoice({ ...base, policy: 'PROPORTIONAL' });
    expect(formatCents(s.invoiceCents)).toBe('5000.00');
    expect(s.overageMicroCs).toBe(0n);
    expect(s.overageCents).toBe(0n);
    expect(own(s)).toMatchObject({ org: '0.00', 'team-a': '2500.00', 'team-b': '1500.00', 'team-c': '1000.00' });
  });

  it('MARGINAL: used cs at MMC/I, the unused pool to the cost centre', () => {
    // team-a 200,000/120 = 1,666.6666…, team-b 120,000/120 = 1,000, team-c 80,000/120 = 666.6666…,
    // unused 200,000/120 = 1,666.6666… to org. Floors 499,998; two cents to the three .67 remainders in
    // tree order: org, then team-a.
    const s = allocateInvoice({ ...base, policy: 'MARGINAL' });
    expect(formatCents(s.invoiceCents)).toBe('5000.00');
    expect(own(s)).toEqual({
      org: '1666.67',
      'dept-media': '0.00',
      'team-a': '1666.67',
      'team-b': '1000.00',
      'dept-sales': '0.00',
      'team-c': '666.66',
    });
    // With dept-sales as the cost centre the tie runs team-a, dept-sales.
    const elsewhere = allocateInvoice({ ...base, policy: 'MARGINAL', costCentreUnitId: 'dept-sales' });
    expect(own(elsewhere)).toMatchObject({ org: '0.00', 'team-a': '1666.67', 'dept-sales': '1666.67', 'team-c': '666.66' });
    expect(cost(elsewhere)).toMatchObject({ org: '5000.00', 'dept-sales': '2333.33' });
    expect(elsewhere.costCentreUnitId).toBe('dept-sales');
  });

  it('COMMITTED_SHARES: each unit pays its share of the MMC, used or not', () => {
    const even = allocateInvoice({
      ...base,
      policy: 'COMMITTED_SHARES',
      shares: [
        { unitId: 'team-a', share: '0.5' },
        { unitId: 'team-b', share: '0.3' },
        { unitId: 'team-c', share: '0.2' },
      ],
    });
    expect(own(even)).toMatchObject({ 'team-a': '2500.00', 'team-b': '1500.00', 'team-c': '1000.00' });
    const uneven = allocateInvoice({
      ...base,
      policy: 'COMMITTED_SHARES',
      shares: [
        { unitId: 'team-a', share: '0.6' },
        { unitId: 'team-b', share: '0.25' },
        { unitId: 'team-c', share: '0.15' },
      ],
    });
    expect(own(uneven)).toMatchObject({ 'team-a': '3000.00', 'team-b': '1250.00', 'team-c': '750.00' });
    expect(uneven.lines.every((l) => l.overageMicroCs === 0n)).toBe(true);
  });
});

describe('edge months', () => {
  const shares = [
    { unitId: 'team-a', share: '0.5' },
    { unitId: 'team-b', share: '0.5' },
  ];

  it('zero usage: the MMC goes to the cost centre, or to the shareholders', () => {
    for (const policy of ['PROPORTIONAL', 'MARGINAL'] as const) {
      const s = allocateInvoice({ terms: presetTiers.MMC_5000, policy, units, usage: [] });
      expect(formatCents(s.invoiceCents)).toBe('5000.00');
      expect(own(s)).toMatchObject({ org: '5000.00', 'team-a': '0.00', 'team-b': '0.00', 'team-c': '0.00' });
      const cc = allocateInvoice({ terms: presetTiers.MMC_5000, policy, units, usage: [], costCentreUnitId: 'team-c' });
      expect(own(cc)).toMatchObject({ org: '0.00', 'team-c': '5000.00' });
      expect(cost(cc)).toMatchObject({ org: '5000.00', 'dept-sales': '5000.00' });
    }
    const shared = allocateInvoice({ terms: presetTiers.MMC_5000, policy: 'COMMITTED_SHARES', units, usage: [], shares });
    expect(own(shared)).toMatchObject({ org: '0.00', 'team-a': '2500.00', 'team-b': '2500.00' });
  });

  it('usage far over the pool: $1,000 tier, 10,000,000 cs', () => {
    // O = 10,000,000 − 120,000 = 9,880,000 cs × $0.01 = $98,800; invoice $99,800.00.
    const usage = [entry('team-a', cs(9_000_000), 2), entry('team-b', cs(1_000_000), 3)];
    const base = { terms: presetTiers.MMC_1000, units, usage };
    const proportional = allocateInvoice({ ...base, policy: 'PROPORTIONAL' });
    expect(formatCents(proportional.invoiceCents)).toBe('99800.00');
    expect(formatCents(proportional.overageCents)).toBe('98800.00');
    expect(proportional.overageMicroCs).toBe(cs(9_880_000));
    expect(own(proportional)).toMatchObject({ 'team-a': '89820.00', 'team-b': '9980.00' });
    // MARGINAL: team-a first: 120,000 cs in the pool ($1,000) + 8,880,000 × 0.01; team-b all overage.
    const marginal = allocateInvoice({ ...base, policy: 'MARGINAL' });
    expect(own(marginal)).toMatchObject({ 'team-a': '89800.00', 'team-b': '10000.00', org: '0.00' });
    // Shares 0.5/0.5: excesses 8,940,000 and 940,000 cs (sum = O): 500 + 89,400 and 500 + 9,400.
    const committed = allocateInvoice({ ...base, policy: 'COMMITTED_SHARES', shares });
    expect(own(committed)).toMatchObject({ 'team-a': '89900.00', 'team-b': '9900.00' });
    expect(ownOverageCs(committed)).toMatchObject({ 'team-a': '8940000', 'team-b': '940000' });
  });

  it('tiny amounts: 1 micro-cs', () => {
    const one = [entry('team-a', 1n)];
    const proportional = allocateInvoice({ terms: presetTiers.MMC_5000, policy: 'PROPORTIONAL', units, usage: one });
    expect(own(proportional)).toMatchObject({ org: '0.00', 'team-a': '5000.00' });
    // MARGINAL: team-a's exact share is 1/120,000,000 of a dollar; the cost centre keeps the rest.
    const marginal = allocateInvoice({ terms: presetTiers.MMC_5000, policy: 'MARGINAL', units, usage: one });
    expect(own(marginal)).toMatchObject({ org: '5000.00', 'team-a': '0.00' });

    // One micro-cs past the pool: O = 0.000001 cs, $0.00000000833 overage, rounds away.
    const over = allocateInvoice({
      terms: presetTiers.MMC_5000,
      policy: 'PROPORTIONAL',
      units,
      usage: [entry('team-a', cs(600_000)), entry('team-b', 1n)],
    });
    expect(over.overageMicroCs).toBe(1n);
    expect(formatCents(over.invoiceCents)).toBe('5000.00');
    expect(over.overageCents).toBe(0n);
    expect(over.lines.reduce((a, l) => a + l.ownOverageMicroCs, 0n)).toBe(1n);

    const pack = allocateInvoice({
      terms: { model: 'CREDIT_PACKAGE', pricePerCsUsd: '0.000123456', poolMicroCs: cs(1000), termEndsInThisPeriod: false },
      units,
      usage: one,
    });
    expect(pack.invoiceCents).toBe(0n);
    expect(pack.lines.every((l) => l.ownCents === 0n)).toBe(true);
  });

  it('huge amounts: 10^12 cs on the $20,000 tier', () => {
    // O = 10^12 − 2,400,000 = 999,997,600,000 cs × $0.0075 = $7,499,982,000; + $20,000 MMC.
    const usage = [entry('team-a', cs(10n ** 12n))];
    for (const policy of ['PROPORTIONAL', 'MARGINAL'] as const) {
      const s = allocateInvoice({ terms: presetTiers.MMC_20000, policy, units, usage });
      expect(s.usedMicroCs).toBe(10n ** 18n);
      expect(s.overageMicroCs).toBe(999_997_600_000_000_000n);
      expect(formatCents(s.invoiceCents)).toBe('7500002000.00');
      expect(formatCents(s.overageCents)).toBe('7499982000.00');
      expect(own(s)).toMatchObject({ 'team-a': '7500002000.00', org: '0.00' });
    }
  });

  it('rounds the invoice once, half up', () => {
    // MMC $0.004 + 1 cs × $0.001 = $0.005 → 0.5 ¢ → 1 ¢; MMC alone 0.4 ¢ → 0 ¢, so overageCents = 1.
    const s = allocateInvoice({
      terms: { model: 'USAGE_BASED', mmcUsd: '0.004', includedMicroCs: 0n, contractRateUsd: '0.005', overageRateUsd: '0.001' },
      policy: 'PROPORTIONAL',
      units,
      usage: [entry('team-a', cs(1))],
    });
    expect(s.invoiceCents).toBe(1n);
    expect(s.mmcCents).toBe(0n);
    expect(s.overageCents).toBe(1n);
    expect(line(s, 'team-a').ownCents).toBe(1n);
  });

  it('MARGINAL with no included pool: all usage is overage, the MMC goes to the cost centre', () => {
    const s = allocateInvoice({
      terms: { model: 'USAGE_BASED', mmcUsd: '100', includedMicroCs: 0n, contractRateUsd: '0.005', overageRateUsd: '0.01' },
      policy: 'MARGINAL',
      units,
      usage: [entry('team-a', cs(1000))],
    });
    expect(own(s)).toMatchObject({ org: '100.00', 'team-a': '10.00' });
    expect(formatCents(s.invoiceCents)).toBe('110.00');
  });
});

describe('adjustments', () => {
  it('are netted per unit; PROPORTIONAL sees only the totals', () => {
    const usage = [...workedMonth, entry('team-b', cs(10_000), 6), entry('team-b', -cs(10_000), 7)];
    const s = allocateInvoice({ terms: presetTiers.MMC_5000, policy: 'PROPORTIONAL', units, usage });
    expect(own(s)).toMatchObject({ 'team-a': '2916.50', 'team-b': '1749.90', 'team-c': '1166.60' });
  });

  it('MARGINAL: an adjustment cancels its unit’s latest usage, which frees the pool for later entries', () => {
    // team-a 600,000 (fills the pool), team-a −100,000, then team-b 200,000: 100,000 in the pool, 100,000 over.
    //   team-a: 500,000/120 = 4,166.6666… → 416,666.67 ¢
    //   team-b: 100,000/120 + 833 = 1,666.3333… → 166,633.33 ¢   (the cent goes to team-a)
    const usage = [entry('team-a', cs(600_000), 2), entry('team-a', -cs(100_000), 3), entry('team-b', cs(200_000), 4)];
    const s = allocateInvoice({ terms: presetTiers.MMC_5000, policy: 'MARGINAL', units, usage });
    expect(own(s)).toMatchObject({ 'team-a': '4166.67', 'team-b': '1666.33' });
    expect(ownOverageCs(s)).toMatchObject({ 'team-a': '0', 'team-b': '100000' });
    expect(s.overageMicroCs).toBe(cs(100_000));
  });

  it('MARGINAL: an adjustment settled before the usage it corrects', () => {
    const usage = [
      entry('team-a', -cs(50_000), 1),
      entry('team-a', cs(250_000), 2),
      entry('team-b', cs(210_000), 3),
      entry('team-c', cs(140_000), 4),
      entry('team-a', cs(150_000), 5),
    ];
    const s = allocateInvoice({ terms: presetTiers.MMC_5000, policy: 'MARGINAL', units, usage });
    // team-a's first entry nets to 200,000: the same history as the worked example.
    expect(own(s)).toMatchObject({ 'team-a': '2916.33', 'team-b': '1750.00', 'team-c': '1166.67' });
  });

  it('reject a negative period total', () => {
    const usage = [entry('team-a', cs(10)), entry('team-a', -cs(11))];
    expectReason(() => allocateInvoice({ terms: presetTiers.MMC_5000, units, usage }), 'INVALID_USAGE');
  });
});

describe('credit package', () => {
  // Price $0.0075/cs, pool 500,000 cs; team-a 100,000.5 cs, team-b 50,000.25 cs → 150,000.75 cs.
  // Drawdown 150,000.75 × 0.0075 = $1,125.005625 → 112,500.5625 ¢ → 112,501 ¢ (half up).
  // Exact shares 75,000.375 ¢ and 37,500.1875 ¢ scaled onto 112,501: 75,000.67 and 37,500.33 → team-a gets the cent.
  const usage = [entry('team-a', parseCreditSeconds('100000.5')), entry('team-b', parseCreditSeconds('50000.25'))];
  const terms = { model: 'CREDIT_PACKAGE', pricePerCsUsd: '0.0075', poolMicroCs: cs(500_000) } as const;

  it('charges usage × price while the term runs', () => {
    const s = allocateInvoice({ terms: { ...terms, termEndsInThisPeriod: false }, units, usage });
    expect(s.model).toBe('CREDIT_PACKAGE');
    expect(s.policy).toBeNull();
    expect(formatCents(s.drawdownCents)).toBe('1125.01');
    expect(formatCents(s.invoiceCents)).toBe('1125.01');
    expect(s.forfeitedCents).toBe(0n);
    expect(s.mmcCents + s.overageCents).toBe(0n);
    expect(own(s)).toMatchObject({ org: '0.00', 'team-a': '750.01', 'team-b': '375.00' });
  });

  it('puts forfeited credits on the cost centre when the term ends', () => {
    // Remaining 500,000 − 150,000.75 = 349,999.25 cs × 0.0075 = $2,624.994375 → $2,624.99.
    const s = allocateInvoice({ terms: { ...terms, termEndsInThisPeriod: true }, units, usage });
    expect(formatCreditSeconds(s.forfeitedMicroCs)).toBe('349999.25');
    expect(formatCents(s.forfeitedCents)).toBe('2624.99');
    expect(formatCents(s.invoiceCents)).toBe('3750.00');
    expect(own(s)).toMatchObject({ org: '2624.99', 'team-a': '750.01', 'team-b': '375.00' });
    expect(cost(s)).toMatchObject({ org: '3750.00', 'dept-media': '1125.01' });

    const fromWallet = allocateInvoice({
      terms: { ...terms, termEndsInThisPeriod: true, remainingAtTermEndMicroCs: cs(1_000) },
      units,
      usage,
      costCentreUnitId: 'dept-sales',
    });
    expect(formatCents(fromWallet.forfeitedCents)).toBe('7.50');
    expect(own(fromWallet)).toMatchObject({ org: '0.00', 'dept-sales': '7.50' });
    expect(formatCents(fromWallet.invoiceCents)).toBe('1132.51');
  });

  it('prices exactly at $0.000123456 per cs', () => {
    // 1,000,000 cs → $123.456, 500,000 cs → $61.728; total $185.184 → 18,518 ¢, split 2:1 → 12,345.33 / 6,172.67.
    const s = allocateInvoice({
      terms: { model: 'CREDIT_PACKAGE', pricePerCsUsd: '0.000123456', poolMicroCs: cs(10_000_000), termEndsInThisPeriod: false },
      units,
      usage: [entry('team-a', cs(1_000_000)), entry('team-b', cs(500_000))],
    });
    expect(formatCents(s.invoiceCents)).toBe('185.18');
    expect(own(s)).toMatchObject({ 'team-a': '123.45', 'team-b': '61.73' });
  });

  it('with no usage and the term ending, the whole pool is forfeited', () => {
    const s = allocateInvoice({
      terms: { model: 'CREDIT_PACKAGE', pricePerCsUsd: '0.0075', poolMicroCs: cs(1_000_000), termEndsInThisPeriod: true },
      units,
      usage: [],
    });
    expect(formatCents(s.invoiceCents)).toBe('7500.00');
    expect(formatCents(line(s, 'org').ownCents)).toBe('7500.00');
  });
});

describe('validation', () => {
  const base: AllocationInput = { terms: presetTiers.MMC_5000, policy: 'COMMITTED_SHARES', units, usage: workedMonth };
  const withShares = (shares: { unitId: string; share: string }[]) => () => allocateInvoice({ ...base, shares });

  it('rejects shares that are out of range, unknown, duplicated, missing, or do not sum exactly to 1', () => {
    expectReason(withShares([{ unitId: 'team-a', share: '0.5' }, { unitId: 'team-b', share: '0.3' }, { unitId: 'team-c', share: '0.3' }]), 'INVALID_SHARES');
    expectReason(withShares([{ unitId: 'team-a', share: '0.3333' }, { unitId: 'team-b', share: '0.3333' }, { unitId: 'team-c', share: '0.3333' }]), 'INVALID_SHARES');
    expectReason(withShares([{ unitId: 'team-a', share: '1.5' }, { unitId: 'team-b', share: '-0.5' }]), 'INVALID_SHARES');
    expectReason(withShares([{ unitId: 'team-a', share: '1.5' }]), 'INVALID_SHARES');
    expectReason(withShares([{ unitId: 'team-z', share: '1' }]), 'INVALID_SHARES');
    expectReason(withShares([{ unitId: 'team-a', share: '0.5' }, { unitId: 'team-a', share: '0.5' }]), 'INVALID_SHARES');
    expectReason(withShares([{ unitId: 'team-a', share: 'half' }, { unitId: 'team-b', share: '0.5' }]), 'INVALID_SHARES');
    expectReason(withShares([]), 'INVALID_SHARES');
    expectReason(() => allocateInvoice(base), 'INVALID_SHARES');
    // Exactly 1, written any way, is fine.
    expect(() => withShares([{ unitId: 'team-a', share: '1.000' }])()).not.toThrow();
  });

  it('rejects a malformed org tree', () => {
    const tree = (u: OrgUnitRef[]) => () => allocateInvoice({ terms: presetTiers.MMC_5000, units: u, usage: [] });
    expectReason(tree([]), 'INVALID_ORG_TREE');
    expectReason(tree([{ id: 'a', parentId: null }, { id: 'b', parentId: null }]), 'INVALID_ORG_TREE');
    expectReason(tree([{ id: 'a', parentId: 'b' }, { id: 'b', parentId: 'a' }]), 'INVALID_ORG_TREE');
    expectReason(tree([{ id: 'r', parentId: null }, { id: 'a', parentId: 'b' }, { id: 'b', parentId: 'a' }]), 'INVALID_ORG_TREE');
    expectReason(tree([{ id: 'r', parentId: null }, { id: 'a', parentId: 'x' }]), 'INVALID_ORG_TREE');
    expectReason(tree([{ id: 'r', parentId: null }, { id: 'r', parentId: 'r' }]), 'INVALID_ORG_TREE');
    expectReason(() => allocateInvoice({ ...base, policy: 'PROPORTIONAL', costCentreUnitId: 'nobody' }), 'INVALID_ORG_TREE');
  });

  it('rejects bad usage and terms', () => {
    expectReason(() => allocateInvoice({ ...base, policy: 'PROPORTIONAL', usage: [entry('ghost', 1n)] }), 'INVALID_USAGE');
    expectReason(
      () => allocateInvoice({ ...base, policy: 'PROPORTIONAL', usage: [{ ...entry('team-a', 1n), settledAt: new Date('x') }] }),
      'INVALID_USAGE',
    );
    const twin = entry('team-a', 1n);
    expectReason(() => allocateInvoice({ ...base, policy: 'MARGINAL', usage: [twin, { ...twin, unitId: 'team-b' }] }), 'INVALID_USAGE');
    expect(() => allocateInvoice({ ...base, policy: 'PROPORTIONAL', usage: [twin, { ...twin, unitId: 'team-b' }] })).not.toThrow();
    expectReason(
      () => allocateInvoice({ ...base, policy: 'PROPORTIONAL', terms: { ...presetTiers.MMC_5000, mmcUsd: '5,000' } }),
      'INVALID_AMOUNT',
    );
    expectReason(
      () => allocateInvoice({ ...base, policy: 'PROPORTIONAL', terms: { ...presetTiers.MMC_5000, includedMicroCs: -1n } }),
      'INVALID_TERMS',
    );
    expectReason(
      () => allocateInvoice({ ...base, terms: { model: 'FREE' } as unknown as ContractTerms }),
      'INVALID_TERMS',
    );
    expectReason(
      () => allocateInvoice({ ...base, policy: 'RANDOM' as AllocationPolicy }),
      'INVALID_POLICY',
    );
  });
});

// ——— property test ———

interface Month {
  readonly input: AllocationInput;
  /** Shares as parsed numbers per unit id, for the oracle. */
  readonly shareOf: ReadonlyMap<string, Dec>;
}

const microArb = fc.oneof(
  { weight: 2, arbitrary: fc.constant(0n) },
  { weight: 2, arbitrary: fc.bigInt({ min: 1n, max: 1000n }) },
  { weight: 4, arbitrary: fc.bigInt({ min: 1n, max: 10n ** 12n }) },
  { weight: 3, arbitrary: fc.bigInt({ min: 1n, max: 10n ** 15n }) },
  { weight: 1, arbitrary: fc.bigInt({ min: 1n, max: 10n ** 18n }) },
);

function decimalString(scaled: bigint, scale: number): string {
  const digits = scaled.toString().padStart(scale + 1, '0');
  return scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
}
const usdArb = (maxScaled: bigint, maxScale: number) =>
  fc.tuple(fc.bigInt({ min: 0n, max: maxScaled }), fc.integer({ min: 0, max: maxScale })).map(([n, s]) => decimalString(n, s));

const termsArb: fc.Arbitrary<ContractTerms> = fc.oneof(
  fc.constantFrom(...Object.values(presetTiers)),
  fc.record({
    model: fc.constant('USAGE_BASED' as const),
    mmcUsd: usdArb(10n ** 9n, 4),
    includedMicroCs: fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: 10n ** 13n }), fc.bigInt({ min: 0n, max: 10n ** 18n })),
    contractRateUsd: usdArb(10n ** 6n, 7),
    overageRateUsd: usdArb(10n ** 7n, 9),
  }),
  fc.record(
    {
      model: fc.constant('CREDIT_PACKAGE' as const),
      pricePerCsUsd: usdArb(10n ** 7n, 9),
      poolMicroCs: fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: 10n ** 13n }), fc.bigInt({ min: 0n, max: 10n ** 18n })),
      termEndsInThisPeriod: fc.boolean(),
      remainingAtTermEndMicroCs: fc.bigInt({ min: 0n, max: 10n ** 15n }),
    },
    { requiredKeys: ['model', 'pricePerCsUsd', 'poolMicroCs', 'termEndsInThisPeriod'] },
  ),
);

const monthArb: fc.Arbitrary<Month> = fc
  .record({
    parents: fc.array(fc.nat(), { maxLength: 14 }),
    usage: fc.array(fc.record({ unit: fc.nat(), micro: microArb, at: fc.integer({ min: 0, max: 30 * 86_400 }) }), {
      maxLength: 30,
    }),
    adjustments: fc.array(
      fc.record({ unit: fc.nat(), permille: fc.integer({ min: 0, max: 1000 }), at: fc.integer({ min: 0, max: 30 * 86_400 }) }),
      { maxLength: 6 },
    ),
    terms: termsArb,
    policy: fc.constantFrom<AllocationPolicy>('PROPORTIONAL', 'MARGINAL', 'COMMITTED_SHARES'),
    shareWeights: fc.array(fc.oneof(fc.constant(0n), fc.bigInt({ min: 1n, max: 1000n })), { maxLength: 15 }),
    costCentre: fc.option(fc.nat(), { nil: undefined }),
  })
  .map(({ parents, usage, adjustments, terms, policy, shareWeights, costCentre }) => {
    // Random tree up to depth 4: unit i hangs under an earlier unit of depth < 4.
    const depth = [0];
    const tree: OrgUnitRef[] = [{ id: 'u0', parentId: null }];
    parents.forEach((pick, k) => {
      const eligible = depth.flatMap((d, i) => (d < 4 ? [i] : []));
      const parent = eligible[pick % eligible.length]!;
      depth.push(depth[parent]! + 1);
      tree.push({ id: `u${k + 1}`, parentId: `u${parent}` });
    });
    const n = tree.length;
    const base = Date.UTC(2026, 10, 1);
    let nextSeq = 0n;
    const totals = new Array<bigint>(n).fill(0n);
    const entries: UsageEntry[] = usage.map(({ unit, micro, at }) => {
      totals[unit % n] = totals[unit % n]! + micro;
      return { unitId: `u${unit % n}`, microCs: micro, settledAt: new Date(base + at * 1000), seq: nextSeq++ };
    });
    for (const { unit, permille, at } of adjustments) {
      const amount = (totals[unit % n]! * BigInt(permille)) / 1000n;
      if (amount === 0n) continue;
      totals[unit % n] = totals[unit % n]! - amount;
      entries.push({ unitId: `u${unit % n}`, microCs: -amount, settledAt: new Date(base + at * 1000), seq: nextSeq++ });
    }
    // Shares: the weights rounded onto 10^6 millionths, which sum to exactly 1.
    const weights: bigint[] = tree.map((_, i) => shareWeights[i] ?? 0n);
    if (!weights.some((w) => w > 0n)) weights[0] = 1n;
    const millionths = largestRemainder(1_000_000n, weights);
    const shares = tree.map((u, i) => ({ unitId: u.id, share: decimalString(millionths[i]!, 6) }));
    return {
      input: {
        terms,
        policy,
        units: tree,
        usage: entries,
        shares,
        costCentreUnitId: costCentre === undefined ? undefined : `u${costCentre % n}`,
      },
      shareOf: new Map(shares.map((s) => [s.unitId, new D(s.share)])),
    };
  });

const dec = (n: bigint) => new D(n.toString());
const centsOf = (d: Dec) => BigInt(d.toDecimalPlaces(0, D.ROUND_HALF_UP).toFixed(0));

/** Exact own cents per line, recomputed with decimal.js from the statement's cs split (an independent oracle). */
function oracleExactCents(month: Month, s: Statement): Dec[] {
  const { terms, policy = 'PROPORTIONAL' } = month.input;
  const cc = s.costCentreUnitId;
  const U = dec(s.usedMicroCs).div(1e6);
  if (terms.model === 'CREDIT_PACKAGE') {
    return s.lines.map((l) => dec(l.ownMicroCs).div(1e6).mul(terms.pricePerCsUsd).mul(100));
  }
  const mmc = new D(terms.mmcUsd).mul(100);
  const I = dec(terms.includedMicroCs).div(1e6);
  const O = dec(s.overageMicroCs).div(1e6);
  const overageCents = O.mul(terms.overageRateUsd).mul(100);
  const T = mmc.plus(overageCents);
  return s.lines.map((l) => {
    const Uu = dec(l.ownMicroCs).div(1e6);
    const isCc = l.unitId === cc;
    if (policy === 'PROPORTIONAL') return U.isZero() ? (isCc ? T : new D(0)) : T.mul(Uu).div(U);
    if (policy === 'MARGINAL') {
      const poolRate = I.isZero() ? new D(0) : mmc.div(I);
      const mine = dec(l.ownInPoolMicroCs).div(1e6).mul(poolRate).plus(dec(l.ownOverageMicroCs).div(1e6).mul(terms.overageRateUsd).mul(100));
      const unused = I.isZero() ? mmc : D.max(0, I.minus(U)).mul(poolRate);
      return isCc ? mine.plus(unused) : mine;
    }
    const share = month.shareOf.get(l.unitId) ?? new D(0);
    const excessOf = (line: StatementLine) =>
      D.max(0, dec(line.ownMicroCs).div(1e6).minus((month.shareOf.get(line.unitId) ?? new D(0)).mul(I)));
    const E = s.lines.reduce((acc, line) => acc.plus(excessOf(line)), new D(0));
    return share.mul(mmc).plus(O.isZero() ? 0 : overageCents.mul(excessOf(l)).div(E));
  });
}

function checkStatement(month: Month, s: Statement): void {
  const { input } = month;
  const sumOwn = s.lines.reduce((a, l) => a + l.ownCents, 0n);
  expect(sumOwn).toBe(s.invoiceCents);
  expect(s.lines[0]!.costCents).toBe(s.invoiceCents);
  expect(s.mmcCents + s.overageCents + s.drawdownCents + s.forfeitedCents).toBe(s.invoiceCents);
  expect(s.lines).toHaveLength(input.units.length);

  // The invoice, recomputed with decimal.js.
  const U = dec(s.usedMicroCs).div(1e6);
  if (input.terms.model === 'USAGE_BASED') {
    const I = input.terms.includedMicroCs;
    const O = s.usedMicroCs > I ? s.usedMicroCs - I : 0n;
    expect(s.overageMicroCs).toBe(O);
    const T = new D(input.terms.mmcUsd).plus(dec(O).div(1e6).mul(input.terms.overageRateUsd)).mul(100);
    expect(s.invoiceCents).toBe(centsOf(T));
    expect(s.lines[0]!.inPoolMicroCs).toBe(s.usedMicroCs < I ? s.usedMicroCs : I);
  } else {
    expect(s.drawdownCents).toBe(centsOf(U.mul(input.terms.pricePerCsUsd).mul(100)));
    expect(s.forfeitedCents).toBe(centsOf(dec(s.forfeitedMicroCs).div(1e6).mul(input.terms.pricePerCsUsd).mul(100)));
  }

  // Overage cs add up to O; nothing is negative.
  expect(s.lines.reduce((a, l) => a + l.ownOverageMicroCs, 0n)).toBe(s.overageMicroCs);
  expect(s.lines[0]!.overageMicroCs).toBe(s.overageMicroCs);
  expect(s.lines[0]!.microCs).toBe(s.usedMicroCs);
  for (const l of s.lines) {
    for (const v of [l.ownCents, l.costCents, l.ownMicroCs, l.microCs, l.ownInPoolMicroCs, l.ownOverageMicroCs, l.inPoolMicroCs, l.overageMicroCs]) {
      expect(v).toBeGreaterThanOrEqual(0n);
    }
  }

  // Each parent's totals are its own plus its children's.
  for (const parent of s.lines) {
    const children = s.lines.filter((l) => l.parentId === parent.unitId);
    expect(parent.costCents).toBe(parent.ownCents + children.reduce((a, c) => a + c.costCents, 0n));
    expect(parent.microCs).toBe(parent.ownMicroCs + children.reduce((a, c) => a + c.microCs, 0n));
    expect(parent.overageMicroCs).toBe(parent.ownOverageMicroCs + children.reduce((a, c) => a + c.overageMicroCs, 0n));
    for (const c of children) expect(c.depth).toBe(parent.depth + 1);
  }

  // Each unit's cents are within 1.5 ¢ of its exact amount (Hamilton rounding < 1, rescaling onto the rounded total ≤ 0.5).
  const exact = oracleExactCents(month, s);
  s.lines.forEach((l, i) => {
    const ownUsage = l.unitId === s.costCentreUnitId ? l.ownCents - s.forfeitedCents : l.ownCents;
    const gap = dec(ownUsage).minus(exact[i]!).abs();
    expect(gap.lessThan(1.5), `${l.unitId}: ${ownUsage} vs ${exact[i]!.toString()}`).toBe(true);
  });
}

describe('property: random months', () => {
  // ~2 s alone; the explicit timeout keeps it from flaking when the machine is busy.
  it('statements add up, are non-negative, nest, and are deterministic', { timeout: 30_000 }, () => {
    fc.assert(
      fc.property(monthArb, (month) => {
        const s = allocateInvoice(month.input);
        checkStatement(month, s);
        expect(allocateInvoice(month.input)).toEqual(s);
        // The order of units, usage and shares in the input does not matter.
        const reordered: AllocationInput = {
          ...month.input,
          units: [...month.input.units].reverse(),
          usage: [...month.input.usage].reverse(),
          shares: [...(month.input.shares ?? [])].reverse(),
        };
        expect(allocateInvoice(reordered)).toEqual(s);
      }),
      { numRuns: 2000 },
    );
  });
});
