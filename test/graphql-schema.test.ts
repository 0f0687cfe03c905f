import { describe, expect, it, afterAll, beforeAll, vi } from 'vitest';
import DataLoader from 'dataloader';
import { readFileSync } from 'node:fs';
import { sql } from 'drizzle-orm';
import type { GraphQLObjectType } from 'graphql';
import { schema } from '../src/graphql/schema.js';
import { printedSchema, SCHEMA_FILE } from '../src/cli/print-schema.js';
import { startHarness, type Harness } from './support/harness.js';
import { avatarRequest, createAccount, createUnit, mustMutate, setBudget, SUBMIT } from './support/fixtures.js';
import type { GraphQLContext } from '../src/graphql/context.js';
import type { OrgUnitRow } from '../src/org/units.js';

describe('printed schema', () => {
  it('schema/schema.graphql matches the code', () => {
    expect(readFileSync(SCHEMA_FILE, 'utf8')).toBe(printedSchema());
  });

  it('keeps the binding names of the API contract (docs/architecture.md)', () => {
    const sdl = printedSchema();
    for (const name of [
      'viewer: Viewer!', 'node(', 'accounts: [Account!]!', 'orgUnit(', 'orgUnits(', 'job(', 'jobs(',
      'createAccount(', 'createOrgUnit(', 'setBudget(', 'issueServiceToken(', 'revokeServiceToken(', 'submitJob(', 'cancelJob(',
      'interface Error', 'type BudgetExceededError', 'type ConcurrencyLimitError', 'type ValidationError', 'type NotFoundError',
      'type ForbiddenError', 'type IdempotencyConflictError', 'type UpstreamError', 'scalar CreditSeconds', 'scalar Usd',
    ]) {
      expect(sdl, name).toContain(name);
    }
  });
});

