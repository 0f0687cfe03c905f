// The read documents of `npm run bench` (reads), in one process: a gateway on a new test database with 200 projects
// and their budgets (as the benchmark seeds them), each document sent N times through the HTTP app without a
// socket. Prints, per document, the process's CPU per request and the wall-clock p10/p50/p90; CPU per request is
// the figure to compare on a shared machine (other work there inflates wall time, much less CPU time).
//
//   npx tsx test/perf/reads-profile.ts                       N=200 by default; ONLY=orgUnits,budgetBalance
//   PROFILE=/tmp/reads npx tsx test/perf/reads-profile.ts    and a CPU profile of each document's N requests
//                                                            (/tmp/reads-<document>.cpuprofile, for Chrome DevTools)
//   SQL=1 npx tsx test/perf/reads-profile.ts                 and each document's statements with their round trip
//                                                            and PostgreSQL's own execution time (EXPLAIN ANALYZE)
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import pg from 'pg';
import { startHarness } from '../support/harness.js';
import { avatarRequest, createAccount, createUnit, mustMutate, setBudget, SUBMIT } from '../support/fixtures.js';
import { createHttpApp } from '../../src/http/server.js';

const N = Number(process.env.N ?? 200);
const only = process.env.ONLY?.split(',');
const h = await startHarness({ workers: false });
try {
  const accountId = await createAccount(h, { name: 'Reads' });
  const org = await createUnit(h, 'ORGANIZATION', 'Acme', null);
  const dept = await createUnit(h, 'DEPARTMENT', 'Dept', org, accountId);
  const team = await createUnit(h, 'TEAM', 'Team', dept);
  const project = await createUnit(h, 'PROJECT', 'Reads project', team);
  for (let i = 0; i < 200; i += 8) {
    await Promise.all(
      Array.from({ length: 8 }, async (_, k) => {
        const id = await createUnit(h, 'PROJECT', `r${i + k}`, team);
        await setBudget(h, { orgUnitId: id, accountId, window: 'MONTHLY', limitCreditSeconds: '1000' });
        await setBudget(h, { orgUnitId: id, window: 'LIFETIME', enforcement: 'SOFT', limitCreditSeconds: '5000' });
      }),
    );
  }
  await setBudget(h, { orgUnitId: project, accountId, window: 'MONTHLY', limitCreditSeconds: '100000' });
  await setBudget(h, { orgUnitId: project, window: 'LIFETIME', enforcement: 'SOFT', limitCreditSeconds: '500000' });
  const token = (
    await mustMutate(
      h,
      `mutation($input: IssueServiceTokenInput!) { issueServiceToken(input: $input) { __typename ... on IssueServiceTokenPayload { token } } }`,
      { input: { orgUnitId: project, name: 'poller' } },
      'issueServiceToken',
    )
  ).token as string;
  for (let i = 0; i < 5; i++) await mustMutate(h, SUBMIT, { input: { projectId: project, kind: 'AVATAR_VIDEO', request: avatarRequest() } }, 'submitJob', token);

  // The harness logs at debug (its tests read the lines); a gateway runs at info.
  h.services.logger.level = 'info';
  const app = createHttpApp(h.services);
  // The documents of test/bench/main.ts (measureReads), and an empty one for the cost of any request.
  const documents: Record<string, { token: string; query: string; variables: Record<string, unknown> }> = {
    empty: { token: h.adminToken, query: '{ __typename }', variables: {} },
    orgUnits: {
      token: h.adminToken,
      query: `query($first: Int) { orgUnits(first: $first, kind: PROJECT) { edges { node { id name parent { name } usage { reservedCreditSeconds settledCreditSeconds }
          budgets { account { name } limitCreditSeconds reservedCreditSeconds settledCreditSeconds availableCreditSeconds } } } } }`,
      variables: { first: 200 },
    },
    accountPeriod: {
      token: h.adminToken,
      query: `query { accounts { id period { period usedCreditSeconds reservedCreditSeconds remainingIncludedCreditSeconds overageCreditSeconds projectedInvoiceUsd } } }`,
      variables: {},
    },
    budgetBalance: {
      token,
      query: `query($id: ID!) { orgUnit(id: $id) { usage { reservedCreditSeconds settledCreditSeconds } budgets { limitCreditSeconds reservedCreditSeconds settledCreditSeconds availableCreditSeconds } } }`,
      variables: { id: project },
    },
  };
  const out: Record<string, unknown> = {};
  for (const [name, d] of Object.entries(documents)) {
    if (only && !only.includes(name)) continue;
    const send = async () => {
      const res = await app.request('/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${d.token}` },
        body: JSON.stringify({ query: d.query, variables: d.variables }),
      });
      const text = await res.text();
      if (res.status !== 200 || text.includes('"errors"')) throw new Error(`${name}: ${text.slice(0, 500)}`);
    };
    for (let i = 0; i < 20; i++) await send(); // warm: plans, caches, the JIT
    if (process.env.SQL) out[`${name}Statements`] = await statementsOf(send);
    const session = process.env.PROFILE ? new Session() : null;
    if (session) {
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
    }
    const times: number[] = [];
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < N; i++) {
      const started = performance.now();
      await send();
      times.push(performance.now() - started);
    }
    const cpu = process.cpuUsage(cpu0);
    if (session) {
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(`${process.env.PROFILE}-${name}.cpuprofile`, JSON.stringify(profile));
      session.disconnect();
    }
    times.sort((a, b) => a - b);
    const at = (q: number) => Math.round(times[Math.min(N - 1, Math.floor(N * q))]! * 100) / 100;
    out[name] = { cpuMsPerRequest: Math.round((cpu.user + cpu.system) / 10 / N) / 100, p10Ms: at(0.1), p50Ms: at(0.5), p90Ms: at(0.9) };
  }
  console.log(JSON.stringify(out, null, 1));

  /** The statements one request sends: round trip seen by the gateway, and execution time in PostgreSQL. */
  async function statementsOf(send: () => Promise<void>): Promise<unknown[]> {
    const seen: { text: string; values: unknown[]; ms: number }[] = [];
    // At the driver's Query (the gateway's pool and clients wrap `query` per instance for tracing).
    type Query = { text: string; values?: unknown[]; started?: number };
    const proto = (pg as unknown as { Query: { prototype: Record<string, (...a: unknown[]) => unknown> } }).Query.prototype;
    const { submit, handleReadyForQuery } = proto as { submit: (...a: unknown[]) => unknown; handleReadyForQuery: (...a: unknown[]) => unknown };
    proto.submit = function (this: Query, ...args: unknown[]) {
      this.started = performance.now();
      return submit.apply(this, args);
    };
    proto.handleReadyForQuery = function (this: Query, ...args: unknown[]) {
      if (this.started !== undefined) seen.push({ text: this.text, values: this.values ?? [], ms: performance.now() - this.started });
      return handleReadyForQuery.apply(this, args);
    };
    try {
      await send();
    } finally {
      proto.submit = submit;
      proto.handleReadyForQuery = handleReadyForQuery;
    }
    const explained = [];
    const client = new pg.Client({ connectionString: h.database.url });
    await client.connect();
    for (const s of seen) {
      // The best of 5 (the first on a new connection compiles the PL/pgSQL functions it calls).
      const plans: Record<string, unknown>[] = [];
      for (let i = 0; i < 5; i++) plans.push((await client.query(`explain (analyze, timing off, format json) ${s.text}`, s.values)).rows[0]['QUERY PLAN'][0]);
      if (process.env.SQL === 'plans') console.log((await client.query(`explain (analyze, buffers) ${s.text}`, s.values)).rows.map((r) => r['QUERY PLAN']).join('\n'));
      const best = (key: string) => Math.min(...plans.map((p) => p[key] as number));
      explained.push({ roundTripMs: Math.round(s.ms * 100) / 100, executionMs: best('Execution Time'), planningMs: best('Planning Time'), text: s.text.replace(/\s+/g, ' ').slice(0, 100) });
    }
    await client.end();
    return explained;
  }
} finally {
  await h.close();
}
