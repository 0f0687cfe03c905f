// npm run bench — the gateway's own benchmark. Every figure is a ratio against a baseline measured in the same run on
// the same machine (the absolute numbers are printed too, but only the ratios compare across machines):
//
//   submit        latency of submitJob through the gateway vs a direct create on the simulator, open loop at fixed rates
//                 (p50/p95/p99), and the most submissions per second at 32 clients vs the simulator's;
//   campaign      N jobs submitted by 64 clients into one HARD budget vs raw pgbench of the equivalent conditional
//                 UPDATE + INSERT statements at 64 clients;
//   reads         orgUnits(first: 200) with budgets and usage, and the balances apps poll, p50 after a warm-up (as a
//                 gateway polled all day runs them) vs the raw SQL that reads the same rows, with the SQL statements
//                 each request costs;
//   chargeback    the statement of a period of 100k and 1M jobs under every allocation policy vs a raw GROUP BY over
//                 the ledger;
//   rss           the gateway's resident memory at ready, under load and idle after load.
//
// The gateway runs from dist/ (what ships) with the flags of `npm start`; the simulator and the load generator each
// run in their own process. Needs PostgreSQL as the tests do (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test:
// a database the user may CREATE DATABASE from) and pgbench (PATH, or PG_BIN_DIR).
//
// Options: --quick (a smaller, faster run), --smoke (the smallest run: checks that every figure is produced, used by
// test/bench.test.ts), --json <file> (default bench-results/<timestamp>.json), --only <phases> (comma-separated: submit,
// campaign, reads, chargeback; a full comparison runs them all), --repeat <n> (the run made n times, each with processes
// and a database of its own; the table and the JSON give each figure's median, the JSON every run as `runs`).
// BENCH_GATEWAY_NODE_OPTIONS: extra Node flags for the measured gateway, after those of `npm start` (whitespace-separated,
// e.g. "--trace-gc" or "--cpu-prof --cpu-prof-dir=/tmp/prof"), to look inside a figure; the figures of such a run are
// not comparable with a plain one.
// BENCH_GATEWAY_ENV: environment variables for the measured gateway only, not the simulator, the load generator or
// pgbench (whitespace-separated NAME=value words, overriding those of `npm start`, e.g.
// "LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 MALLOC_CONF=dirty_decay_ms:100"); same caveat.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import net from 'node:net';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { eq } from 'drizzle-orm';
import buildOnce, { dist, ROOT } from '../support/build.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { spawnGateway, type GatewayProcess } from '../support/processes.js';
import { TIER_5K } from '../support/fixtures.js';
import { generateMasterKey } from '../../src/secrets/secret-box.js';
import { openDatabase } from '../../src/db/client.js';
import { accountsTable } from '../../src/db/schema.js';
import { computeStatement } from '../../src/billing/chargeback.js';
import { periodOf } from '../../src/primitives/period.js';
import type { LoadPlan, LoadResult } from './loadgen.js';
import { startStatementCounter } from './pg-counter.js';
import { medianOfRuns, singleRunArgs } from './repeat.js';

// ---------------------------------------------------------------------------------------------------------------
// Sizes

interface Sizes {
  mode: 'full' | 'quick' | 'smoke';
  warmupMs: number;
  rates: number[];
  openMs: number;
  closedMs: number;
  closedClients: number;
  campaignJobs: number;
  campaignClients: number;
  units: number;
  readRepeats: number;
  chargebackJobs: [number, number];
  chargebackProjects: number;
  chargebackRepeats: number;
}

const SIZES: Record<Sizes['mode'], Sizes> = {
  full: { mode: 'full', warmupMs: 3000, rates: [10, 50, 100], openMs: 10_000, closedMs: 10_000, closedClients: 32, campaignJobs: 10_000, campaignClients: 64, units: 200, readRepeats: 50, chargebackJobs: [100_000, 1_000_000], chargebackProjects: 1000, chargebackRepeats: 3 },
  quick: { mode: 'quick', warmupMs: 2000, rates: [10, 50, 100], openMs: 4000, closedMs: 4000, closedClients: 32, campaignJobs: 2000, campaignClients: 64, units: 200, readRepeats: 20, chargebackJobs: [20_000, 200_000], chargebackProjects: 1000, chargebackRepeats: 3 },
  smoke: { mode: 'smoke', warmupMs: 300, rates: [10, 50, 100], openMs: 300, closedMs: 300, closedClients: 32, campaignJobs: 128, campaignClients: 64, units: 10, readRepeats: 3, chargebackJobs: [1000, 5000], chargebackProjects: 20, chargebackRepeats: 1 },
};

// ---------------------------------------------------------------------------------------------------------------
// Helpers

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;
const ratio = (x: number, base: number) => (base > 0 ? round(x / base, 3) : null);

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

function memoryMb(pid: number): { rssMb: number; hwmMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
  return { rssMb: round(kb('VmRSS') / 1024, 1), hwmMb: round(kb('VmHWM') / 1024, 1) };
}

/** CPU time (user + system) a process has used, in ms (clock ticks of 10 ms, Linux's USER_HZ). */
function cpuMsOf(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0; // gone
  }
}

/**
 * CPU used by the gateway process and by the PostgreSQL backends serving the bench's database, from start() to
 * stop(): the backends are sampled every 200 ms (a backend's time is what it used while seen; one that ends between
 * two samples loses at most that slice, and the gateway's pool keeps its connections).
 */
function cpuMeter(pid: number, databaseUrl: string, databaseName: string) {
  const client = new pg.Client({ connectionString: databaseUrl });
  // Dropped with the database at the end of an interrupted run: nothing to report then.
  client.on('error', () => {});
  const first = new Map<number, number>();
  const last = new Map<number, number>();
  let timer: NodeJS.Timeout | undefined;
  let gatewayStart = 0;
  const sample = async () => {
    const { rows } = await client.query<{ pid: number }>('select pid from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [databaseName]);
    for (const { pid: backend } of rows) {
      const ms = cpuMsOf(backend);
      if (!first.has(backend)) first.set(backend, started ? 0 : ms);
      last.set(backend, Math.max(last.get(backend) ?? 0, ms));
    }
  };
  let started = false;
  let stopped = false;
  return {
    async start() {
      await client.connect();
      await sample();
      started = true;
      gatewayStart = cpuMsOf(pid);
      timer = setInterval(() => void sample().catch(() => {}), 200);
      timer.unref();
    },
    async stop(): Promise<{ gatewayMs: number; postgresMs: number }> {
      if (!started || stopped) return { gatewayMs: 0, postgresMs: 0 };
      stopped = true;
      clearInterval(timer);
      await sample();
      await client.end();
      let postgresMs = 0;
      for (const [backend, ms] of last) postgresMs += ms - (first.get(backend) ?? 0);
      return { gatewayMs: cpuMsOf(pid) - gatewayStart, postgresMs };
    },
  };
}

/** Largest VmRSS of a process while `work` runs, sampled every 100 ms. */
async function peakRss<T>(pid: number, work: () => Promise<T>): Promise<{ value: T; peakMb: number }> {
  let peak = memoryMb(pid).rssMb;
  const timer = setInterval(() => {
    peak = Math.max(peak, memoryMb(pid).rssMb);
  }, 100);
  try {
    const value = await work();
    return { value, peakMb: Math.max(peak, memoryMb(pid).rssMb) };
  } finally {
    clearInterval(timer);
  }
}

const TSX = join(ROOT, 'node_modules/tsx/dist/loader.mjs');

function runLoad(plan: LoadPlan): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', TSX, join(ROOT, 'test/bench/loadgen.ts'), JSON.stringify(plan)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as LoadResult) : reject(new Error(`load generator exited with ${code}`))));
  });
}

