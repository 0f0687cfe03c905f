// The backend's CPU per call of the job path's three server-side functions, made as the gateway makes them: the
// gateway's own statement texts, prepared (named) once per connection, each call its own transaction (autocommit),
// on a database kept by job-functions-profile.ts (CAPTURE=<file> KEEP=1) from the parameters it captured.
// The CPU is read from the backend's /proc/<pid>/schedstat by this client between calls, while the backend waits for
// the next message: its counter is then exact (read by the backend itself during a call, as job-functions-replay.sql
// does, it lags to the last scheduler tick or context switch, and undercounts calls shorter than a tick). Commit work
// is counted (the WAL flush's wait is not CPU). Needs this client and PostgreSQL on the same machine.
//
//   npx tsx test/perf/job-calls-cpu.ts <database> <capture.json> [variant.sql ...]
//     N=300 jobs per round, ROUNDS=3 rounds per variant, WARM=30 jobs first on each new connection (not counted).
//     Each variant file (SQL: CREATE OR REPLACE FUNCTION ..., run on the database before its rounds) is measured in
//     turn, round by round (A B A B ...), each round on a new connection; no file: the database as it is.
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { v7 as uuidv7 } from 'uuid';

const [database, capturePath, ...variants] = process.argv.slice(2);
if (!database || !capturePath) throw new Error('usage: job-calls-cpu.ts <database> <capture.json> [variant.sql ...]');
const N = Number(process.env.N ?? 300);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const WARM = Number(process.env.WARM ?? 30);
const url = `postgres://postgres@127.0.0.1:5432/${database}`;
const cap = JSON.parse(readFileSync(capturePath, 'utf8')) as Record<string, string>;
const pa = JSON.parse(cap.gateway_admit!);
const pm = JSON.parse(cap.gateway_mark_submitted!);
const ps = JSON.parse(cap.gateway_settle_followed!);

const ADMIT = 'select gateway_noted_admission(q.p, gateway_admit(q.p)) as r from (select $1::jsonb as p) as q';
const MARK = 'select gateway_mark_submitted($1::jsonb) as r';
const SETTLE = 'select gateway_settle_followed($1::jsonb) as r';

function cpuNs(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

async function round(): Promise<Record<string, { cpu: number[]; wall: number[] }>> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const pid = (await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
  const out: Record<string, { cpu: number[]; wall: number[] }> = { admit: { cpu: [], wall: [] }, mark: { cpu: [], wall: [] }, settle: { cpu: [], wall: [] } };
  async function call(name: 'admit' | 'mark' | 'settle', text: string, p: unknown, counted: boolean): Promise<any> {
    const c0 = cpuNs(pid);
    const t0 = process.hrtime.bigint();
    const { rows } = await c.query({ name, text, values: [JSON.stringify(p)] });
    const wall = Number(process.hrtime.bigint() - t0) / 1e6;
    const cpu = (cpuNs(pid) - c0) / 1e6;
    if (counted) {
      out[name]!.cpu.push(cpu);
      out[name]!.wall.push(wall);
    }
    const r = rows[0].r;
    return typeof r === 'string' ? JSON.parse(r) : r;
  }
  for (let i = 0; i < WARM + N; i++) {
    const counted = i >= WARM;
    const now = new Date().toISOString();
    const jid = uuidv7();
    const a = structuredClone(pa);
    a.job.id = jid;
    a.audit.entity_id = jid;
    a.job.created_at = now;
    a.now = now;
    const ra = await call('admit', ADMIT, a, counted);
    if (ra.outcome !== 'admitted') throw new Error(`admit: ${JSON.stringify(ra).slice(0, 300)}`);
    const m = structuredClone(pm);
    m.job_id = jid;
    m.items[0].job_id = jid;
    m.items[0].id = uuidv7();
    m.items[0].upstream_id = jid.replace(/-/g, '');
    m.now = new Date().toISOString();
    const rm = await call('mark', MARK, m, counted);
    if (rm.outcome !== 'submitted') throw new Error(`mark: ${JSON.stringify(rm).slice(0, 300)}`);
    const s = structuredClone(ps);
    s.job_id = jid;
    s.updates[0].id = rm.items[0].id;
    s.now = new Date().toISOString();
    const rs = await call('settle', SETTLE, s, counted);
    if (rs.outcome !== 'settled') throw new Error(`settle: ${JSON.stringify(rs).slice(0, 300)}`);
  }
  await c.end();
  return out;
}

const names = variants.length > 0 ? variants : ['(as is)'];
const summary: Record<string, Record<string, number[]>> = {};
for (let r = 0; r < ROUNDS; r++) {
  for (const v of names) {
    if (variants.length > 0) {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(readFileSync(v, 'utf8'));
      await c.end();
    }
    const out = await round();
    const line = Object.entries(out).map(([k, x]) => `${k} ${mean(x.cpu).toFixed(3)} (med ${median(x.cpu).toFixed(3)}, wall med ${median(x.wall).toFixed(3)})`);
    console.log(`round ${r + 1} ${v}: CPU ms per call: ${line.join('  ')}`);
    for (const [k, x] of Object.entries(out)) ((summary[v] ??= {})[k] ??= []).push(mean(x.cpu));
  }
}
for (const v of names) {
  console.log(`${v}: mean CPU ms per call over rounds: ${Object.entries(summary[v]!).map(([k, xs]) => `${k} ${xs.map((x) => x.toFixed(3)).join(', ')} (mean ${mean(xs).toFixed(3)})`).join('; ')}`);
}
