// The crash and fault suite: three real gateway processes on ONE private PostgreSQL cluster under a mixed
// submit load, while the test kill -9s gateways (restarting one), restarts PostgreSQL twice (a clean `fast`
// stop and an `immediate` one, i.e. a crash and recovery), takes the HeyGen simulator down and back, and has
// it answer 5xx, 429, timeouts and malformed bodies. After the drain the money invariants must hold, and
// every gateway the test did not kill must still be alive and serving.
//
// Run it alone: npx vitest run test/chaos
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { startHarness, waitFor, type Harness } from '../support/harness.js';
import { spawnGateway, type GatewayProcess } from '../support/processes.js';
import { createTree, issueServiceToken, setBudget, SUBMIT, avatarRequest, type Tree } from '../support/fixtures.js';
import { expectCountersEqualLedger } from '../support/invariants.js';
import { startPrivateCluster, type PrivateCluster } from '../support/postgres-cluster.js';
import { queryRows, toBigInt } from '../../src/db/client.js';

const KEY = 'sk_test_primary_key_0001';
const SEED = Number(process.env.CHAOS_SEED ?? Date.now() % 1_000_000);

/** mulberry32: the test's choices are reproducible from CHAOS_SEED (printed on failure). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = prng(SEED);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

let cluster: PrivateCluster;
let h: Harness;
let tree: Tree;
let env: Record<string, string>;
/** A SERVICE token: unlike an ADMIN token, checking it reads the database (revocation). */
let serviceToken: string;
/** Gateways alive now; the killed ones move to `killed`. */
const alive: GatewayProcess[] = [];
const killed: GatewayProcess[] = [];
/** Gateways that died without the test killing them: the defect this suite exists for. Checked by every wait. */
const crashed: string[] = [];

async function spawnWatched(): Promise<GatewayProcess> {
  const g = await spawnGateway(env);
  g.child.once('exit', (code, signal) => {
    if (!killed.includes(g)) crashed.push(`gateway ${g.url} exited (code ${code}, signal ${signal}):\n${g.output.join('').slice(-3000)}`);
  });
  return g;
}

/** waitFor, but failing at once when a gateway crashed (instead of waiting out the deadline). */
async function until(fn: () => Promise<boolean>, timeoutMs: number, stepMs = 50): Promise<void> {
  await waitFor(async () => {
    if (crashed.length > 0) throw new Error(crashed.join('\n'));
    return fn();
  }, timeoutMs, stepMs);
}

beforeAll(async () => {
  cluster = await startPrivateCluster();
  const databaseUrl = await cluster.createDatabase('chaos');
  // The in-process gateway of the harness creates the fixtures and observes; the children do the work.
  h = await startHarness({
    databaseUrl,
    workers: false,
    sim: {
      autoComplete: true,
      renderMs: 300,
      defaultConcurrencyLimit: 1000,
      translationSourceSeconds: 20,
      agentDurationSeconds: 20,
      retryAfterSeconds: 1,
      timeoutHoldMs: 1_500,
    },
    simAccounts: [{ apiKey: KEY, concurrencyLimit: 1000 }],
    env: { DB_POOL_SIZE: '4', DB_CONNECT_TIMEOUT_MS: '2000' },
  });
  tree = await createTree(h, { concurrencyLimit: 1000 });
  // HARD budgets that bind under the load: the team of the first project, and the whole department.
  await setBudget(h, { orgUnitId: tree.teamId, accountId: tree.accountId, window: 'MONTHLY', limitCreditSeconds: '1500' });
  await setBudget(h, { orgUnitId: tree.deptId, accountId: tree.accountId, window: 'MONTHLY', limitCreditSeconds: '4000' });
  serviceToken = (await issueServiceToken(h, tree.projectId, 'chaos')).token;
  env = {
    DATABASE_URL: databaseUrl,
    GATEWAY_MASTER_KEY: h.config.masterKey!,
    HEYGEN_BASE_URL: h.sim.url,
    WORKER_INTERVAL_MS: '100',
    POLL_MIN_INTERVAL_MS: '100',
    POLL_MAX_INTERVAL_MS: '500',
    HEYGEN_TIMEOUT_MS: '800',
    HEYGEN_MAX_ATTEMPTS: '2',
    WORKER_LEASE_MS: '5000',
    BACKGROUND_BACKOFF_MAX_MS: '1000',
    DB_POOL_SIZE: '5',
    DB_CONNECT_TIMEOUT_MS: '5000',
    WALLET_SYNC_INTERVAL_MS: '1000',
    RATE_LIMIT_PER_MINUTE: '0',
  };
  alive.push(...(await Promise.all([spawnWatched(), spawnWatched(), spawnWatched()])));
}, 120_000);