async function startSimulatorProcess(apiKeys: string[]): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', TSX, join(ROOT, 'test/bench/simulator.ts'), ...apiKeys], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /SIMULATOR_URL=(\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`simulator exited with ${code}`)));
  });
  return { url, child };
}

async function gql<T = any>(url: string, token: string, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: any; errors?: unknown[] };
  if (body.errors) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors)}`);
  return body.data as T;
}

async function mutate(url: string, token: string, field: string, inputType: string, selection: string, input: Record<string, unknown>): Promise<any> {
  const data = await gql(url, token, `mutation($input: ${inputType}!) { ${field}(input: $input) { __typename ... on Error { code message } ${selection} } }`, { input });
  const payload = data[field];
  if (payload.__typename.endsWith('Error')) throw new Error(`${field}: ${JSON.stringify(payload)}`);
  return payload;
}

/** The UUID inside a global id (`OrgUnit:<uuid>`, base64), for SQL. */
function uuidOf(globalId: string): string {
  return Buffer.from(globalId, 'base64').toString('utf8').split(':')[1]!;
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

async function p50Of(repeats: number, fn: () => Promise<unknown>, warmMs = 0): Promise<number> {
  const warmUntil = performance.now() + warmMs;
  do await fn(); // warm (plans, JIT)
  while (performance.now() < warmUntil);
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) times.push(await time(fn));
  return round(median(times), 3);
}

// ---------------------------------------------------------------------------------------------------------------
// The run

const { values: args } = parseArgs({
  options: { quick: { type: 'boolean' }, smoke: { type: 'boolean' }, json: { type: 'string' }, only: { type: 'string' }, repeat: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
});
const PHASES = ['submit', 'campaign', 'reads', 'chargeback'] as const;
if (args.help) {
  console.log(`usage: npm run bench -- [--quick | --smoke] [--json <file>] [--only ${PHASES.join(',')}] [--repeat <n>]`);
  process.exit(0);
}
const repeat = Number(args.repeat ?? '1');
if (!Number.isInteger(repeat) || repeat < 1 || repeat > 20) {
  console.error(`--repeat takes a whole number of runs from 1 to 20, not '${args.repeat}'`);
  process.exit(2);
}
// --only: some phases (comma-separated), for working on one figure; a full comparison runs them all.
const only = new Set(args.only ? args.only.split(',').map((p) => p.trim()) : PHASES);
for (const phase of only) {
  if (!(PHASES as readonly string[]).includes(phase)) {
    console.error(`unknown phase '${phase}' (phases: ${PHASES.join(', ')})`);
    process.exit(2);
  }
}
const sizes = SIZES[args.smoke ? 'smoke' : args.quick ? 'quick' : 'full'];
if (repeat > 1) {
  // Each run is this script again, without --repeat, in processes of its own; its table goes to stderr as it ends.
  const dir = mkdtempSync(join(tmpdir(), 'bench-repeat-'));
  const runs: Record<string, any>[] = [];
  try {
    for (let i = 1; i <= repeat; i++) {
      log(`run ${i} of ${repeat}`);
      const json = join(dir, `run-${i}.json`);
      execFileSync(process.execPath, [...process.execArgv, process.argv[1]!, ...singleRunArgs(process.argv.slice(2)), '--json', json], { stdio: ['ignore', process.stderr, 'inherit'] });
      runs.push(JSON.parse(readFileSync(json, 'utf8')));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  report({ ...(medianOfRuns(runs) as Record<string, any>), startedAt: runs[0]!.startedAt, repeat, runs });
  process.exit(0);
}
const pgbenchBin = process.env.PG_BIN_DIR ? join(process.env.PG_BIN_DIR, 'pgbench') : 'pgbench';

const SCRIPT = Array.from({ length: 20 }, (_, i) => `word${i}`).join(' ');
const AVATAR_BODY = { type: 'avatar', avatar_id: 'a1', voice_id: 'v1', script: SCRIPT };
const SUBMIT = `mutation($input: SubmitJobInput!) { submitJob(input: $input) { __typename ... on SubmitJobPayload { job { id status } } ... on Error { code message } } }`;
const KEYS = { latency: 'sk_bench_latency_key_0001', campaign: 'sk_bench_campaign_key_0001', reads: 'sk_bench_reads_key_0001', pgbench: 'sk_bench_pgbench_key_0001', chargeback: 'sk_bench_chargeback_key_0001' };

buildOnce();
const database: TestDatabase = await createTestDatabase();
const masterKey = generateMasterKey();
const cleanups: (() => Promise<unknown>)[] = [async () => database.drop()];
const results: Record<string, any> = {
  version: 1,
  mode: sizes.mode,
  startedAt: new Date().toISOString(),
  node: process.version,
  commit: (() => {
    try {
      return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    } catch {
      return null;
    }
  })(),
  cpus: (await import('node:os')).cpus().length,
};

// Interrupted (Ctrl-C, a test's timeout): still stop the processes and drop the database.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void (async () => {
      for (const cleanup of cleanups) await cleanup().catch(() => {});
      process.exit(130);
    })();
  });
}

try {
  log(`mode ${sizes.mode}; database ${database.name}`);
  const sim = await startSimulatorProcess(Object.values(KEYS));
  cleanups.push(async () => {
    sim.child.kill('SIGTERM');
  });
  // A fixed port, so that the gateway can give HeyGen its callback URL: jobs are followed by webhooks, as in
  // production, rather than by polling alone.
  const port = await new Promise<number>((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port: free } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(free));
    });
  });
  const gatewayEnv = {
    PORT: String(port),
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    DATABASE_URL: database.url,
    GATEWAY_MASTER_KEY: masterKey,
    HEYGEN_BASE_URL: sim.url,
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    // The per-token request limit would cap the load generator, not the gateway.
    RATE_LIMIT_PER_MINUTE: '0',
  };
  // BENCH_GATEWAY_ENV: NAME=value words for the measured gateway process only (not the CLI below).
  const gatewayOnlyEnv = Object.fromEntries((process.env.BENCH_GATEWAY_ENV ?? '').split(/\s+/).filter(Boolean).map((word) => {
    const at = word.indexOf('=');
    if (at < 1) throw new Error(`BENCH_GATEWAY_ENV: not NAME=value: ${word}`);
    return [word.slice(0, at), word.slice(at + 1)];
  }));
  // The names only: a value may be a secret (a database URL with its password, a master key).
  if (process.env.BENCH_GATEWAY_ENV) log(`gateway environment added: ${Object.keys(gatewayOnlyEnv).join(' ')}`);
  const gatewayNodeFlags = (process.env.BENCH_GATEWAY_NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean);
  if (gatewayNodeFlags.length > 0) log(`gateway node flags added: ${gatewayNodeFlags.join(' ')}`);
  const gateway: GatewayProcess = await spawnGateway({ ...gatewayEnv, ...gatewayOnlyEnv }, gatewayNodeFlags);
  cleanups.unshift(() => gateway.stop());
  const pid = gateway.child.pid!;
  for (;;) {
    const res = await fetch(`${gateway.url}/readyz`).catch(() => null);
    if (res?.status === 200) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const rssAtReady = memoryMb(pid).rssMb;
  const tokenOut = execFileSync(process.execPath, [dist('cli/token.js'), '--admin', '--name', 'bench'], {
    env: { ...process.env, ...gatewayEnv },
    encoding: 'utf8',
  });
  const admin = /eyJ[\w-]+\.[\w-]+\.[\w-]+/.exec(tokenOut)?.[0];
  if (!admin) throw new Error(`no token in: ${tokenOut}`);

  // --- fixtures: one department (own account) per phase, so that no phase's in-flight jobs count against another's
  const org = (await mutate(gateway.url, admin, 'createOrgUnit', 'CreateOrgUnitInput', '... on CreateOrgUnitPayload { orgUnit { id } }', { kind: 'ORGANIZATION', name: 'Bench', parentId: null })).orgUnit.id as string;
  async function tree(name: string, apiKey: string): Promise<{ accountId: string; deptId: string; teamId: string; projectId: string; token: string }> {
    const accountId = (await mutate(gateway.url, admin!, 'createAccount', 'CreateAccountInput', '... on CreateAccountPayload { account { id } }', {
      name, billingModel: 'USAGE_BASED', apiKey, baseUrl: sim.url, concurrencyLimit: 10_000, timezone: 'UTC', usageBased: TIER_5K,
    })).account.id as string;
    const unit = async (kind: string, unitName: string, parentId: string, account?: string) =>
      (await mutate(gateway.url, admin!, 'createOrgUnit', 'CreateOrgUnitInput', '... on CreateOrgUnitPayload { orgUnit { id } }', { kind, name: unitName, parentId, accountId: account })).orgUnit.id as string;
    const deptId = await unit('DEPARTMENT', name, org, accountId);
    const teamId = await unit('TEAM', `${name} team`, deptId);
    const projectId = await unit('PROJECT', `${name} project`, teamId);
    const token = (await mutate(gateway.url, admin!, 'issueServiceToken', 'IssueServiceTokenInput', '... on IssueServiceTokenPayload { token }', { orgUnitId: projectId, name: `${name} app` })).token as string;
    return { accountId, deptId, teamId, projectId, token };
  }
  const latency = await tree('Latency', KEYS.latency);

  const gatewayPlan = (t: { projectId: string; token: string }, extra: Partial<LoadPlan>): LoadPlan => ({
    url: gateway.url,
    path: '/graphql',
    headers: { authorization: `Bearer ${t.token}` },
    body: JSON.stringify({ query: SUBMIT, variables: { input: { projectId: t.projectId, kind: 'AVATAR_VIDEO', request: AVATAR_BODY } } }),
    expect: '"SubmitJobPayload"',
    mode: 'closed',
    ...extra,
  });
  const directPlan = (extra: Partial<LoadPlan>): LoadPlan => ({
    url: sim.url,
    path: '/v3/videos',
    headers: { 'x-api-key': KEYS.latency, accept: 'application/json' },
    body: JSON.stringify(AVATAR_BODY),
    uuidHeader: 'idempotency-key',
    expect: '"video_id"',
    mode: 'closed',
    ...extra,
  });

  // --- submit latency and throughput
  let rssUnderLoad = 0;
  // The largest RSS seen during each load phase, in order (RSS that a process grew is rarely given back: where it grew).
  const rssByPhase: Record<string, number> = {};
  // CPU per job, submission through settlement: the gateway's and PostgreSQL's CPU time from the first measured
  // submission until every job has settled, over the jobs the measured loads submitted (not the warm-up's).
  const cpu = cpuMeter(pid, database.url, database.name);
  cleanups.unshift(() => cpu.stop());
  let measuredJobs = 0;
  let cpuStarted = false;
  if (only.has('submit')) {
    log('warm-up');
    await runLoad(directPlan({ clients: 8, durationMs: sizes.warmupMs }));
    await runLoad(gatewayPlan(latency, { clients: 8, durationMs: sizes.warmupMs }));
    await drain(gateway, admin);
    await cpu.start();
    cpuStarted = true;

    const open: any[] = [];
    for (const rate of sizes.rates) {
      log(`open loop ${rate}/s`);
      const direct = await runLoad(directPlan({ mode: 'open', rate, durationMs: sizes.openMs }));
      const { value: via, peakMb } = await peakRss(pid, () => runLoad(gatewayPlan(latency, { mode: 'open', rate, durationMs: sizes.openMs })));
      rssUnderLoad = Math.max(rssUnderLoad, peakMb);
      rssByPhase[`open ${rate}/s`] = peakMb;
      measuredJobs += via.ok;
      open.push({
        rate,
        gateway: via,
        direct,
        addedMs: { p50: round(via.p50Ms - direct.p50Ms, 3), p95: round(via.p95Ms - direct.p95Ms, 3), p99: round(via.p99Ms - direct.p99Ms, 3) },
        ratio: { p50: ratio(via.p50Ms, direct.p50Ms), p95: ratio(via.p95Ms, direct.p95Ms), p99: ratio(via.p99Ms, direct.p99Ms) },
      });
  }
  log(`closed loop ${sizes.closedClients} clients`);
  const closedDirect = await runLoad(directPlan({ clients: sizes.closedClients, durationMs: sizes.closedMs }));
  const { value: closedVia, peakMb: closedPeak } = await peakRss(pid, () => runLoad(gatewayPlan(latency, { clients: sizes.closedClients, durationMs: sizes.closedMs })));
  rssUnderLoad = Math.max(rssUnderLoad, closedPeak);
  rssByPhase[`closed ${sizes.closedClients} clients`] = closedPeak;
  measuredJobs += closedVia.ok;
  results.submit = {
    open,
    closed: { clients: sizes.closedClients, gateway: closedVia, direct: closedDirect, throughputRatio: ratio(closedVia.throughput, closedDirect.throughput) },
  };
  }

  // --- campaign into one HARD budget vs pgbench
  if (only.has('campaign')) {
    log(`campaign of ${sizes.campaignJobs} jobs, ${sizes.campaignClients} clients`);
    const campaign = await tree('Campaign', KEYS.campaign);
    // Room for every job (52.8 cs each), so that every admission takes the whole path, including the budget's lock.
    await mutate(gateway.url, admin, 'setBudget', 'SetBudgetInput', '... on SetBudgetPayload { budget { id } }', {
      orgUnitId: campaign.projectId, accountId: campaign.accountId, window: 'MONTHLY', enforcement: 'HARD', limitCreditSeconds: String(sizes.campaignJobs * 60),
    });
    if (!cpuStarted) {
      await cpu.start();
      cpuStarted = true;
    }
    const { value: campaignRun, peakMb: campaignPeak } = await peakRss(pid, () =>
      runLoad(gatewayPlan(campaign, { clients: sizes.campaignClients, total: sizes.campaignJobs })),
    );
    rssUnderLoad = Math.max(rssUnderLoad, campaignPeak);
    rssByPhase[`campaign ${sizes.campaignClients} clients`] = campaignPeak;
    measuredJobs += campaignRun.ok;
    const pgbench = await runPgbench(await tree('Pgbench', KEYS.pgbench));
    results.campaign = {
      jobs: sizes.campaignJobs,
      clients: sizes.campaignClients,
      gateway: campaignRun,
      admissionsPerSecond: campaignRun.throughput,
      pgbenchTps: pgbench.tps,
      pgbenchStatement: pgbench.statement,
      ratio: ratio(campaignRun.throughput, pgbench.tps),
    };
  }

  // --- the gateway settles what was submitted (webhooks, then polling): reads and idle memory are measured after
  const drainMs = await drain(gateway, admin);
  if (cpuStarted) {
    const used = await cpu.stop();
    results.cpuPerJob = {
      jobs: measuredJobs,
      gatewayMs: measuredJobs > 0 ? round(used.gatewayMs / measuredJobs, 3) : null,
      postgresMs: measuredJobs > 0 ? round(used.postgresMs / measuredJobs, 3) : null,
    };
  }

  // --- reads
  if (only.has('reads')) results.reads = await measureReads(gateway, admin, { ...gatewayEnv, PORT: '0' });

  // --- idle memory after the load
  const idle = memoryMb(pid);
  results.rss = { readyMb: rssAtReady, underLoadMb: rssUnderLoad, idleAfterLoadMb: idle.rssMb, hwmMb: idle.hwmMb, peakByPhaseMb: rssByPhase };
  results.drain = drainMs;

  // --- chargeback
  if (only.has('chargeback')) results.chargeback = await measureChargeback();

  // ---------------------------------------------------------------------------------------------------------------

  /** Waits until no job is in flight on any account (at most 10 minutes); how long it took, or null if it did not. */
  async function drain(gw: GatewayProcess, adminToken: string): Promise<{ ms: number | null; inFlightLeft: number }> {
    log('waiting for the submitted jobs to settle');
    const started = performance.now();
    for (;;) {
      const data = await gql<{ accounts: { name: string; inFlightJobs: number }[] }>(gw.url, adminToken, '{ accounts { name inFlightJobs } }');
      // pgbench's jobs are rows written by the statement it measures, never sent anywhere: they stay RESERVED.
      const left = data.accounts.filter((a) => a.name !== 'Pgbench').reduce((n, a) => n + a.inFlightJobs, 0);
      if (left === 0) return { ms: Math.round(performance.now() - started), inFlightLeft: 0 };
      if (performance.now() - started > 600_000) return { ms: null, inFlightLeft: left };
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  async function runPgbench(t: { accountId: string; deptId: string; teamId: string; projectId: string }): Promise<{ tps: number; statement: string }> {
    log(`pgbench ${sizes.campaignJobs} transactions, ${sizes.campaignClients} clients`);
    const period = periodOf(new Date(), 'UTC');
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const [{ path }] = (await client.query<{ path: string[] }>('select path from org_units where id = $1', [uuidOf(t.projectId)])).rows as [{ path: string[] }];
      // The counters admission keeps: one rollup row per unit on the path.
      await client.query(
        `insert into usage_rollups (org_unit_id, account_id, period) select unnest($1::uuid[]), $2, $3 on conflict do nothing`,
        [path, uuidOf(t.accountId), period],
      );
    } finally {
      await client.end();
    }
    // What an admission must do, as one statement: the HARD budget's conditional check-and-reserve on the project's
    // counter, the job, its HOLD in the ledger, and the counters of every unit above.
    const statement = `\\set amount 52800000
