// Signed webhooks on a job with several upstream items (a translation into several languages, a video batch): each
// claims the job in its hint (hintAndClaimJob), but while several items run the claimed read takes the bulk status
// first (detailFirst reads a lone running item's detail only) and then the details of the items that changed; the job
// settles once, when its last item ends, at the sum of its items' costs. Also: concurrent webhooks (one claim; the
// losers are not due), a failed item, a webhook whose item is another job's, replays after the settlement, and two
// reads of one job settling at once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHmac } from 'node:crypto';
import pg from 'pg';
import { sql } from 'drizzle-orm';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { startHarness, waitFor, type Harness } from './support/harness.js';
import { avatarRequest, createTree, SUBMIT, type Tree } from './support/fixtures.js';
import { expectCountersEqualLedger } from './support/invariants.js';
import { logStatements, type StatementLog } from './support/statement-log.js';
import { queryRows } from '../src/db/client.js';
import { hintAndClaimJob } from '../src/jobs/follow.js';
import { claimDueJobs, runClaimed } from '../src/jobs/worker.js';

// Every statement a pg client of this process sends to the harness's database (log.database, set once it exists).
let log: StatementLog;
beforeAll(() => {
  log = logStatements();
});
afterAll(() => {
  log.restore();
});

const SECRET = 'whsec_multi_item_1';
const API_KEY = 'sk_test_primary_key_0001';
/** This test's own reads of the database start with this comment, so they can be told from the gateway's. */
const OWN = '/* test */ ';

interface JobState {
  status: string;
  actual: string | null;
  reserved: string;
  check_attempts: number;
  last_checked_at: Date | null;
}
async function jobRow(h: Harness, jobId: string): Promise<JobState> {
  const [row] = await queryRows<JobState>(
    h.services.db,
    sql.raw(`${OWN}select status::text, actual_micro_cs::text as actual, reserved_micro_cs::text as reserved, check_attempts, last_checked_at from jobs where id = '${jobId}'`),
  );
  return row!;
}

interface ItemState {
  upstream_id: string;
  language: string | null;
  video_id: string | null;
  status: string;
  duration: string | null;
  cost: string | null;
}
/** The job's items, in the order of `order` (upstream or video ids) when given. */
async function itemsOf(h: Harness, jobId: string, order?: readonly string[]): Promise<ItemState[]> {
  const rows = await queryRows<ItemState>(
    h.services.db,
    sql.raw(
      `${OWN}select upstream_id, language, video_id, status::text, duration_seconds::text as duration, cost_micro_cs::text as cost from job_items where job_id = '${jobId}' order by created_at, id`,
    ),
  );
  if (!order) return rows;
  const rank = (i: ItemState) => order.findIndex((id) => id === i.upstream_id || id === i.video_id);
  expect(rows.every((i) => rank(i) >= 0)).toBe(true);
  return rows.sort((x, y) => rank(x) - rank(y));
}

/** The job's ledger entries by type: how many, and their total. */
async function ledgerOf(h: Harness, jobId: string): Promise<Record<string, { n: number; sum: string }>> {
  const rows = await queryRows<{ entry_type: string; n: number; sum: string }>(
    h.services.db,
    sql.raw(`${OWN}select entry_type::text, count(*)::int as n, sum(amount_micro_cs)::text as sum from ledger_entries where job_id = '${jobId}' group by 1`),
  );
  return Object.fromEntries(rows.map((r) => [r.entry_type, { n: r.n, sum: r.sum }]));
}

/** How many `job.finished` money events the job has (one per settlement). */
async function finishedEvents(h: Harness, jobId: string): Promise<number> {
  const [row] = await queryRows<{ n: number }>(h.services.db, sql.raw(`${OWN}select count(*)::int as n from outbox_events where topic = 'money_event' and dedupe_key = 'job.finished:${jobId}'`));
  return row!.n;
}

