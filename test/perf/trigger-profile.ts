// npx tsx test/perf/trigger-profile.ts [--jobs 300] [--clients 8] [--tags] — PostgreSQL time per job, per PL/pgSQL
// function, of the money path as the benchmark's campaign runs it: a gateway on its own fresh database (the test
// harness, webhooks on, the simulator rendering at once), a department/team/project tree with a MONTHLY HARD budget on
// the project (default thresholds 50/80/100), N jobs submitted by a few clients and followed until every one settled.
// Its connections alone run with track_functions = 'pl' (PGOPTIONS: a session setting, no server or database change);
// pg_stat_user_functions is read before and after the load (each after the idle backends flushed their counters) and
// the difference is printed per job: calls, total and self milliseconds. `--tags` submits every job with a tag (whose
// key is declared first), to measure the tag rollups too. `--sql <file>`: SQL run on the migrated database before the
// load (e.g. a variant of a trigger, to compare two within minutes of each other on a shared machine). Not a test:
// times depend on the machine (compare runs made close together), calls do not.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pg from 'pg';

process.env.PGOPTIONS = `${process.env.PGOPTIONS ?? ''} -c track_functions=pl`.trim();

const { startHarness, waitFor } = await import('../support/harness.js');
const { createTree, issueServiceToken, setBudget, SUBMIT, avatarRequest, mustMutate } = await import('../support/fixtures.js');

const { values } = parseArgs({ options: { jobs: { type: 'string', default: '300' }, clients: { type: 'string', default: '8' }, tags: { type: 'boolean', default: false }, sql: { type: 'string' } } });
const jobs = Number(values.jobs);
const clients = Number(values.clients);

// CPU time (user + system, ms) of every backend on the database, sampled every 200 ms while the load runs (a backend
// that leaves between two samples loses at most its last 200 ms): less sensitive to a busy machine than wall times.
function cpuMsOf(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0;
  }
}
async function backendCpu(url: string, database: string): Promise<{ stop(): Promise<number> }> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const first = new Map<number, number>();
  const last = new Map<number, number>();
  let started = false;
  const sample = async () => {
    const { rows } = await c.query<{ pid: number }>('select pid from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [database]);
    for (const { pid } of rows) {
      const ms = cpuMsOf(pid);
      if (!first.has(pid)) first.set(pid, started ? 0 : ms);
      last.set(pid, Math.max(last.get(pid) ?? 0, ms));
    }
  };
  await sample();
  started = true;
  const timer = setInterval(() => void sample().catch(() => {}), 200);
  return {
    async stop() {
      clearInterval(timer);
      await sample();
      await c.end();
      let ms = 0;
      for (const [pid, at] of last) ms += at - (first.get(pid) ?? 0);
      return ms;
    },
  };
}

type Row = { funcname: string; calls: number; total_time: number; self_time: number };
async function snapshot(url: string): Promise<Map<string, Row>> {
  // Backends flush their function counters when idle (at the latest 10 s after their last transaction).
  await new Promise((r) => setTimeout(r, 11_000));
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<Row>('select funcname, calls::int, total_time, self_time from pg_stat_user_functions');
    return new Map(rows.map((r) => [r.funcname, r]));
  } finally {
    await c.end();
  }
}

const h = await startHarness({ callbacks: true, sim: { renderMs: 0 }, env: { LOG_LEVEL: 'warn' } });
try {
  const tree = await createTree(h, { name: 'Profile', concurrencyLimit: 10_000 });
  await setBudget(h, { orgUnitId: tree.projectId, accountId: tree.accountId, window: 'MONTHLY', enforcement: 'HARD', limitCreditSeconds: String(jobs * 60) });
  if (values.sql) {
    const c = new pg.Client({ connectionString: h.database.url });
    await c.connect();
    await c.query(readFileSync(values.sql, 'utf8'));
    await c.end();
  }
  const service = await issueServiceToken(h, tree.projectId, 'profile');
  if (values.tags) {
    await mustMutate(h, `mutation($input: SetTagKeysInput!) { setTagKeys(input: $input) { __typename ... on Error { message code } } }`,
      { input: { keys: ['campaign'] } }, 'setTagKeys');
  }
  const request = (): Record<string, unknown> => ({ projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest(), ...(values.tags ? { tags: [{ key: 'campaign', value: 'spring' }] } : {}) });
  const before = await snapshot(h.database.url);
  const cpu = await backendCpu(h.database.url, h.database.name);
  const started = performance.now();
  let next = 0;
  let failed = 0;
  await Promise.all(Array.from({ length: clients }, async () => {
    while (next < jobs) {
      next++;
      const res = await h.gql(SUBMIT, { input: request() }, service.token);
      if (res.data?.submitJob?.__typename !== 'SubmitJobPayload') failed++;
    }
  }));
  const c = new pg.Client({ connectionString: h.database.url });
  await c.connect();
  await waitFor(async () => {
    const { rows } = await c.query<{ n: number }>(`select count(*)::int as n from ledger_entries where entry_type = 'DEBIT'`);
    return rows[0]!.n >= jobs - failed;
  }, 300_000, 200);
  const { rows: counts } = await c.query<{ entry_type: string; n: number }>('select entry_type, count(*)::int as n from ledger_entries group by 1 order by 1');
  await c.end();
  const elapsed = performance.now() - started;
  const cpuMs = await cpu.stop();
  const after = await snapshot(h.database.url);
  const per = (x: number) => (x / jobs).toFixed(3);
  console.log(`${jobs} jobs (${failed} failed), ${clients} clients, tags ${values.tags}, sql ${values.sql ?? 'none'}, ${(elapsed / 1000).toFixed(1)} s; ledger ${counts.map((r) => `${r.entry_type} ${r.n}`).join(', ')}`);
  console.log(`PostgreSQL backends' CPU: ${per(cpuMs)} ms/job`);
  console.log('function'.padEnd(40), 'calls/job'.padStart(10), 'total ms/job'.padStart(13), 'self ms/job'.padStart(12));
  const rows = [...after.values()].map((a) => {
    const b = before.get(a.funcname);
    return { name: a.funcname, calls: a.calls - (b?.calls ?? 0), total: a.total_time - (b?.total_time ?? 0), self: a.self_time - (b?.self_time ?? 0) };
  }).filter((r) => r.calls > 0).sort((x, y) => y.self - x.self);
  let selfSum = 0;
  for (const r of rows) {
    selfSum += r.self;
    console.log(r.name.padEnd(40), (r.calls / jobs).toFixed(2).padStart(10), per(r.total).padStart(13), per(r.self).padStart(12));
  }
  console.log('sum of self time'.padEnd(40), ''.padStart(10), ''.padStart(13), per(selfSum).padStart(12));
} finally {
  await h.close();
}