describe('DataLoader batching', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ workers: false });
    // 200 projects, each with a budget on the account and one over all accounts: the page the tests below read.
    const accountId = await createAccount(h, { name: 'Loader' });
    const org = await createUnit(h, 'ORGANIZATION', 'Acme', null, accountId);
    const team = await createUnit(h, 'TEAM', 'Team', org);
    for (let i = 0; i < 200; i++) {
      const project = await createUnit(h, 'PROJECT', `p${i}`, team);
      await setBudget(h, { orgUnitId: project, accountId, window: 'MONTHLY', limitCreditSeconds: '1000' });
      await setBudget(h, { orgUnitId: project, window: 'LIFETIME', limitCreditSeconds: '5000' });
    }
  });
  afterAll(async () => h?.close());

  let statements: string[] = [];
  async function statementsFor(first: number): Promise<number> {
    statements = [];
    h.services.database.onQuery = (text) => statements.push(text);
    const res = await h.gql(
      `query($first: Int) { orgUnits(first: $first, kind: PROJECT) { edges { node { id name parent { name } usage { settledCreditSeconds }
         budgets { account { name } limitCreditSeconds reservedCreditSeconds settledCreditSeconds availableCreditSeconds } } } } }`,
      { first },
    );
    h.services.database.onQuery = undefined;
    expect(res.errors).toBeUndefined();
    expect(res.data.orgUnits.edges).toHaveLength(first);
    for (const edge of res.data.orgUnits.edges) expect(edge.node.budgets).toHaveLength(2);
    return statements.length;
  }

  it('200 units with their budgets cost a constant number of SQL statements', async () => {
    const small = await statementsFor(5);
    const large = await statementsFor(200);
    expect(large).toBe(small);
    // The page with its units' parents, the budgets with their counters, the units' usage, the budgets' accounts.
    expect(large).toBeLessThanOrEqual(4);
    // And no PL/pgSQL function called per budget: one called per budget (400 here) cost more than the rest of the
    // request. A statement may call one as its FROM item, once (gateway_budgets_with_usage, which plans its own
    // statement once per session); everything the statements and the functions they call run calls only
    // `LANGUAGE sql` functions PostgreSQL may inline into the statement (not volatile, strict or security definer,
    // no SET clause: any of those makes it a call per row).
    const functions = new Map(
      (
        await h.services.database.db.execute<{ name: string; lang: string; src: string; inlinable: boolean }>(
          sql`select p.proname as name, l.lanname as lang, p.prosrc as src,
                     p.provolatile <> 'v' and not p.proisstrict and not p.prosecdef and p.proconfig is null as inlinable
                from pg_proc p join pg_language l on l.oid = p.prolang join pg_namespace n on n.oid = p.pronamespace
               where n.nspname = 'public'`,
        )
      ).rows.map((r) => [r.name, r]),
    );
    expect(functions.get('gateway_budget_usage')?.lang).toBe('plpgsql');
    const callsIn = (text: string) => [...functions.keys()].filter((name) => new RegExp(`\\b${name}\\s*\\(`).test(text));
    for (const text of statements) {
      const called = callsIn(text);
      for (const name of called.filter((n) => functions.get(n)!.lang === 'plpgsql')) {
        expect(text.match(new RegExp(`\\b${name}\\s*\\(`, 'g')), name).toHaveLength(1);
        expect(text, name).toMatch(new RegExp(`\\bfrom\\s+${name}\\s*\\(`));
      }
      const seen = new Set<string>();
      for (let queue = [...called]; queue.length > 0; ) {
        const name = queue.pop()!;
        if (seen.has(name)) continue;
        seen.add(name);
        for (const callee of callsIn(functions.get(name)!.src).filter((c) => c !== name)) {
          expect(functions.get(callee)!.lang, `${name} calls ${callee}`).toBe('sql');
          expect(functions.get(callee)!.inlinable, `${name} calls ${callee}`).toBe(true);
          queue.push(callee);
        }
      }
    }
  });

  it('a page of units answers its fields without a promise per unit once its statements have come, through fragments too', async () => {
    // Every resolver of the fields below, wrapped to count the promises it returns (the 200 units made above).
    const fields: Record<string, string[]> = {
      OrgUnit: ['id', 'parent', 'usage', 'budgets'],
      Usage: ['settledCreditSeconds'],
      Budget: ['account', 'limitCreditSeconds', 'reservedCreditSeconds', 'settledCreditSeconds', 'availableCreditSeconds'],
    };
    const calls = { values: 0, promises: 0 };
    const restore: (() => void)[] = [];
    for (const [typeName, names] of Object.entries(fields)) {
      const type = schema.getType(typeName) as GraphQLObjectType;
      for (const name of names) {
        const field = type.getFields()[name]!;
        const resolve = field.resolve;
        if (!resolve) throw new Error(`${typeName}.${name} has no resolver of its own`);
        field.resolve = (...args) => {
          const result = resolve(...args);
          if (result instanceof Promise) calls.promises++;
          else calls.values++;
          return result;
        };
        restore.push(() => (field.resolve = resolve));
      }
    }
    try {
      const count = await statementsFor(200);
      expect(count).toBeLessThanOrEqual(4);
      expect(calls).toEqual({ values: 200 * (4 + 1) + 400 * 5, promises: 0 });
      // The same selection through a named fragment and an inline one, the budgets' account in a second fragment.
      calls.values = 0;
      const res = await h.gql(
        `query($first: Int) { orgUnits(first: $first, kind: PROJECT) { edges { node { ...unit } } } }
         fragment unit on OrgUnit { id ... on OrgUnit { usage { settledCreditSeconds } budgets { ...budget limitCreditSeconds } } }
         fragment budget on Budget { account { name } }`,
        { first: 200 },
      );
      expect(res.errors).toBeUndefined();
      expect(calls).toEqual({ values: 200 * (3 + 1) + 400 * 2, promises: 0 });
      // A skipped field is not read ahead: the page, and the usage only.
      statements = [];
      h.services.database.onQuery = (text) => statements.push(text);
      const skipped = await h.gql(
        `query($first: Int, $skip: Boolean!) { orgUnits(first: $first, kind: PROJECT) { edges { node { id usage { settledCreditSeconds } budgets @skip(if: $skip) { id } } } } }`,
        { first: 200, skip: true },
      );
      h.services.database.onQuery = undefined;
      expect(skipped.errors).toBeUndefined();
      expect(skipped.data.orgUnits.edges[0].node.budgets).toBeUndefined();
      expect(statements.filter((text) => /\bbudgets\b/.test(text))).toEqual([]);
    } finally {
      for (const undo of restore) undo();
    }
  });

  it("a page of units makes no copies of what it has read: units the process knows, each unit's budget list, no promise per primed key", async () => {
    // OrgUnit.budgets wrapped to keep, per request, the units it was asked on and the lists it answered.
    const field = (schema.getType('OrgUnit') as GraphQLObjectType).getFields().budgets!;
    const resolve = field.resolve!;
    let seen: { unit: OrgUnitRow; ctx: GraphQLContext; list: unknown }[] = [];
    field.resolve = (unit, args, ctx, info) => {
      const list = resolve(unit, args, ctx, info);
      seen.push({ unit, ctx, list });
      return list;
    };
    const prime = vi.spyOn(DataLoader.prototype, 'prime');
    try {
      const page = async () => {
        seen = [];
        expect(await statementsFor(200)).toBeLessThanOrEqual(4);
        expect(seen).toHaveLength(200);
        return seen;
      };
      const first = await page();
      prime.mockClear();
      const second = await page();
      // The 201 units and 400 budgets' counters primed into the request's loaders: kept as loaded, no promise each.
      expect(prime).not.toHaveBeenCalled();
      // The second request's units are the objects the first one read (units never change), not new copies.
      expect(second[0]!.ctx).not.toBe(first[0]!.ctx);
      const before = new Map(first.map((s) => [s.unit.id, s.unit]));
      for (const s of second) expect(s.unit).toBe(before.get(s.unit.id));
      // Every budget visible (an ADMIN): each unit's list is its loader's own, not a filtered copy.
      for (const s of second) expect(s.list).toBe(s.ctx.loaders.budgetsByUnit.loadNow(s.unit.id));
    } finally {
      field.resolve = resolve;
      prime.mockRestore();
    }
  });

  async function statementsOf(query: string, variables: Record<string, unknown>, token?: string): Promise<{ count: number; data: any }> {
    const statements: string[] = [];
    h.services.database.onQuery = (text) => statements.push(text);
    const res = await h.gql(query, variables, token);
    h.services.database.onQuery = undefined;
    expect(res.errors).toBeUndefined();
    return { count: statements.length, data: res.data };
  }

  it('the balances apps poll cost the same statements for one account or many, for a unit with or without budgets', async () => {
    const ACCOUNT_PERIOD = `query { accounts { name period { period usedCreditSeconds reservedCreditSeconds remainingIncludedCreditSeconds overageCreditSeconds projectedInvoiceUsd } } }`;
    const one = await statementsOf(ACCOUNT_PERIOD, {});
    for (let i = 0; i < 4; i++) await createAccount(h, { name: `Balance ${i}` });
    await createAccount(h, { name: 'Balance package', creditPackage: { totalCreditSeconds: '100000', pricePerCreditSecondUsd: '0.01', termStart: '2026-01-01', termEnd: '2026-12-31' } });
    const many = await statementsOf(ACCOUNT_PERIOD, {});
    expect(many.data.accounts.length).toBe(one.data.accounts.length + 5);
    for (const a of many.data.accounts) expect(a.period.usedCreditSeconds).toBe('0');
    // Accounts, their terms, their usage at the root (a credit package: and its term's earlier months).
    expect(many.count).toBeLessThanOrEqual(4);

    const accountId = await createAccount(h, { name: 'Balances' });
    const org = (await h.gql(`{ orgUnits(first: 1, kind: ORGANIZATION) { edges { node { id } } } }`)).data.orgUnits.edges[0].node.id;
    const dept = await createUnit(h, 'DEPARTMENT', 'Balances', org, accountId);
    const bare = await createUnit(h, 'PROJECT', 'bare', dept);
    const capped = await createUnit(h, 'PROJECT', 'capped', dept);
    await setBudget(h, { orgUnitId: capped, accountId, window: 'MONTHLY', limitCreditSeconds: '1000' });
    await setBudget(h, { orgUnitId: capped, accountId, window: 'CONTRACT_TERM', limitCreditSeconds: '3000' });
    await setBudget(h, { orgUnitId: capped, window: 'LIFETIME', limitCreditSeconds: '5000' });
    await setBudget(h, { orgUnitId: dept, accountId, window: 'MONTHLY', limitCreditSeconds: '2000' });
    const BALANCE = `query($id: ID!) { orgUnit(id: $id) { usage { reservedCreditSeconds settledCreditSeconds }
      budgets { window limitCreditSeconds reservedCreditSeconds settledCreditSeconds availableCreditSeconds } } }`;
    const counts: number[] = [];
    for (const unit of [bare, capped]) {
      const token = (await mustMutate(h, `mutation($input: IssueServiceTokenInput!) { issueServiceToken(input: $input) { __typename ... on IssueServiceTokenPayload { token } } }`, { input: { orgUnitId: unit, name: 'poller' } }, 'issueServiceToken')).token;
      await h.gql(BALANCE, { id: unit }, token); // a token's first use records when it was last used
      const read = await statementsOf(BALANCE, { id: unit }, token);
      counts.push(read.count);
      if (unit === capped) {
        expect(read.data.orgUnit.budgets.map((b: any) => [b.window, b.limitCreditSeconds, b.availableCreditSeconds])).toEqual(
          expect.arrayContaining([['MONTHLY', '1000', '1000'], ['CONTRACT_TERM', '3000', '3000'], ['LIFETIME', '5000', '5000']]),
        );
      }
    }
    expect(counts[1]).toBe(counts[0]);
    // The budgets with their counters, the usage: the token's check (a revocation epoch), the unit and the caller's
    // account (units never change) are what the process already has.
    expect(counts[1]).toBe(2);

    // Each budget counts its own unit's subtree: a hold on a sibling shows on the department's budget only.
    const job = await mustMutate(h, SUBMIT, { input: { projectId: bare, kind: 'AVATAR_VIDEO', request: avatarRequest() } }, 'submitJob');
    const held = job.job.reservedCreditSeconds;
    expect(held).toBe('52.8');
    const after = await h.gql(
      `query($a: ID!, $b: ID!) { a: orgUnit(id: $a) { budgets { window reservedCreditSeconds } } b: orgUnit(id: $b) { budgets { window reservedCreditSeconds availableCreditSeconds } } }`,
      { a: capped, b: dept },
    );
    expect(after.errors).toBeUndefined();
    const { a: cappedAfter, b: deptAfter } = after.data;
    expect(cappedAfter.budgets).toHaveLength(3);
    for (const b of cappedAfter.budgets) expect(b.reservedCreditSeconds, b.window).toBe('0');
    expect(deptAfter.budgets).toEqual([{ window: 'MONTHLY', reservedCreditSeconds: held, availableCreditSeconds: '1947.2' }]);
  });
});