/**
 * Until HeyGen has started each of `ids` (the simulator turns a job `processing` at half its render time, 25 ms here):
 * the tests' running items. Read before that, an item still reads `pending`, and its job stays SUBMITTED.
 */
async function started(h: Harness, ids: readonly string[]): Promise<void> {
  await waitFor(async () => ids.every((id) => h.sim.job(id)?.status === 'processing') || undefined, 5_000, 5);
}

/** As after a read long ago: the next webhook's hint may claim the job (its last read is past the interval). */
async function readLongAgo(h: Harness, jobId: string): Promise<void> {
  await h.services.db.execute(sql.raw(`${OWN}update jobs set last_checked_at = now() - interval '61 seconds' where id = '${jobId}'`));
}

function signedPost(h: Harness, accountId: string, eventData: Record<string, unknown>, eventType: string): Promise<Response> {
  const body = JSON.stringify({ event_type: eventType, event_data: eventData });
  return fetch(`${h.url}/webhooks/heygen/${accountId}`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', 'x-heygen-signature': createHmac('sha256', SECRET).update(body).digest('hex') },
  });
}

/** The HeyGen calls the simulator answered, by route. */
const calls = (h: Harness): Record<string, number> => ({ ...h.sim.stats().requests });
/** The calls made since `before`, by route (routes not called left out). */
function callsSince(h: Harness, before: Record<string, number>): Record<string, number> {
  const now = calls(h);
  return Object.fromEntries(Object.entries(now).flatMap(([route, n]) => (n - (before[route] ?? 0) > 0 ? [[route, n - (before[route] ?? 0)]] : [])));
}

