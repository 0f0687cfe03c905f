// The read documents of `npm run bench` (reads), in one process: a gateway on a new test database with 200 projects
// and their budgets (as the benchmark seeds them), each document sent N times through the HTTP app without a
// socket. Prints, per document, the process's CPU per request and the wall-clock p10/p50/p90; CPU per request is
// the figure to compare on a shared machine (other work there inflates wall time, much less CPU time).
//
//   npx tsx test/perf/reads-profile.ts                       N=200 by default; ONLY=orgUnits,budgetBalance
//   PROFILE=/tmp/reads npx tsx test/perf/reads-profile.ts    and a CPU profile of each document's N requests
//                                                            (/tmp/reads-<document>.cpuprofile, for Chrome DevTools)
//   HEAP=/tmp/reads npx tsx test/perf/reads-profile.ts       and a sampling heap profile of what those requests
//                                                            allocate, collected objects included
//                                                            (/tmp/reads-<document>.heapprofile)
//   GATEWAY=dist npx tsx test/perf/reads-profile.ts          the same requests over HTTP to the built gateway
//                                                            (dist/, the flags of `npm start`, as the benchmark runs
//                                                            it) on the same database: the CPU per request is that
//                                                            process's (/proc), without tsx's transform of the
//                                                            sources; with PROFILE= the process's own --cpu-prof
//                                                            (warm-up included) goes to <PROFILE>-dist/;
//                                                            GATEWAY_NODE_OPTIONS: more flags for it (--trace-gc),
//                                                            GATEWAY_LOG=<file>: where its output goes
//   SQL=1 npx tsx test/perf/reads-profile.ts                 and each document's statements with their round trip
//                                                            and PostgreSQL's own execution time (EXPLAIN ANALYZE)
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import pg from 'pg';
import { startHarness } from '../support/harness.js';
import { avatarRequest, createAccount, createUnit, mustMutate, setBudget, SUBMIT } from '../support/fixtures.js';
import { createHttpApp } from '../../src/http/server.js';
import buildOnce from '../support/build.js';
import { spawnGateway, type GatewayProcess } from '../support/processes.js';

const N = Number(process.env.N ?? 200);
const only = process.env.ONLY?.split(',');
const h = await startHarness({ workers: false });
let gateway: GatewayProcess | null = null;
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
  if (process.env.GATEWAY === 'dist' && process.env.SQL) throw new Error('SQL= counts the statements of this process: not with GATEWAY=dist');
  if (process.env.GATEWAY === 'dist') {
    buildOnce();
    gateway = await spawnGateway(
      // As the benchmark starts it (NODE_ENV=production: graphql-js's instanceOf checks are then plain instanceof).
      { DATABASE_URL: h.database.url, GATEWAY_MASTER_KEY: h.services.config.masterKey!, NODE_ENV: 'production', WORKERS_ENABLED: 'false', RATE_LIMIT_PER_MINUTE: '0' },
      [...(process.env.PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.PROFILE}-dist`] : []), ...(process.env.GATEWAY_NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean)],
    );
  }
  /** CPU time used so far, in µs: the built gateway's (from /proc), or this process's. */
  const cpuNow = (): number => {
    if (!gateway) {
      const { user, system } = process.cpuUsage();
      return user + system;
    }
    // utime and stime, fields 14 and 15 of /proc/<pid>/stat (after the command's parenthesis), in clock ticks of 10 ms.
    const fields = readFileSync(`/proc/${gateway.child.pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  };
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
      const res = await (gateway ? fetch(`${gateway.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${d.token}` },
        body: JSON.stringify({ query: d.query, variables: d.variables }),
      }) : app.request('/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${d.token}` },
        body: JSON.stringify({ query: d.query, variables: d.variables }),
      }));
      const text = await res.text();
      if (res.status !== 200 || text.includes('"errors"')) throw new Error(`${name}: ${text.slice(0, 500)}`);
    };
    for (let i = 0; i < 20; i++) await send(); // warm: plans, caches, the JIT
    if (process.env.SQL) out[`${name}Statements`] = await statementsOf(send);
    const session = !gateway && (process.env.PROFILE || process.env.HEAP) ? new Session() : null;
    if (session) {
      session.connect();
      if (process.env.PROFILE) {
        await session.post('Profiler.enable');
        await session.post('Profiler.start');
      }
      if (process.env.HEAP) {
        await session.post('HeapProfiler.enable');
        await session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
      }
    }
    const times: number[] = [];
    const cpu0 = cpuNow();
    for (let i = 0; i < N; i++) {
      const started = performance.now();
      await send();
      times.push(performance.now() - started);
    }
    const cpu = cpuNow() - cpu0;
    if (session) {
      if (process.env.PROFILE) {
        const { profile } = await session.post('Profiler.stop');
        writeFileSync(`${process.env.PROFILE}-${name}.cpuprofile`, JSON.stringify(profile));
      }
      if (process.env.HEAP) {
        const { profile } = await session.post('HeapProfiler.stopSampling');
        writeFileSync(`${process.env.HEAP}-${name}.heapprofile`, JSON.stringify(profile));
      }
      session.disconnect();
    }
    times.sort((a, b) => a - b);
    const at = (q: number) => Math.round(times[Math.min(N - 1, Math.floor(N * q))]! * 100) / 100;
    out[name] = { cpuMsPerRequest: Math.round(cpu / 10 / N) / 100, p10Ms: at(0.1), p50Ms: at(0.5), p90Ms: at(0.9) };
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
  await gateway?.stop();
  if (gateway && process.env.GATEWAY_LOG) writeFileSync(process.env.GATEWAY_LOG, gateway.output.join(''));
  await h.close();
}
