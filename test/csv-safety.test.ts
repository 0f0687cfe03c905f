// A unit name chosen by a manager cannot turn finance's CSV export into a spreadsheet formula.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse } from 'csv-parse/sync';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { startHarness, type Harness } from './support/harness.js';
import { createTree, createUnit, mustMutate } from './support/fixtures.js';
import { fetchCsv } from './support/billing.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ workers: false });
});
afterAll(async () => h?.close());

it('formula-like unit names are neutralised in both exports; numbers are untouched', async () => {
  const tree = await createTree(h);
  const evil = await createUnit(h, 'PROJECT', '=HYPERLINK("https://evil.example","x")', tree.teamId);
  const period = new Date().toISOString().slice(0, 7);
  await mustMutate(
    h,
    `mutation($input: RecordUsageAdjustmentInput!) { recordUsageAdjustment(input: $input) { __typename ... on Error { message } } }`,
    { input: { orgUnitId: evil, accountId: tree.accountId, period, creditSeconds: '100', reason: 'import' } },
    'recordUsageAdjustment',
  );
  const account = decodeGlobalID(tree.accountId).id;
  const plain = await fetchCsv(h, `/reports/chargeback.csv?account=${account}&period=${period}`);
  expect(plain.body).toContain(`"'=HYPERLINK(""https://evil.example"",""x"")"`);
  for (const format of ['', '&format=focus']) {
    const csv = await fetchCsv(h, `/reports/chargeback.csv?account=${account}&period=${period}${format}`);
    expect(csv.status).toBe(200);
    const rows = parse(csv.body, { columns: true }) as Record<string, string>[];
    const cells = rows.flatMap((r) => Object.values(r));
    // The name is there (alone and neutralised, or inside a path), and no cell starts like a formula.
    expect(cells.some((c) => c.includes('=HYPERLINK(')), csv.body).toBe(true);
    expect(cells.filter((c) => /^[=+@]/.test(c))).toEqual([]);
  }
});