WITH bump AS (
  UPDATE usage_rollups SET reserved_micro_cs = reserved_micro_cs + :amount
   WHERE org_unit_id = :project::uuid AND account_id = :account::uuid AND period = :period
     AND reserved_micro_cs + settled_micro_cs + :amount <= :limit
  RETURNING org_unit_id
), job AS (
  INSERT INTO jobs (project_id, account_id, kind, status, request, request_hash, idempotency_scope, created_by, product,
                    rate_micro_cs_per_second, estimated_seconds, estimated_micro_cs, reserved_micro_cs, hold_period, hold_expires_at)
  SELECT :project::uuid, :account::uuid, 'AVATAR_VIDEO', 'RESERVED', '{"type":"avatar"}'::jsonb, md5(random()::text), 'pgbench', 'pgbench',
         'avatar_iv', 6000000, 8, :amount, :amount, :period, now() + interval '48 hours' FROM bump
  RETURNING id
), hold AS (
  INSERT INTO ledger_entries (job_id, entry_type, account_id, org_unit_id, period, amount_micro_cs)
  SELECT id, 'HOLD', :account::uuid, :project::uuid, :period, :amount FROM job RETURNING 1
)
UPDATE usage_rollups SET reserved_micro_cs = reserved_micro_cs + :amount
 WHERE org_unit_id = ANY (:above::uuid[]) AND account_id = :account::uuid AND period = :period AND EXISTS (SELECT 1 FROM hold);