afterAll(async () => {
  load.running = false;
  observer.running = false;
  await Promise.all(alive.map((g) => g.stop()));
  await h?.close();
  await cluster?.destroy();
});

interface GqlAnswer {
  status: number;
  body: { data?: any; errors?: { message: string; extensions?: { code?: string } }[] };
  retryAfter: string | null;
}

async function gql(gateway: GatewayProcess, query: string, variables: Record<string, unknown>, token = h.adminToken): Promise<GqlAnswer> {
  const res = await fetch(`${gateway.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  return { status: res.status, body: (await res.json()) as GqlAnswer['body'], retryAfter: res.headers.get('retry-after') };
}

async function readyz(gateway: GatewayProcess): Promise<number | null> {
  try {
    return (await fetch(`${gateway.url}/readyz`)).status;
  } catch {
    return null;
  }
}

/** What the load saw: per idempotency key the job it got, and every answer that was not a typed outcome. */
const load = {
  running: true,
  answered: 0,
  jobByKey: new Map<string, string>(),
  outcomes: {} as Record<string, number>,
  unavailable: 0,
  connectionErrors: 0,
  /** Anything else: a 5xx other than 503 UNAVAILABLE, INTERNAL_SERVER_ERROR, an unexpected shape. Must stay empty. */
  unexpected: [] as string[],
};

function randomSubmission(): { projectId: string; kind: string; request: Record<string, unknown>; estimatedSeconds?: string } {
  const projectId = random() < 0.5 ? tree.projectId : tree.otherProjectId;
  const r = random();
  if (r < 0.6) {
    const words = 10 + Math.floor(random() * 30);
    return { projectId, kind: 'AVATAR_VIDEO', request: avatarRequest(Array.from({ length: words }, (_, i) => `w${i}`).join(' ')) };
  }
  if (r < 0.75) return { projectId, kind: 'TEMPLATE_VIDEO', request: { template_id: 'tmpl_1', variables: { name: { type: 'text', text: 'Ada' } } } };
  if (r < 0.9) {
    return {
      projectId,
      kind: 'VIDEO_TRANSLATION',
      request: { video: { type: 'asset_id', asset_id: 'src_chaos' }, output_languages: ['fr', 'de'], mode: 'precision' },
      estimatedSeconds: '20',
    };
  }
  return { projectId, kind: 'VIDEO_AGENT', request: { prompt: 'A short product intro' }, estimatedSeconds: '30' };
}

/** One client: submits with an idempotency key and retries the same key (on any live gateway) until it gets a typed answer. */
async function client(id: number): Promise<void> {
  for (let n = 0; load.running; n++) {
    const key = `chaos-${id}-${n}`;
    const input = { ...randomSubmission(), idempotencyKey: key };
    // Once the load stops, a submission still being retried gets 50 more tries to learn its outcome.
    for (let afterStop = 0; load.running || afterStop++ < 50; ) {
      const gateway = pick(alive);
      let answer: GqlAnswer;
      try {
        answer = await gql(gateway, SUBMIT, { input });
      } catch {
        load.connectionErrors++; // the gateway was killed under this request
        await pause(50);
        continue;
      }
      const code = answer.body.errors?.[0]?.extensions?.code;
      if (code === 'UNAVAILABLE') {
        load.unavailable++;
        if (answer.status !== 503 || answer.retryAfter === null) load.unexpected.push(`UNAVAILABLE with HTTP ${answer.status}, Retry-After ${answer.retryAfter}`);
        await pause(100); // a real client would wait Retry-After; the test keeps the pressure up
        continue;
      }
      const payload = answer.body.data?.submitJob;
      if (answer.body.errors || !payload) {
        load.unexpected.push(`HTTP ${answer.status}: ${JSON.stringify(answer.body).slice(0, 300)}`);
        break;
      }
      load.outcomes[payload.__typename] = (load.outcomes[payload.__typename] ?? 0) + 1;
      if (payload.__typename === 'SubmitJobPayload') {
        const jobId = decodeGlobalID(payload.job.id).id;
        const previous = load.jobByKey.get(key);
        if (previous && previous !== jobId) load.unexpected.push(`key ${key} gave two jobs: ${previous} and ${jobId}`);
        load.jobByKey.set(key, jobId);
      } else if (!['BudgetExceededError', 'ConcurrencyLimitError'].includes(payload.__typename)) {
        load.unexpected.push(`${payload.__typename}: ${payload.message}`);
      }
      load.answered++;
      break;
    }
    await pause(20);
  }
}

/** Paces the load generator (not a wait for a condition: those use waitFor with deadlines). */
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every HARD budget within its limit, per period, at every observation (observations during an outage fail and are counted). */
const observer = { running: true, observations: 0, failedObservations: 0, breaches: [] as string[] };
async function observe(): Promise<void> {
  while (observer.running) {
    try {
      const rows = await queryRows<{ budget: string; period: string; used: string; limit: string }>(
        h.services.db,
        sql`select b.id::text as budget, r.period, sum(r.reserved_micro_cs + r.settled_micro_cs)::text as used, b.limit_micro_cs::text as limit
            from budgets b join usage_rollups r on r.org_unit_id = b.org_unit_id and (b.account_id is null or r.account_id = b.account_id)
            where b.enforcement = 'HARD'
            group by b.id, r.period, b.limit_micro_cs`,
      );
      for (const row of rows) if (toBigInt(row.used) > toBigInt(row.limit)) observer.breaches.push(`${row.budget} ${row.period}: ${row.used} > ${row.limit}`);
      observer.observations++;
    } catch {
      observer.failedObservations++;
    }
    await pause(25);
  }
}

/** Waits until the load has had `n` more typed answers (proof that the fleet serves). */
async function answeredMore(n: number, timeoutMs = 30_000): Promise<void> {
  const target = load.answered + n;
  await until(async () => load.answered >= target, timeoutMs, 20);
}

function killOne(): GatewayProcess {
  const victim = pick(alive);
  alive.splice(alive.indexOf(victim), 1);
  killed.push(victim);
  victim.child.kill('SIGKILL');
  return victim;
}

const outages: { mode: string; unreadySeen: number; readyAfter: number; graphqlCodes: string[]; webhookStatuses: string[] }[] = [];

/** Stops PostgreSQL under load, checks what callers see while it is away, starts it, waits for every gateway to be ready. */
async function databaseOutage(mode: 'fast' | 'immediate'): Promise<void> {
  await cluster.stop(mode);
  const record = { mode, unreadySeen: 0, readyAfter: 0, graphqlCodes: [] as string[], webhookStatuses: [] as string[] };
  outages.push(record);
  // Every live gateway reports unready while the database is away.
  for (const g of alive) {
    await until(async () => (await readyz(g)) === 503, 15_000);
    record.unreadySeen++;
    // A GraphQL request fails with the typed retryable error, a non-GraphQL route with 503 + Retry-After.
    for (const token of [h.adminToken, serviceToken]) {
      const answer = await gql(g, '{ accounts { id } }', {}, token);
      record.graphqlCodes.push(`${answer.status} ${answer.body.errors?.[0]?.extensions?.code} retry-after=${answer.retryAfter}`);
    }
    const hook = await fetch(`${g.url}/webhooks/heygen/${decodeGlobalID(tree.accountId).id}/callback`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ event_type: 'avatar_video.success', event_data: { video_id: 'v_x', callback_id: null } }),
    });
    record.webhookStatuses.push(`${hook.status} retry-after=${hook.headers.get('retry-after')}`);
    await hook.arrayBuffer();
  }
  await cluster.start();
  for (const g of alive) {
    await until(async () => (await readyz(g)) === 200, 30_000);
    record.readyAfter++;
  }
}

it(`survives gateway kill -9s, two PostgreSQL restarts, a HeyGen outage and HeyGen faults under load (seed ${SEED})`, async () => {
  const started = Date.now();
  const observing = observe();
  const clients = Array.from({ length: 4 }, (_, i) => client(i));
  // Faults of the HeyGen API, set over the simulator's control API: 5xx (some after creating the job), 429, timeouts, malformed bodies, failed renders.
  const configure = async (patch: Record<string, unknown>) => {
    const res = await fetch(`${h.sim.url}/_sim/config`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(patch) });
    expect(res.status).toBe(200);
  };
  // The `…Next` counters make sure each fault fires at least once; the rates add random ones.
  await configure({ fail5xxRate: 0.1, fail5xxNext: 2, fail5xxAfterCreate: true, rateLimitNext: 3, timeoutNext: 2, malformedNext: 3, failJobRate: 0.1, failNextJobs: 2 });

  try {
    await answeredMore(15);
    // kill -9 of a gateway under load, and a replacement.
    killOne();
    alive.push(await spawnWatched());
    await answeredMore(10);

    await databaseOutage('fast');
    await answeredMore(10);

    // HeyGen goes away (every connection cut, the port refuses) and comes back with its state.
    await configure({ fail5xxAfterCreate: false, timeoutNext: 2, malformedNext: 2, rateLimitNext: 2 });
    // Proof that the gateways met the outage: a HeyGen call refused or cut (the wallet sync calls HeyGen every second).
    const simFailure = new RegExp(`ECONNREFUSED 127\\.0\\.0\\.1:${h.sim.port}|ECONNRESET|other side closed`, 'g');
    const simFailures = () => alive.reduce((n, g) => n + (g.output.join('').match(simFailure)?.length ?? 0), 0);
    const before = simFailures();
    await h.sim.goDown();
    await until(async () => simFailures() > before, 15_000);
    await h.sim.comeBack();
    await answeredMore(10);

    // A second kill -9, not replaced, then a crash-like PostgreSQL stop (recovery at start).
    killOne();
    await answeredMore(5);
    await databaseOutage('immediate');
    await answeredMore(10);
  } finally {
    load.running = false;
    await Promise.all(clients);
  }

  // Drain: faults off, every job reaches a terminal state.
  await configure({ fail5xxRate: 0, failJobRate: 0 });
  const db = h.services.db;
  await until(
    async () => {
      const [row] = await queryRows<{ n: number }>(db, sql`select count(*)::int as n from jobs where status in ('RESERVED', 'SUBMIT_UNKNOWN', 'SUBMITTED', 'PROCESSING')`);
      return Number(row!.n) === 0;
    },
    45_000,
    100,
  );
  observer.running = false;
  await observing;
  const context = { seed: SEED, seconds: (Date.now() - started) / 1000, load: { ...load, jobByKey: load.jobByKey.size }, observer, outages };
  const errorLines = [...alive, ...killed].flatMap((g) => g.output.join('').split('\n').filter((l) => /"level":(50|60)/.test(l)));
  if (errorLines.length > 0) console.log(`chaos: error lines\n${errorLines.slice(0, 20).map((l) => l.slice(0, 400)).join('\n')}`);
  console.log(`chaos: ${JSON.stringify({ ...context, load: { ...context.load, unexpected: load.unexpected.length } })}`);

  // The load was real and met every kind of trouble; callers only ever saw typed answers or UNAVAILABLE.
  expect(load.unexpected, JSON.stringify(context)).toEqual([]);
  expect(load.outcomes.SubmitJobPayload ?? 0, JSON.stringify(context)).toBeGreaterThan(10);
  expect(load.outcomes.BudgetExceededError ?? 0, JSON.stringify(context)).toBeGreaterThan(0);

  // Every injected HeyGen fault fired.
  const faults = h.sim.stats();
  expect(faults.faults.fail5xx, JSON.stringify(faults.faults)).toBeGreaterThan(0);
  expect(faults.faults.timeouts, JSON.stringify(faults.faults)).toBeGreaterThan(0);
  expect(faults.faults.malformed, JSON.stringify(faults.faults)).toBeGreaterThan(0);
  expect(faults.rateLimited.injected, JSON.stringify(faults.rateLimited)).toBeGreaterThan(0);
  expect(faults.jobsFailed[KEY] ?? 0).toBeGreaterThan(0);

  // /readyz went unready during each outage on every live gateway and ready after it; callers got UNAVAILABLE / 503.
  expect(outages).toHaveLength(2);
  for (const outage of outages) {
    expect(outage.unreadySeen).toBeGreaterThanOrEqual(2);
    expect(outage.readyAfter).toBe(outage.unreadySeen);
    for (const code of outage.graphqlCodes) expect(code).toBe(`503 UNAVAILABLE retry-after=2`);
    for (const status of outage.webhookStatuses) expect(status).toBe('503 retry-after=2');
  }

  expect(crashed).toEqual([]);
  // The outages are warnings: no error line (and no SQL) about the database in any gateway's log.
  expect(errorLines.filter((l) => /Failed query|Connection terminated|not queryable|terminating connection|57P0|database/i.test(l))).toEqual([]);
  // Every HARD budget within its limit at every observation.
  expect(observer.breaches).toEqual([]);
  expect(observer.observations).toBeGreaterThan(50);

  // Ledger = counters; no open hold; every job terminal with its hold released.
  await expectCountersEqualLedger(db);
  const [holds] = await queryRows<{ rollups: string; jobs: string }>(
    db,
    sql`select (select coalesce(sum(reserved_micro_cs), 0) from usage_rollups)::text as rollups, (select coalesce(sum(reserved_micro_cs), 0) from jobs)::text as jobs`,
  );
  expect(holds).toEqual({ rollups: '0', jobs: '0' });

  // One job per idempotency key, and one upstream creation per job (the simulator counts creations per Idempotency-Key).
  const jobs = await queryRows<{ id: string; idempotency_key: string; status: string; items: number }>(
    db,
    sql`select j.id::text, j.idempotency_key, j.status::text, (select count(*)::int from job_items i where i.job_id = j.id) as items from jobs j`,
  );
  expect(jobs.length).toBe(load.jobByKey.size);
  for (const job of jobs) expect(load.jobByKey.get(job.idempotency_key)).toBe(job.id);
  const creations = h.sim.stats().creationsByIdempotencyKey;
  const duplicates = Object.entries(creations).filter(([, n]) => n > 1);
  expect(duplicates).toEqual([]);
  const forwarded = jobs.filter((j) => j.items > 0).map((j) => j.id).sort();
  expect(Object.keys(creations).sort()).toEqual(forwarded);

  // No double charge: what HeyGen billed for the gateway's jobs is what the ledger debited.
  const [debits] = await queryRows<{ total: string }>(db, sql`select coalesce(sum(amount_micro_cs), 0)::text as total from ledger_entries where entry_type = 'DEBIT'`);
  expect(debits!.total).toBe(h.sim.stats().usage[KEY]!.gateway);

  // Every gateway the test did not kill is alive and serving; the killed ones died of SIGKILL.
  for (const g of killed) expect(g.child.signalCode).toBe('SIGKILL');
  expect(alive).toHaveLength(2);
  for (const g of alive) {
    expect(g.child.exitCode).toBeNull();
    expect(g.child.signalCode).toBeNull();
    expect(await readyz(g)).toBe(200);
    const answer = await gql(g, 'query($id: ID!) { node(id: $id) { id } }', { id: tree.projectId });
    expect(answer.body.errors).toBeUndefined();
    expect(answer.body.data.node.id).toBe(tree.projectId);
    // A lost connection is a warning, never an unhandled error event.
    expect(g.output.join('')).not.toMatch(/Unhandled 'error' event|uncaughtException/);
  }
}, 150_000);
