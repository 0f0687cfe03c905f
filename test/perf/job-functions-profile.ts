// Server-side time of one job's path (admission, forwarding's bookkeeping, the followed settlement), measured inside
// PostgreSQL: a gateway on its own new database with `track_functions = 'pl'` set on that database only, N jobs
// submitted through GraphQL by C clients into a project under a HARD and a SOFT budget, each forwarded to the
// simulator (renders at once, webhooks on) and settled by `gateway_settle_followed`. Prints, per PL/pgSQL function,
// its calls and its total and self milliseconds per call (pg_stat_user_functions: self excludes the PL/pgSQL functions
// it calls, triggers included, but includes SQL-language functions such as gateway_json_row).
//
//   npx tsx test/perf/job-functions-profile.ts               N=400 C=8 by default
//   BUDGETS=0 npx tsx test/perf/job-functions-profile.ts     no budget on the path (the bench's submit phase)
//   STATEMENTS=1 npx tsx test/perf/job-functions-profile.ts  also every statement's time (auto_explain on that
//                                                            database, nested statements included, no ANALYZE):
//                                                            the statements with the most total time
//
// Times move with the machine's load: compare runs taken minutes apart, and the statement counts and ratios rather
// than absolute figures.
import pg from 'pg';
import { createTestDatabase } from '../support/db.js';
import { startHarness, waitFor } from '../support/harness.js';
import { createTree, issueServiceToken, setBudget, SUBMIT, avatarRequest } from '../support/fixtures.js';

const N = Number(process.env.N ?? 400);
const C = Number(process.env.C ?? 8);
const statementsWanted = process.env.STATEMENTS === '1';

const database = await createTestDatabase();
const admin = new pg.Client({ connectionString: database.url });
await admin.connect();
await admin.query(`alter database ${database.name} set track_functions = 'pl'`);
if (statementsWanted) {
  for (const setting of [
    `session_preload_libraries = 'auto_explain'`,
    `auto_explain.log_min_duration = 0`,
    `auto_explain.log_nested_statements = on`,
    `auto_explain.log_format = 'json'`,
    `client_min_messages = 'log'`,
  ]) await admin.query(`alter database ${database.name} set ${setting}`);
}

// Every LOG notice auto_explain sends a client: its statement's duration, by the statement's text.
const statements = new Map<string, { calls: number; ms: number }>();
if (statementsWanted) {
  const connect = pg.Client.prototype.connect;
  pg.Client.prototype.connect = function (this: pg.Client, ...args: unknown[]) {
    this.on('notice', (notice) => {
      const m = /^duration: ([\d.]+) ms\s+plan:\s*([\s\S]*)$/.exec(notice.message ?? '');
      if (!m) return;
      let text = m[2]!;
      try {
        text = (JSON.parse(text) as { 'Query Text': string })['Query Text'];
      } catch {
        /* not JSON */
      }
      const key = text.replace(/\s+/g, ' ').trim().slice(0, 160);
      const s = statements.get(key) ?? { calls: 0, ms: 0 };
      s.calls += 1;
      s.ms += Number(m[1]);
      statements.set(key, s);
    });
    return (connect as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof pg.Client.prototype.connect;
}

// CAPTURE=<file>: the parameters of the last call of each function, for replaying them by hand; KEEP=1: the database
// is kept (its name printed) instead of dropped.
const captured: Record<string, unknown> = {};
if (process.env.CAPTURE) {
  const query = pg.Client.prototype.query;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const first = args[0] as string | { text?: string; values?: unknown[] } | undefined;
    const text = typeof first === 'string' ? first : first?.text;
    const values = (Array.isArray(args[1]) ? args[1] : typeof first === 'object' ? first?.values : undefined) as unknown[] | undefined;
    const m = typeof text === 'string' ? /(gateway_admit|gateway_mark_submitted|gateway_settle_followed)\(/.exec(text) : null;
    if (m && values?.[0] !== undefined) captured[m[1]!] = values[0];
    return (query as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof pg.Client.prototype.query;
}

const h = await startHarness({ databaseUrl: database.url, callbacks: true, sim: { renderMs: 0 } });
let ok = false;
try {
  const tree = await createTree(h, { name: 'Profile' });
  if (process.env.BUDGETS !== '0') {
    await setBudget(h, { orgUnitId: tree.teamId, accountId: tree.accountId, window: 'MONTHLY', limitCreditSeconds: '100000000' });
    await setBudget(h, { orgUnitId: tree.projectId, window: 'LIFETIME', enforcement: 'SOFT', limitCreditSeconds: '100000000' });
  }
  const service = await issueServiceToken(h, tree.projectId, 'profile');
  const started = Date.now();
  let next = 0;
  let refused = 0;
  await Promise.all(
    Array.from({ length: C }, async () => {
      while (next < N) {
        next++;
        const r = await h.gql(SUBMIT, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } }, service.token);
        if (r.data?.submitJob?.__typename !== 'SubmitJobPayload') refused++;
      }
    }),
  );
  const submittedMs = Date.now() - started;
  await waitFor(async () => {
    const { rows } = await admin.query<{ n: number }>(`select count(*)::int as n from jobs where settled_at is null`);
    return rows[0]!.n === 0;
  }, 120_000, 200);
  console.log(`${N} submissions by ${C} clients in ${submittedMs} ms (${refused} refused), all settled after ${Date.now() - started} ms`);
  ok = true;
} finally {
  await h.close(); // the gateway's connections end: their function statistics are flushed
}
try {
  if (ok) {
    const c = new pg.Client({ connectionString: database.url });
    await c.connect();
    await new Promise((r) => setTimeout(r, 1500));
    const { rows } = await c.query<{ funcname: string; calls: string; total: number; self: number }>(
      `select funcname, calls, total_time as total, self_time as self from pg_stat_user_functions order by self_time desc`,
    );
    await c.end();
    console.log('function                              calls   total ms  self ms  total/call  self/call');
    for (const r of rows) {
      const calls = Number(r.calls);
      console.log(
        `${r.funcname.padEnd(36)} ${String(calls).padStart(6)} ${r.total.toFixed(0).padStart(10)} ${r.self.toFixed(0).padStart(8)} ${(r.total / calls).toFixed(3).padStart(11)} ${(r.self / calls).toFixed(3).padStart(10)}`,
      );
    }
    if (statementsWanted) {
      console.log('\nstatements by total time (auto_explain, nested included):');
      console.log('   calls   total ms   ms/call  statement');
      for (const [text, s] of [...statements.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, Number(process.env.TOP ?? 40))) {
        console.log(`${String(s.calls).padStart(8)} ${s.ms.toFixed(0).padStart(10)} ${(s.ms / s.calls).toFixed(3).padStart(9)}  ${text}`);
      }
    }
  }
} finally {
  await admin.end();
  if (process.env.CAPTURE) (await import('node:fs')).writeFileSync(process.env.CAPTURE, JSON.stringify(captured, null, 1));
  if (process.env.KEEP === '1') console.log(`database kept: ${database.name}`);
  else await database.drop();
}