`;
    const file = join(ROOT, 'bench-results', `pgbench-${process.pid}.sql`);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, statement);
    const perClient = Math.max(1, Math.round(sizes.campaignJobs / sizes.campaignClients));
    const db = new URL(database.url);
    const out = execFileSync(
      pgbenchBin,
      [
        '-n', '-M', 'prepared', '-c', String(sizes.campaignClients), '-j', '2', '-t', String(perClient), '-f', file,
        '-D', `project=${uuidOf(t.projectId)}`, '-D', `account=${uuidOf(t.accountId)}`, '-D', `period=${periodOf(new Date(), 'UTC')}`,
        '-D', `limit=${String(BigInt(sizes.campaignJobs) * 60_000_000n)}`, '-D', `above={${[t.teamId, t.deptId, org].map(uuidOf).join(',')}}`,
        database.url,
      ],
      { encoding: 'utf8', env: { ...process.env, PGPASSWORD: decodeURIComponent(db.password) || (process.env.PGPASSWORD ?? '') } },
    );
    const tps = Number(/tps = ([\d.]+)/.exec(out)?.[1]);
    if (!Number.isFinite(tps)) throw new Error(`pgbench printed no tps:\n${out}`);
    const failed = /number of failed transactions: (\d+)/.exec(out)?.[1];
    if (failed && failed !== '0') throw new Error(`pgbench had failed transactions:\n${out}`);
    return { tps: round(tps, 1), statement: statement.trim() };
  }

  async function measureReads(gw: GatewayProcess, adminToken: string, env: Record<string, string>): Promise<Record<string, unknown>> {
    log(`reads: ${sizes.units} units with budgets`);
    const reads = await tree('Reads', KEYS.reads);
    // `units` projects, each with a HARD budget on the account and a SOFT one on all accounts, and some usage.
    const projects: string[] = [];
    for (let i = 0; i < sizes.units; i += 8) {
      await Promise.all(
        Array.from({ length: Math.min(8, sizes.units - i) }, async (_, k) => {
          const id = (await mutate(gw.url, adminToken, 'createOrgUnit', 'CreateOrgUnitInput', '... on CreateOrgUnitPayload { orgUnit { id } }', {
            kind: 'PROJECT', name: `r${i + k}`, parentId: reads.teamId,
          })).orgUnit.id as string;
          await mutate(gw.url, adminToken, 'setBudget', 'SetBudgetInput', '... on SetBudgetPayload { budget { id } }', { orgUnitId: id, accountId: reads.accountId, window: 'MONTHLY', limitCreditSeconds: '1000' });
          await mutate(gw.url, adminToken, 'setBudget', 'SetBudgetInput', '... on SetBudgetPayload { budget { id } }', { orgUnitId: id, window: 'LIFETIME', enforcement: 'SOFT', limitCreditSeconds: '5000' });
          projects.push(id);
        }),
      );
    }
    // The project apps poll the balance of has budgets too: one on its account, one over all accounts.
    await mutate(gw.url, adminToken, 'setBudget', 'SetBudgetInput', '... on SetBudgetPayload { budget { id } }', { orgUnitId: reads.projectId, accountId: reads.accountId, window: 'MONTHLY', limitCreditSeconds: '100000' });
    await mutate(gw.url, adminToken, 'setBudget', 'SetBudgetInput', '... on SetBudgetPayload { budget { id } }', { orgUnitId: reads.projectId, window: 'LIFETIME', enforcement: 'SOFT', limitCreditSeconds: '500000' });
    await runLoad(gatewayPlan(reads, { clients: 4, total: 20 }));
    const queries = {
      orgUnits: {
        token: adminToken,
        query: `query($first: Int) { orgUnits(first: $first, kind: PROJECT) { edges { node { id name parent { name } usage { reservedCreditSeconds settledCreditSeconds }
          budgets { account { name } limitCreditSeconds reservedCreditSeconds settledCreditSeconds availableCreditSeconds } } } } }`,
        variables: { first: sizes.units },
      },
      accountPeriod: {
        token: adminToken,
        query: `query { accounts { id period { period usedCreditSeconds reservedCreditSeconds remainingIncludedCreditSeconds overageCreditSeconds projectedInvoiceUsd } } }`,
        variables: {},
      },
      budgetBalance: {
        token: reads.token,
        query: `query($id: ID!) { orgUnit(id: $id) { usage { reservedCreditSeconds settledCreditSeconds } budgets { limitCreditSeconds reservedCreditSeconds settledCreditSeconds availableCreditSeconds } } }`,
        variables: { id: reads.projectId },
      },
    };
    const period = periodOf(new Date(), 'UTC');
    const raw = new pg.Client({ connectionString: database.url });
    await raw.connect();
    const [{ id: accountUuid }] = (await raw.query<{ id: string }>('select id from accounts where name = $1', ['Reads'])).rows as [{ id: string }];
    const [{ id: projectUuid }] = (await raw.query<{ id: string }>(`select id from org_units where name = 'Reads project'`)).rows as [{ id: string }];
    // The rows each answer is made of, read by one statement each: the floor any server could reach.
    const rawSql = {
      orgUnits: {
        text: `select u.id, u.name, p.name, r.reserved_micro_cs, r.settled_micro_cs, b.limit_micro_cs, br.reserved_micro_cs, br.settled_micro_cs
                 from (select * from org_units where kind = 'PROJECT' order by created_at, id limit $1) u
                 join org_units p on p.id = u.parent_id
                 left join usage_rollups r on r.org_unit_id = u.id and r.period = $2
                 left join budgets b on b.org_unit_id = u.id
                 left join usage_rollups br on br.org_unit_id = u.id and br.period = $2 and br.account_id = b.account_id`,
        values: [sizes.units, period],
      },
      accountPeriod: {
        text: `select a.id, r.reserved_micro_cs, r.settled_micro_cs, t.included_micro_cs from accounts a
                 join org_units o on o.parent_id is null
                 left join usage_rollups r on r.org_unit_id = o.id and r.account_id = a.id and r.period = $1
                 left join lateral (select included_micro_cs from account_terms where account_id = a.id and effective_from <= $1 order by effective_from desc limit 1) t on true`,
        values: [period],
      },
      budgetBalance: {
        text: `select b.limit_micro_cs, r.reserved_micro_cs, r.settled_micro_cs from budgets b
                 left join usage_rollups r on r.org_unit_id = b.org_unit_id and r.account_id = $2 and r.period = $3
                 where b.org_unit_id = $1`,
        values: [projectUuid, accountUuid, period],
      },
    };
    // A second gateway, workers off, whose connections go through a relay that counts statements.
    const dbUrl = new URL(database.url);
    const counter = await startStatementCounter(dbUrl.hostname, Number(dbUrl.port || 5432));
    const countedUrl = new URL(database.url);
    countedUrl.hostname = '127.0.0.1';
    countedUrl.port = String(counter.port);
    const counted = await spawnGateway({ ...env, DATABASE_URL: countedUrl.toString(), WORKERS_ENABLED: 'false' });
    const out: Record<string, unknown> = { units: sizes.units };
    try {
      for (const [name, q] of Object.entries(queries)) {
        const run = (url: string) => gql(url, q.token, q.query, q.variables);
        await run(counted.url); // warm: the signing key, plans, caches
        const before = counter.count();
        await run(counted.url);
        const statements = counter.count() - before;
        const p50Ms = await p50Of(sizes.readRepeats, () => run(gw.url), sizes.warmupMs);
        const r = rawSql[name as keyof typeof rawSql];
        const rawP50Ms = await p50Of(sizes.readRepeats, () => raw.query(r.text, r.values), sizes.warmupMs);
        out[name] = { p50Ms, statements, rawSqlP50Ms: rawP50Ms, ratio: ratio(p50Ms, rawP50Ms) };
      }
      // What one submission costs in statements (authentication, admission, forwarding's bookkeeping), for reference.
      const submitOnce = () => gql(counted.url, reads.token, SUBMIT, { input: { projectId: reads.projectId, kind: 'AVATAR_VIDEO', request: AVATAR_BODY } });
      await submitOnce();
      const before = counter.count();
      await submitOnce();
      out.submitStatements = counter.count() - before;
    } finally {
      await counted.stop();
      await counter.close();
      await raw.end();
    }
    return out;
  }

  /**
   * The rollups the ledger's triggers keep, filled set-based from the seeded ledger of one account and period (the
   * seeding writes it with the triggers off): usage_rollups, usage_daily and the tag and person rollups (per period
   * and per day) on every unit of each entry's path, and MARGINAL's pool rollups (gateway_pool_split, as when terms change).
   */
  async function fillChargebackRollups(raw: pg.Client, accountId: string, period: string): Promise<void> {
    const reserved = `sum(case l.entry_type when 'HOLD' then l.amount_micro_cs when 'RELEASE' then -l.amount_micro_cs else 0 end)`;
    const settled = `sum(case when l.entry_type in ('DEBIT', 'ADJUSTMENT') then l.amount_micro_cs else 0 end)`;
    await raw.query(
      `create temp table bench_cb_usage as
       select l.org_unit_id, l.day, coalesce(j.product, 'ADJUSTMENT') as product, j.tags, coalesce('user:' || j.end_user, j.created_by) as person,
              ${reserved} as reserved, ${settled} as settled
         from ledger_entries l left join jobs j on j.id = l.job_id
        where l.account_id = $1 and l.period = $2 group by 1, 2, 3, 4, 5`,
      [accountId, period],
    );
    const onPath = `bench_cb_usage b join org_units o on o.id = b.org_unit_id cross join unnest(o.path) u(unit)`;
    await raw.query(
      `insert into usage_rollups (org_unit_id, account_id, period, reserved_micro_cs, settled_micro_cs)
       select u.unit, $1, $2, sum(b.reserved), sum(b.settled) from ${onPath} group by u.unit
       on conflict (org_unit_id, account_id, period) do update set reserved_micro_cs = excluded.reserved_micro_cs, settled_micro_cs = excluded.settled_micro_cs`,
      [accountId, period],
    );
    await raw.query(
      `insert into usage_daily (org_unit_id, account_id, product, day, reserved_micro_cs, settled_micro_cs)
       select u.unit, $1, b.product, b.day, sum(b.reserved), sum(b.settled) from ${onPath} group by u.unit, b.product, b.day
       on conflict (org_unit_id, account_id, day, product) do update set reserved_micro_cs = excluded.reserved_micro_cs, settled_micro_cs = excluded.settled_micro_cs`,
      [accountId],
    );
    await raw.query(
      `insert into usage_person_rollups (org_unit_id, account_id, period, person, reserved_micro_cs, settled_micro_cs)
       select u.unit, $1, $2, b.person, sum(b.reserved), sum(b.settled) from ${onPath} where b.person is not null group by u.unit, b.person
       on conflict (org_unit_id, account_id, period, person) do update set reserved_micro_cs = excluded.reserved_micro_cs, settled_micro_cs = excluded.settled_micro_cs`,
      [accountId, period],
    );
    await raw.query(
      `insert into usage_tag_rollups (org_unit_id, account_id, period, tags, reserved_micro_cs, settled_micro_cs)
       select u.unit, $1, $2, b.tags, sum(b.reserved), sum(b.settled) from ${onPath} where b.tags <> '{}'::jsonb group by u.unit, b.tags
       on conflict (org_unit_id, account_id, period, tags) do update set reserved_micro_cs = excluded.reserved_micro_cs, settled_micro_cs = excluded.settled_micro_cs`,
      [accountId, period],
    );
    await raw.query(
      `insert into usage_person_daily (org_unit_id, account_id, day, person, reserved_micro_cs, settled_micro_cs)
       select u.unit, $1, b.day, b.person, sum(b.reserved), sum(b.settled) from ${onPath} where b.person is not null group by u.unit, b.day, b.person
       on conflict (org_unit_id, account_id, day, person) do update set reserved_micro_cs = excluded.reserved_micro_cs, settled_micro_cs = excluded.settled_micro_cs`,
      [accountId],
    );
    await raw.query(
      `insert into usage_tag_daily (org_unit_id, account_id, day, tags, reserved_micro_cs, settled_micro_cs)
       select u.unit, $1, b.day, b.tags, sum(b.reserved), sum(b.settled) from ${onPath} where b.tags <> '{}'::jsonb group by u.unit, b.day, b.tags
       on conflict (org_unit_id, account_id, day, tags) do update set reserved_micro_cs = excluded.reserved_micro_cs, settled_micro_cs = excluded.settled_micro_cs`,
      [accountId],
    );
    await raw.query('drop table bench_cb_usage');
    await raw.query(`select gateway_pool_split($1, $2, gateway_pool_included($1, $2), 9223372036854775807)`, [accountId, period]);
  }

  /** Fails the bench unless every rollup of the account's period equals a GROUP BY of its ledger. */
  async function checkChargebackRollups(raw: pg.Client, accountId: string, period: string): Promise<void> {
    const reserved = `sum(case l.entry_type when 'HOLD' then l.amount_micro_cs when 'RELEASE' then -l.amount_micro_cs else 0 end)`;
    const settled = `sum(case when l.entry_type in ('DEBIT', 'ADJUSTMENT') then l.amount_micro_cs else 0 end)`;
    const ledger = `ledger_entries l join org_units o on o.id = l.org_unit_id cross join unnest(o.path) u(unit) left join jobs j on j.id = l.job_id
                    where l.account_id = $1 and l.period = $2`;
    const compare = (table: string, keys: string[], expected: string, scope: string) =>
      `select '${table}' as rollup, count(*)::int as n from (${expected}) e full outer join (select * from ${table} where ${scope}) r
         on ${keys.map((k) => `r.${k} = e.${k}`).join(' and ')}
       where coalesce(e.reserved_micro_cs, 0) <> coalesce(r.reserved_micro_cs, 0) or coalesce(e.settled_micro_cs, 0) <> coalesce(r.settled_micro_cs, 0)`;
    const checks = [
      compare('usage_rollups', ['org_unit_id'], `select u.unit as org_unit_id, ${reserved} as reserved_micro_cs, ${settled} as settled_micro_cs from ${ledger} group by 1`, `account_id = $1 and period = $2`),
      compare('usage_daily', ['org_unit_id', 'product', 'day'],
        `select u.unit as org_unit_id, coalesce(j.product, 'ADJUSTMENT') as product, l.day, ${reserved} as reserved_micro_cs, ${settled} as settled_micro_cs from ${ledger} group by 1, 2, 3`,
        `account_id = $1 and to_char(day, 'YYYY-MM') = $2`),
      compare('usage_person_rollups', ['org_unit_id', 'person'],
        `select u.unit as org_unit_id, coalesce('user:' || j.end_user, j.created_by) as person, ${reserved} as reserved_micro_cs, ${settled} as settled_micro_cs from ${ledger} and l.job_id is not null group by 1, 2`,
        `account_id = $1 and period = $2`),
      compare('usage_tag_rollups', ['org_unit_id', 'tags'],
        `select u.unit as org_unit_id, j.tags, ${reserved} as reserved_micro_cs, ${settled} as settled_micro_cs from ${ledger} and j.tags <> '{}'::jsonb group by 1, 2`,
        `account_id = $1 and period = $2`),
      compare('usage_person_daily', ['org_unit_id', 'day', 'person'],
        `select u.unit as org_unit_id, l.day, coalesce('user:' || j.end_user, j.created_by) as person, ${reserved} as reserved_micro_cs, ${settled} as settled_micro_cs from ${ledger} and l.job_id is not null group by 1, 2, 3`,
        `account_id = $1 and to_char(day, 'YYYY-MM') = $2`),
      compare('usage_tag_daily', ['org_unit_id', 'day', 'tags'],
        `select u.unit as org_unit_id, l.day, j.tags, ${reserved} as reserved_micro_cs, ${settled} as settled_micro_cs from ${ledger} and j.tags <> '{}'::jsonb group by 1, 2, 3`,
        `account_id = $1 and to_char(day, 'YYYY-MM') = $2`),
      // MARGINAL's split: each unit's own usage, and its in-pool part in settlement order (reserved: in-pool here).
      compare('usage_pool_rollups', ['org_unit_id'],
        `select e.org_unit_id, sum(least(e.a, greatest(0, p.included_micro_cs - (e.cum - e.a)))) as reserved_micro_cs, sum(e.a) as settled_micro_cs
           from (select l.org_unit_id, l.amount_micro_cs as a,
                        sum(l.amount_micro_cs) over (order by date_trunc('milliseconds', l.created_at), l.id rows unbounded preceding) as cum
                   from ledger_entries l where l.account_id = $1 and l.period = $2 and l.entry_type in ('DEBIT', 'ADJUSTMENT')) e
           join usage_pool_periods p on p.account_id = $1 and p.period = $2 and not p.corrected
          group by 1`,
        `account_id = $1 and period = $2`).replace('select * from usage_pool_rollups', 'select org_unit_id, in_pool_micro_cs as reserved_micro_cs, settled_micro_cs from usage_pool_rollups'),
    ];
    for (const check of checks) {
      const [row] = (await raw.query<{ rollup: string; n: number }>(check, [accountId, period])).rows;
      if (row!.n !== 0) throw new Error(`chargeback seeding: ${row!.n} rows of ${row!.rollup} differ from the ledger`);
    }
  }

  async function measureChargeback(): Promise<Record<string, unknown>> {
    const t = await tree('Chargeback', KEYS.chargeback);
    const accountId = uuidOf(t.accountId);
    const deptId = uuidOf(t.deptId);
    const period = periodOf(new Date(), 'UTC');
    const raw = new pg.Client({ connectionString: database.url });
    await raw.connect();
    const app = await openDatabase({ databaseUrl: database.url, dataDir: '', poolSize: 4 });
    const out: Record<string, unknown> = { projects: sizes.chargebackProjects, runs: [] as unknown[] };
    try {
      const [dept] = (await raw.query<{ path: string[]; depth: number }>('select path, depth from org_units where id = $1', [deptId])).rows;
      const teams = Math.max(1, Math.round(sizes.chargebackProjects / 100));
      // Teams and projects under the department (straight into org_units, as the API would write them).
      await raw.query(
        `with t as (select gen_random_uuid() as id, g from generate_series(1, $2::int) g)
         insert into org_units (id, parent_id, kind, name, path, depth) select id, $1, 'TEAM', 'cb team ' || g, $3::uuid[] || id, $4 + 1 from t`,
        [deptId, teams, dept!.path, dept!.depth],
      );
      await raw.query(`create table bench_cb_projects (n int primary key, id uuid not null)`);
      await raw.query(
        `with teams as (select id, path, row_number() over (order by id) - 1 as k from org_units where parent_id = $1 and kind = 'TEAM' and name like 'cb team %'),
              p as (select gen_random_uuid() as id, g from generate_series(0, $2::int - 1) g),
              ins as (insert into org_units (id, parent_id, kind, name, path, depth)
                      select p.id, teams.id, 'PROJECT', 'cb project ' || p.g, teams.path || p.id, $3 + 2 from p join teams on teams.k = p.g % $4 returning id, name)
         insert into bench_cb_projects select substr(name, 12)::int, id from ins`,
        [deptId, sizes.chargebackProjects, dept!.depth, teams],
      );
      const [account] = await app.db.select().from(accountsTable).where(eq(accountsTable.id, accountId));
      let seeded = 0;
      for (const jobs of sizes.chargebackJobs) {
        log(`chargeback: seeding ${jobs} jobs`);
        // Set-based, with the ledger's triggers off in this session (session_replication_role = replica): the rollups
        // they would have moved entry by entry are filled below from the seeded ledger, then checked against it.
        await raw.query('set session_replication_role = replica');
        // Settled jobs with their HOLD, RELEASE and DEBIT (what settlement writes), in settlement order, on their day.
        for (let from = seeded; from < jobs; from += 100_000) {
          const to = Math.min(jobs, from + 100_000) - 1;
          await raw.query(
            `with j as (
               insert into jobs (project_id, account_id, kind, status, request, request_hash, idempotency_scope, created_by, product,
                                 rate_micro_cs_per_second, estimated_seconds, estimated_micro_cs, reserved_micro_cs, hold_period,
                                 actual_seconds, actual_micro_cs, settled_period, hold_expires_at, created_at, submitted_at, settled_at, hold_day)
               select p.id, $1, 'AVATAR_VIDEO', 'SUCCEEDED', '{"type":"avatar"}'::jsonb, md5(g::text), 'bench', 'bench', 'avatar_iv',
                      6000000, 60, 396000000, 0, $2, 5 + g % 50, (5 + g % 50) * 6000000::bigint, $2,
                      now() + interval '48 hours', now(), now(), now(), ($2 || '-' || lpad((1 + g % 28)::text, 2, '0'))::date
                 from generate_series($3::int, $4::int) g join bench_cb_projects p on p.n = g % $5
               returning id, project_id, estimated_micro_cs, actual_micro_cs, hold_day)
             insert into ledger_entries (job_id, entry_type, account_id, org_unit_id, period, day, amount_micro_cs)
             select j.id, e.t::ledger_entry_type, $1, j.project_id, $2, j.hold_day, case e.t when 'DEBIT' then j.actual_micro_cs else j.estimated_micro_cs end
               from j cross join (values ('HOLD', 1), ('RELEASE', 2), ('DEBIT', 3)) e(t, o) order by j.id, e.o`,
            [accountId, period, from, to, sizes.chargebackProjects],
          );
        }
        seeded = jobs;
        await raw.query('set session_replication_role = origin');
        await fillChargebackRollups(raw, accountId, period);
        await raw.query('vacuum analyze jobs, ledger_entries, usage_rollups, usage_daily, usage_person_rollups, usage_tag_rollups, usage_person_daily, usage_tag_daily, usage_pool_rollups');
        await checkChargebackRollups(raw, accountId, period);
        const groupBy = () =>
          raw.query(
            `select org_unit_id, sum(amount_micro_cs) from ledger_entries
              where account_id = $1 and period = $2 and entry_type in ('DEBIT', 'ADJUSTMENT') group by org_unit_id`,
            [accountId, period],
          );
        const groupByMs = await p50Of(sizes.chargebackRepeats, groupBy);
        const policies: Record<string, { ms: number; ratio: number | null }> = {};
        for (const policy of ['PROPORTIONAL', 'MARGINAL', 'COMMITTED_SHARES'] as const) {
          await raw.query('update account_terms set allocation_policy = $2 where account_id = $1', [accountId, policy]);
          if (policy === 'COMMITTED_SHARES') {
            await raw.query(
              `insert into committed_shares (account_id, effective_from, org_unit_id, share) values ($1, $2, $3, 1) on conflict do nothing`,
              [accountId, period, deptId],
            );
          }
          const ms = await p50Of(sizes.chargebackRepeats, async () => {
            const statement = await computeStatement(app.db, account!, period);
            if (statement.policy !== policy) throw new Error(`statement computed under ${statement.policy}, not ${policy}`);
          });
          policies[policy] = { ms, ratio: ratio(ms, groupByMs) };
        }
        (out.runs as unknown[]).push({ jobs, groupByMs, policies });
      }
      const runs = out.runs as { jobs: number; policies: Record<string, { ms: number }> }[];
      const [small, large] = runs;
      // How much each policy grows from the smaller period to the larger (1.0 = flat).
      out.growth = Object.fromEntries(Object.keys(small!.policies).map((p) => [p, ratio(large!.policies[p]!.ms, small!.policies[p]!.ms)]));
      await raw.query('drop table bench_cb_projects');
    } finally {
      await app.close();
      await raw.end();
    }
    return out;
  }
} finally {
  for (const cleanup of cleanups) await cleanup().catch((error: unknown) => log(`cleanup: ${String(error)}`));
}

results.finishedAt = new Date().toISOString();
report(results);
if (existsSync(join(ROOT, 'bench-results', `pgbench-${process.pid}.sql`))) {
  (await import('node:fs')).rmSync(join(ROOT, 'bench-results', `pgbench-${process.pid}.sql`));
}

// ---------------------------------------------------------------------------------------------------------------
// Report

/** Writes the results' JSON and prints their table (of one run, or of the medians of a repeated one). */
function report(results: Record<string, any>): void {
  const file = args.json ?? join(ROOT, 'bench-results', `${results.startedAt.replace(/[:.]/g, '-')}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);

  const rows: [string, string, string, string][] = [];
  for (const o of results.submit?.open ?? []) {
    rows.push([
      `submit latency, open loop ${o.rate}/s`,
      `p50 ${o.gateway.p50Ms} / p95 ${o.gateway.p95Ms} / p99 ${o.gateway.p99Ms} ms (+${o.addedMs.p50} / +${o.addedMs.p95} / +${o.addedMs.p99})${o.gateway.failed ? `, ${o.gateway.failed} of ${o.gateway.sent} failed` : ''}`,
      `direct ${o.direct.p50Ms} / ${o.direct.p95Ms} / ${o.direct.p99Ms} ms`,
      `${o.ratio.p50} / ${o.ratio.p95} / ${o.ratio.p99}`,
    ]);
  }
  const c = results.submit?.closed;
  if (c) rows.push([`submissions/s, ${c.clients} clients`, `${c.gateway.throughput}/s${c.gateway.failed ? ` (${c.gateway.failed} failed)` : ''}`, `direct ${c.direct.throughput}/s`, String(c.throughputRatio)]);
  if (results.campaign) rows.push([
    `campaign ${results.campaign.jobs} jobs, ${results.campaign.clients} clients, one HARD budget`,
    `${results.campaign.admissionsPerSecond} admissions/s (${results.campaign.gateway.failed} failed)`,
    `pgbench ${results.campaign.pgbenchTps} tps`,
    String(results.campaign.ratio),
  ]);
  for (const name of results.reads ? ['orgUnits', 'accountPeriod', 'budgetBalance'] : []) {
    const r = results.reads[name];
    rows.push([`${name === 'orgUnits' ? `orgUnits(first: ${results.reads.units})` : name} p50`, `${r.p50Ms} ms, ${r.statements} statements`, `raw SQL ${r.rawSqlP50Ms} ms`, String(r.ratio)]);
  }
  if (results.reads) rows.push(['submitJob statements (one request)', String(results.reads.submitStatements), '', '']);
  for (const run of results.chargeback?.runs ?? []) {
    for (const [policy, r] of Object.entries(run.policies as Record<string, { ms: number; ratio: number }>)) {
      rows.push([`chargeback ${run.jobs} jobs, ${policy}`, `${r.ms} ms`, `GROUP BY ${run.groupByMs} ms`, String(r.ratio)]);
    }
  }
  for (const [policy, g] of Object.entries(results.chargeback?.growth ?? {})) rows.push([`chargeback growth ${policy}`, '', '', `${g}`]);
  if (results.cpuPerJob) {
    const u = results.cpuPerJob;
    rows.push([`CPU per job, submission to settlement (${u.jobs} jobs)`, `gateway ${u.gatewayMs} ms, PostgreSQL ${u.postgresMs} ms`, '', '']);
  }
  // Of repeated runs, the worst: a median would print "0 still in flight" beside a run whose jobs never settled.
  const left = Math.max(...(results.runs ?? [results]).map((r: Record<string, any>) => r.drain.inFlightLeft as number));
  rows.push(['jobs settled after the load', results.drain.ms === null ? `${left} still in flight after 10 min${results.runs ? ' (the worst run)' : ''}` : `in ${results.drain.ms} ms`, '', '']);
  const rss = results.rss;
  rows.push(['gateway RSS ready / under load / idle after', `${rss.readyMb} / ${rss.underLoadMb} / ${rss.idleAfterLoadMb} MB`, `VmHWM ${rss.hwmMb} MB`, '']);
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i]!.length), ['figure', 'gateway', 'baseline', 'ratio'][i]!.length));
  const line = (r: string[]) => `| ${r.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(line(['figure', 'gateway', 'baseline', 'ratio']));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const r of rows) console.log(line(r));
  const runs = results.repeat ? `, medians of ${results.repeat} runs (each run in the JSON's runs)` : '';
  console.log(`\n${sizes.mode} run${runs}, node ${process.version}, ${results.cpus} CPUs; JSON: ${file}`);
}