/** The gateway's statements since the last reset, this test's own left out, named by what they do. */
function gatewayStatements(): string[] {
  return log.sent
    .filter((s) => !s.startsWith(OWN))
    .map((s) => {
      if (/^select "id", "name", .* from "accounts"/s.test(s)) return 'account';
      if (/^with target as .*make_interval\(secs => \$3\)/s.test(s)) return 'hint+claim';
      if (/^select j\.id, j\.account_id/.test(s)) return 'read';
      if (/^select gateway_settle_followed\(/.test(s)) return 'settle_followed';
      if (/^update jobs set next_check_at = now\(\) \+ make_interval\(secs => \$1\), check_attempts = check_attempts \+ 1/.test(s)) return 'worker claim';
      return s.replace(/\s+/g, ' ').slice(0, 120);
    });
}

/**
 * A harness with no background work (a read can only come from a webhook) and a long interval between reads (a hint
 * claims only a job a test made readable, readLongAgo, however slow the machine); the statement log on its database.
 */
async function webhookHarness(): Promise<{ h: Harness; tree: Tree; accountId: string }> {
  const h = await startHarness({ workers: false, sim: { autoComplete: false }, env: { STATUS_READ_MIN_INTERVAL_MS: '60000' } });
  log.database = new URL(h.database.url).pathname.slice(1);
  const tree = await createTree(h, { webhookSecret: SECRET });
  return { h, tree, accountId: decodeGlobalID(tree.accountId).id };
}

const BULK_TRANSLATIONS = 'GET /v3/video-translations/statuses';
const TRANSLATION = 'GET /v3/video-translations/{video_translation_id}';

describe('signed webhooks on a translation into three languages', () => {
  let h: Harness;
  let tree: Tree;
  let accountId: string;
  beforeAll(async () => {
    ({ h, tree, accountId } = await webhookHarness());
  });
  afterAll(async () => {
    log.database = '';
    await h?.close();
  });

  /** A translation into `languages`; `ids` are its items' upstream ids in the order of `languages`. */
  async function submitTranslation(languages = ['fr', 'de', 'es']): Promise<{ jobId: string; ids: string[] }> {
    const res = await h.gql(SUBMIT, {
      input: { projectId: tree.projectId, kind: 'VIDEO_TRANSLATION', request: { video: { type: 'asset_id', asset_id: 'src_1' }, output_languages: languages, mode: 'precision' } },
    });
    expect(res.data.submitJob.job.status).toBe('SUBMITTED');
    const jobId = decodeGlobalID(res.data.submitJob.job.id).id;
    const items = await itemsOf(h, jobId);
    expect(items.map((i) => i.upstream_id).sort()).toEqual([...(res.data.submitJob.job.upstreamIds as string[])].sort());
    // Each item is the language HeyGen renders under its id.
    for (const item of items) expect(h.sim.job(item.upstream_id)?.outputLanguage).toBe(item.language);
    await started(h, items.map((i) => i.upstream_id));
    return { jobId, ids: languages.map((l) => items.find((i) => i.language === l)!.upstream_id) };
  }

  it('one item done, two running: claimed once, bulk status first, one detail, nothing settles; the last two (concurrent) settle it once at the sum', async () => {
    const { jobId, ids } = await submitTranslation();
    const [fr, de, es] = ids as [string, string, string];
    const hold = (await jobRow(h, jobId)).reserved;
    expect(BigInt(hold)).toBeGreaterThan(0n);
    const usageBefore = BigInt(h.sim.usage(API_KEY).gateway);
    await readLongAgo(h, jobId);

    // 1. French is done, German and Spanish still render.
    expect(h.sim.completeNow(fr, { durationSeconds: 5 })).toBe(true);
    let before = calls(h);
    log.sent.length = 0;
    const first = await signedPost(h, accountId, { video_translate_id: fr, callback_id: jobId }, 'video_translate.success');
    expect(first.status).toBe(202);
    expect(await first.json()).toEqual({ accepted: true });
    await waitFor(async () => (await itemsOf(h, jobId)).find((i) => i.upstream_id === fr && i.status === 'completed'), 20_000);
    await waitFor(async () => gatewayStatements().includes('settle_followed') || undefined, 20_000);
    // The bulk status of the three (not the lone-item detail shortcut), then the detail of the one that changed.
    expect(callsSince(h, before)).toEqual({ [BULK_TRANSLATIONS]: 1, [TRANSLATION]: 1 });
    // Claimed once, by its hint: the account's secret, the hint (with the claim), one status read, one settling call.
    expect(gatewayStatements()).toEqual(['account', 'hint+claim', 'read', 'settle_followed']);
    const items = await itemsOf(h, jobId, ids);
    expect(items.map((i) => [i.upstream_id, i.status])).toEqual([
      [fr, 'completed'],
      [de, 'processing'],
      [es, 'processing'],
    ]);
    expect(items[0]!.duration).toBe('5');
    expect(items[0]!.cost).toBe('30000000'); // 5 s × 6 cs/s
    // Not settled: still following, its whole hold in place, no money moved but the hold.
    const following = await jobRow(h, jobId);
    expect(following.status).toBe('PROCESSING');
    expect(following.actual).toBeNull();
    expect(following.reserved).toBe(hold);
    expect(following.check_attempts).toBe(1);
    expect(await ledgerOf(h, jobId)).toEqual({ HOLD: { n: 1, sum: hold } });
    expect(await finishedEvents(h, jobId)).toBe(0);
    await expectCountersEqualLedger(h.services.db);

    // 2. German and Spanish end; their webhooks arrive together. One hint claims the job (the other finds it claimed:
    // not due, no worker's claim after it): one bulk status, the details of the two, one settlement at the sum of the
    // three.
    await readLongAgo(h, jobId);
    expect(h.sim.completeNow(de, { durationSeconds: 7 })).toBe(true);
    expect(h.sim.completeNow(es, { durationSeconds: 9 })).toBe(true);
    before = calls(h);
    log.sent.length = 0;
    const both = await Promise.all([
      signedPost(h, accountId, { video_translate_id: de, callback_id: jobId }, 'video_translate.success'),
      signedPost(h, accountId, { video_translate_id: es, callback_id: jobId }, 'video_translate.success'),
    ]);
    expect(both.map((r) => r.status)).toEqual([202, 202]);
    const settled = await waitFor(async () => {
      const row = await jobRow(h, jobId);
      return row.status === 'SUCCEEDED' ? row : undefined;
    }, 20_000);
    const done = await itemsOf(h, jobId, ids);
    expect(done.map((i) => [i.upstream_id, i.status, i.duration])).toEqual([
      [fr, 'completed', '5'],
      [de, 'completed', '7'],
      [es, 'completed', '9'],
    ]);
    const sum = done.reduce((s, i) => s + BigInt(i.cost!), 0n);
    expect(sum).toBe(126_000_000n); // (5 + 7 + 9) s × 6 cs/s
    expect(settled.actual).toBe(sum.toString());
    expect(settled.reserved).toBe('0');
    expect(callsSince(h, before)).toEqual({ [BULK_TRANSLATIONS]: 1, [TRANSLATION]: 2 });
    const statements = gatewayStatements();
    expect(statements.filter((s) => s === 'account'), statements.join('\n')).toHaveLength(2);
    expect(statements.filter((s) => s === 'hint+claim'), statements.join('\n')).toHaveLength(2);
    expect(statements.filter((s) => s === 'read'), statements.join('\n')).toHaveLength(1);
    expect(statements.filter((s) => s === 'settle_followed'), statements.join('\n')).toHaveLength(1);
    expect(statements, statements.join('\n')).toHaveLength(6);
    // Settled once: the hold released once, the sum debited once, one end event; HeyGen billed the same.
    expect(await ledgerOf(h, jobId)).toEqual({ HOLD: { n: 1, sum: hold }, RELEASE: { n: 1, sum: hold }, DEBIT: { n: 1, sum: sum.toString() } });
    expect(await finishedEvents(h, jobId)).toBe(1);
    expect(BigInt(h.sim.usage(API_KEY).gateway) - usageBefore).toBe(sum);
    await expectCountersEqualLedger(h.services.db);

    // 3. Replayed after the settlement (HeyGen retries a delivery, or an attacker replays a captured one), even with
    // the last read made long ago: no claim, no read, no HeyGen call, nothing moves.
    await readLongAgo(h, jobId);
    before = calls(h);
    log.sent.length = 0;
    const replays = await Promise.all(
      [fr, de, es, de].map((id) => signedPost(h, accountId, { video_translate_id: id, callback_id: jobId }, 'video_translate.success')),
    );
    expect(replays.map((r) => r.status)).toEqual([202, 202, 202, 202]);
    // What each of those hints found: the job known, settled, neither scheduled nor due nor claimed.
    const again = await hintAndClaimJob(h.services.db, accountId, { jobId, upstreamId: de }, 60_000, h.services.jobDeps.follow.leaseMs);
    expect(again).toEqual({ accountKnown: true, jobId, scheduled: false, dueNow: false, claimed: null });
    // A claimed job would be read after the answer: give such a read the time to show.
    await new Promise((r) => setTimeout(r, 200));
    expect(callsSince(h, before)).toEqual({});
    const statementsAfter = gatewayStatements();
    expect(statementsAfter.filter((s) => s !== 'account' && s !== 'hint+claim'), statementsAfter.join('\n')).toEqual([]);
    expect(await jobRow(h, jobId)).toMatchObject({ status: 'SUCCEEDED', actual: sum.toString(), reserved: '0' });
    expect(await ledgerOf(h, jobId)).toEqual({ HOLD: { n: 1, sum: hold }, RELEASE: { n: 1, sum: hold }, DEBIT: { n: 1, sum: sum.toString() } });
    expect(await finishedEvents(h, jobId)).toBe(1);
    await expectCountersEqualLedger(h.services.db);
  });

  it('an item that fails, then the last that completes: the failure settles nothing, the job is billed for the completed item only, once', async () => {
    const { jobId, ids } = await submitTranslation(['fr', 'es']);
    const [fr, es] = ids as [string, string];
    const usageBefore = BigInt(h.sim.usage(API_KEY).gateway);
    const hold = (await jobRow(h, jobId)).reserved;

    await readLongAgo(h, jobId);
    expect(h.sim.failNow(fr, { failureCode: 'render_failed', failureMessage: 'the source could not be rendered' })).toBe(true);
    let before = calls(h);
    log.sent.length = 0;
    expect((await signedPost(h, accountId, { video_translate_id: fr, callback_id: jobId, msg: 'failed' }, 'video_translate.fail')).status).toBe(202);
    await waitFor(async () => (await itemsOf(h, jobId)).find((i) => i.upstream_id === fr && i.status === 'failed'), 20_000);
    await new Promise((r) => setTimeout(r, 100));
    expect(callsSince(h, before)).toEqual({ [BULK_TRANSLATIONS]: 1, [TRANSLATION]: 1 });
    expect(gatewayStatements()).toEqual(['account', 'hint+claim', 'read', 'settle_followed']);
    expect((await jobRow(h, jobId)).status).toBe('PROCESSING');
    expect(await ledgerOf(h, jobId)).toEqual({ HOLD: { n: 1, sum: hold } });
    await expectCountersEqualLedger(h.services.db);

    // The last item: one running, so its detail alone; the job ends with one output billed, the failure named.
    await readLongAgo(h, jobId);
    expect(h.sim.completeNow(es, { durationSeconds: 8 })).toBe(true);
    before = calls(h);
    expect((await signedPost(h, accountId, { video_translate_id: es, callback_id: jobId }, 'video_translate.success')).status).toBe(202);
    await waitFor(async () => ((await jobRow(h, jobId)).status === 'SUCCEEDED' ? true : undefined), 20_000);
    expect(callsSince(h, before)).toEqual({ [TRANSLATION]: 1 });
    const [row] = await queryRows<{ actual: string; code: string | null; message: string | null }>(
      h.services.db,
      sql.raw(`${OWN}select actual_micro_cs::text as actual, failure_code as code, failure_message as message from jobs where id = '${jobId}'`),
    );
    expect(row).toEqual({ actual: '48000000', code: 'partial_failure', message: 'fr: the source could not be rendered' }); // 8 s × 6 cs/s
    expect(await ledgerOf(h, jobId)).toEqual({ HOLD: { n: 1, sum: hold }, RELEASE: { n: 1, sum: hold }, DEBIT: { n: 1, sum: '48000000' } });
    expect(BigInt(h.sim.usage(API_KEY).gateway) - usageBefore).toBe(48_000_000n); // HeyGen billed the completed one only
    expect(await finishedEvents(h, jobId)).toBe(1);
    await expectCountersEqualLedger(h.services.db);
  });

  it('hints racing for a readable job: one claims it, the others report it not due (no second claim is tried)', async () => {
    const { jobId, ids } = await submitTranslation();
    const follow = h.services.jobDeps.follow;
    for (let round = 0; round < 5; round++) {
      // As a job whose poll is due (its backoff passed) and last read long ago: what a webhook most often finds.
      await h.services.db.execute(sql.raw(`${OWN}update jobs set next_check_at = now() - interval '1 second' where id = '${jobId}'`));
      await readLongAgo(h, jobId);
      // The job's row held by this test until every hint has started its statement and waits for it: each then took
      // its snapshot before the winner's claim, the case where a loser could read the job as it was before the claim
      // (due) and report it so.
      const blocker = new pg.Client({ connectionString: h.database.url });
      await blocker.connect();
      let hints: Awaited<ReturnType<typeof hintAndClaimJob>>[];
      try {
        await blocker.query(`${OWN}begin`);
        await blocker.query(`${OWN}select 1 from jobs where id = $1 for update`, [jobId]);
        const racing = Promise.all(
          Array.from({ length: 20 }, (_, i) => hintAndClaimJob(h.services.db, accountId, { jobId: i % 2 ? jobId : null, upstreamId: ids[i % 3]! }, follow.statusReadMinIntervalMs, follow.leaseMs)),
        );
        await waitFor(async () => {
          // pg_stat_activity is read once per transaction unless its snapshot is cleared.
          const { rows } = await blocker.query<{ n: number }>(
            `${OWN}select count(*)::int as n from pg_stat_activity, pg_stat_clear_snapshot()
             where datname = current_database() and wait_event_type = 'Lock' and pid <> pg_backend_pid()`,
          );
          return rows[0]!.n >= 20 || undefined;
        }, 20_000);
        await blocker.query(`${OWN}commit`);
        hints = await racing;
      } finally {
        await blocker.end();
      }
      expect(hints.every((r) => r.accountKnown && r.jobId === jobId)).toBe(true);
      expect(hints.filter((r) => r.claimed)).toHaveLength(1);
      // The job was claimed (its read is this test's to make): not due for any of the others, whose webhooks would
      // otherwise each send the worker's claim for nothing.
      expect(hints.filter((r) => !r.claimed && r.dueNow)).toEqual([]);
      expect(await claimDueJobs(h.services.jobDeps, 10, jobId)).toEqual([]);
    }
  });

  it("a webhook naming this job's callback_id and another job's item reads only the named job, and settles nothing early", async () => {
    const a = await submitTranslation();
    const b = await submitTranslation();
    const holdA = (await jobRow(h, a.jobId)).reserved;
    const holdB = (await jobRow(h, b.jobId)).reserved;
    await readLongAgo(h, a.jobId);
    await readLongAgo(h, b.jobId);
    // B's first item is done; A's items all still render.
    expect(h.sim.completeNow(b.ids[0]!, { durationSeconds: 4 })).toBe(true);
    const before = calls(h);
    log.sent.length = 0;
    const res = await signedPost(h, accountId, { video_translate_id: b.ids[0], callback_id: a.jobId }, 'video_translate.success');
    expect(res.status).toBe(202);
    await waitFor(async () => gatewayStatements().includes('settle_followed') || undefined, 20_000);
    await new Promise((r) => setTimeout(r, 100));
    // One job claimed and read (A, named by the callback_id): its bulk status, nothing changed there, no detail read.
    expect(callsSince(h, before)).toEqual({ [BULK_TRANSLATIONS]: 1 });
    expect(gatewayStatements()).toEqual(['account', 'hint+claim', 'read', 'settle_followed']);
    expect((await itemsOf(h, a.jobId)).map((i) => i.status)).toEqual(['processing', 'processing', 'processing']);
    expect((await jobRow(h, a.jobId)).check_attempts).toBe(1);
    // B was not read: its done item is still unknown to the gateway, its claim untouched.
    expect((await itemsOf(h, b.jobId)).map((i) => i.status)).toEqual(['pending', 'pending', 'pending']);
    expect((await jobRow(h, b.jobId)).check_attempts).toBe(0);
    expect(await ledgerOf(h, a.jobId)).toEqual({ HOLD: { n: 1, sum: holdA } });
    expect(await ledgerOf(h, b.jobId)).toEqual({ HOLD: { n: 1, sum: holdB } });
    await expectCountersEqualLedger(h.services.db);

    // Clean up for the tests after: both jobs end (B's own webhook settles B, A's settles A).
    for (const id of [...a.ids, ...b.ids.slice(1)]) expect(h.sim.completeNow(id, { durationSeconds: 3 })).toBe(true);
    for (const job of [a, b]) {
      await readLongAgo(h, job.jobId);
      expect((await signedPost(h, accountId, { video_translate_id: job.ids[1], callback_id: job.jobId }, 'video_translate.success')).status).toBe(202);
      await waitFor(async () => ((await jobRow(h, job.jobId)).status === 'SUCCEEDED' ? true : undefined), 20_000);
    }
    expect((await jobRow(h, a.jobId)).actual).toBe((3n * 18_000_000n).toString());
    expect((await jobRow(h, b.jobId)).actual).toBe((24_000_000n + 2n * 18_000_000n).toString());
    await expectCountersEqualLedger(h.services.db);
  });

  it('two reads of the same job at once (two claims, as after a lease ran out): both see every item done, it settles once', async () => {
    const { jobId, ids } = await submitTranslation();
    const hold = (await jobRow(h, jobId)).reserved;
    ids.forEach((id, i) => expect(h.sim.completeNow(id, { durationSeconds: 2 + i })).toBe(true));
    const before = calls(h);
    const claim = { id: jobId, status: 'SUBMITTED' as const, holdExpiresAt: new Date(Date.now() + 3600_000) };
    // The job's row held by this test, so that both reads reach their settling call before either settles.
    const blocker = new pg.Client({ connectionString: h.database.url });
    await blocker.connect();
    // Two reads in one process go one after the other (group commit: the second waits for the first's call); two
    // processes' reads meet in the database, as here with each call sent alone.
    const max = h.services.jobDeps.follow.groupCommitMax;
    h.services.jobDeps.follow.groupCommitMax = 1;
    try {
      await blocker.query(`${OWN}begin`);
      await blocker.query(`${OWN}select 1 from jobs where id = $1 for update`, [jobId]);
      log.sent.length = 0;
      const reads = Promise.all([runClaimed(h.services.jobDeps, [claim], { detailFirst: true }), runClaimed(h.services.jobDeps, [claim], { detailFirst: true })]);
      await waitFor(async () => gatewayStatements().filter((s) => s === 'settle_followed').length === 2 || undefined, 20_000);
      await blocker.query(`${OWN}commit`);
      await reads;
    } finally {
      h.services.jobDeps.follow.groupCommitMax = max;
      await blocker.end();
    }
    // Each read took the bulk status first, then the three details.
    expect(callsSince(h, before)).toEqual({ [BULK_TRANSLATIONS]: 2, [TRANSLATION]: 6 });
    const row = await jobRow(h, jobId);
    expect(row.status).toBe('SUCCEEDED');
    expect(row.actual).toBe(((2n + 3n + 4n) * 6_000_000n).toString());
    expect(await ledgerOf(h, jobId)).toEqual({ HOLD: { n: 1, sum: hold }, RELEASE: { n: 1, sum: hold }, DEBIT: { n: 1, sum: row.actual! } });
    expect(await finishedEvents(h, jobId)).toBe(1);
    expect(await claimDueJobs(h.services.jobDeps, 10, jobId)).toEqual([]);
    await expectCountersEqualLedger(h.services.db);
  });
});

const BULK_VIDEOS = 'GET /v3/videos/statuses';
const VIDEO = 'GET /v3/videos/{video_id}';
const BATCH = 'GET /v3/videos/batches/{batch_id}';

describe('signed webhooks on a video batch of two', () => {
  let h: Harness;
  let tree: Tree;
  let accountId: string;
  beforeAll(async () => {
    ({ h, tree, accountId } = await webhookHarness());
  });
  afterAll(async () => {
    log.database = '';
    await h?.close();
  });

  it('each item by its own webhook: the first reads the batch and the bulk status and settles nothing; the second settles the overrun once', async () => {
    const res = await h.gql(SUBMIT, { input: { projectId: tree.projectId, kind: 'VIDEO_BATCH', request: { videos: [avatarRequest(), avatarRequest()] } } });
    expect(res.data.submitJob.job.status, JSON.stringify(res)).toBe('SUBMITTED');
    const jobId = decodeGlobalID(res.data.submitJob.job.id).id;
    const hold = (await jobRow(h, jobId)).reserved;
    // Two scripts of 8 s each: 2 × 52.8 cs.
    expect(hold).toBe('105600000');
    // The batch's items have their video ids upstream (the simulator starts them at once); the gateway learns them
    // from its first batch read.
    const videoIds = h.sim
      .jobs(API_KEY)
      .filter((j) => j.batchId !== null)
      .sort((x, y) => x.batchIndex! - y.batchIndex!)
      .map((j) => j.id);
    expect(videoIds).toHaveLength(2);
    const [v0, v1] = videoIds as [string, string];
    await started(h, videoIds);
    await readLongAgo(h, jobId);

    // 1. The first video is done (longer than its hold), the second still renders.
    expect(h.sim.completeNow(v0, { durationSeconds: 12 })).toBe(true);
    let before = calls(h);
    log.sent.length = 0;
    expect((await signedPost(h, accountId, { video_id: v0, callback_id: jobId }, 'avatar_video.success')).status).toBe(202);
    await waitFor(async () => gatewayStatements().includes('settle_followed') || undefined, 20_000);
    await new Promise((r) => setTimeout(r, 100));
    // The batch (for the items' ids), the bulk status of both, the detail of the one done.
    expect(callsSince(h, before)).toEqual({ [BATCH]: 1, [BULK_VIDEOS]: 1, [VIDEO]: 1 });
    expect(gatewayStatements()).toEqual(['account', 'hint+claim', 'read', 'settle_followed']);
    const items = await itemsOf(h, jobId, videoIds);
    expect(items.map((i) => [i.video_id, i.status, i.duration])).toEqual([
      [v0, 'completed', '12'],
      [v1, 'processing', null],
    ]);
    expect((await jobRow(h, jobId)).status).toBe('PROCESSING');
    expect(await ledgerOf(h, jobId)).toEqual({ HOLD: { n: 1, sum: hold } });
    await expectCountersEqualLedger(h.services.db);

    // 2. The second is done too; its webhook arrives twice at once (HeyGen retrying a delivery it thought lost).
    // Its read now has one item running: the detail alone. 12 + 10 s × 6 cs/s = 132 cs, past the 105.6 cs hold:
    // settled through settleJob (the overrun), once.
    await readLongAgo(h, jobId);
    expect(h.sim.completeNow(v1, { durationSeconds: 10 })).toBe(true);
    before = calls(h);
    log.sent.length = 0;
    const both = await Promise.all([0, 1].map(() => signedPost(h, accountId, { video_id: v1, callback_id: jobId }, 'avatar_video.success')));
    expect(both.map((r) => r.status)).toEqual([202, 202]);
    const settled = await waitFor(async () => {
      const row = await jobRow(h, jobId);
      return row.status === 'SUCCEEDED' ? row : undefined;
    }, 20_000);
    await new Promise((r) => setTimeout(r, 100));
    expect(callsSince(h, before)).toEqual({ [VIDEO]: 1 });
    const statements = gatewayStatements();
    expect(statements.filter((s) => s === 'hint+claim'), statements.join('\n')).toHaveLength(2);
    expect(statements.filter((s) => s === 'read'), statements.join('\n')).toHaveLength(1);
    // The hint that lost the claim found the job claimed: not due, so no worker's claim follows it.
    expect(statements.filter((s) => s === 'worker claim'), statements.join('\n')).toEqual([]);
    expect(settled.actual).toBe('132000000');
    const [overrun] = await queryRows<{ overrun: string }>(h.services.db, sql.raw(`${OWN}select overrun_micro_cs::text as overrun from jobs where id = '${jobId}'`));
    expect(overrun!.overrun).toBe('26400000'); // 132 − 105.6 cs: settled by settleJob, as an overrun is
    expect(BigInt(h.sim.usage(API_KEY).gateway)).toBe(132_000_000n); // what HeyGen billed
    expect(settled.reserved).toBe('0');
    const done = await itemsOf(h, jobId);
    expect(done.reduce((s, i) => s + BigInt(i.cost!), 0n)).toBe(132_000_000n);
    expect(await ledgerOf(h, jobId)).toEqual({ HOLD: { n: 1, sum: hold }, RELEASE: { n: 1, sum: hold }, DEBIT: { n: 1, sum: '132000000' } });
    expect(await finishedEvents(h, jobId)).toBe(1);
    await expectCountersEqualLedger(h.services.db);
  });
});
