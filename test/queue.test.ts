// The concurrency queue on one gateway (docs/governance.md, "Concurrency queue"): a job beyond the account's free
// slots waits QUEUED with its hold, starts when a slot frees, can be cancelled, expires, goes back to the queue on
// HeyGen's own 429; the shares are set by ADMIN/FINANCE only. Money invariants hold after each.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { sql } from 'drizzle-orm';
import { startHarness, waitFor, type Harness } from './support/harness.js';
import { SUBMIT, avatarRequest, createTree, issueServiceToken, mustMutate, type Tree } from './support/fixtures.js';
import { expectCountersEqualLedger } from './support/invariants.js';
import { queryRows } from '../src/db/client.js';
import { dispatchAccount, expireQueuedJobs } from '../src/jobs/queue.js';
import { settleJob } from '../src/jobs/settlement.js';

const KEY = 'sk_test_primary_key_0001';
const SMALL_KEY = 'sk_test_small_slots_02';

let h: Harness;

const QUEUED_JOB = `query($id: ID!) { job(id: $id) { id status reservedCreditSeconds upstreamIds failureCode queue { position retryAfterSeconds estimatedStartAt } } }`;
const CANCEL = `mutation($input: CancelJobInput!) { cancelJob(input: $input) { __typename ... on CancelJobPayload { job { id status reservedCreditSeconds } } ... on Error { message code } } }`;
const SET_SHARES = `mutation($input: SetConcurrencySharesInput!) { setConcurrencyShares(input: $input) { __typename
  ... on SetConcurrencySharesPayload { shares { orgUnit { id } weight minSlots maxSlots } account { concurrencyShares { weight } } }
  ... on Error { message code } } }`;

beforeAll(async () => {
  h = await startHarness({
    sim: { autoComplete: false, retryAfterSeconds: 1 },
    simAccounts: [
      { apiKey: KEY, concurrencyLimit: 100 },
      // HeyGen's own count is smaller than the gateway's (other clients of the key use the rest).
      { apiKey: SMALL_KEY, concurrencyLimit: 1 },
    ],
    env: { HEYGEN_MAX_ATTEMPTS: '1', QUEUE_INTERVAL_MS: '50', QUEUE_DEFAULT_RUN_SECONDS: '30' },
  });
});
afterAll(async () => h?.close());

async function submit(tree: Tree, extra: Record<string, unknown> = {}, projectId = tree.projectId) {
  const res = await h.gql(SUBMIT, { input: { projectId, kind: 'AVATAR_VIDEO', request: avatarRequest(), ...extra } });
  expect(res.errors).toBeUndefined();
  return res.data.submitJob;
}

const job = async (id: string) => (await h.gql(QUEUED_JOB, { id })).data.job;

async function statusOf(id: string): Promise<string> {
  return (await job(id)).status;
}

async function finishedEvents(jobId: string): Promise<number> {
  const [row] = await queryRows<{ n: number }>(
    h.services.db,
    sql`select count(*)::int as n from outbox_events where kind = 'job.finished' and dedupe_key = ${`job.finished:${decodeGlobalID(jobId).id}`}`,
  );
  return Number(row!.n);
}

describe('the queue', () => {
  it('beyond the free slots a job waits QUEUED with its hold, shows its place, starts when a slot frees; queue: false is refused', async () => {
    const tree = await createTree(h, { name: 'Queue', concurrencyLimit: 2 });
    const running = [await submit(tree), await submit(tree)];
    for (const r of running) expect(r.job.status).toBe('SUBMITTED');
    const third = await submit(tree);
    const fourth = await submit(tree);
    expect(third.job.status).toBe('QUEUED');
    expect(fourth.job.status).toBe('QUEUED');
    // Money is safe: the hold is taken at admission, as for a job that starts at once.
    expect(third.job.reservedCreditSeconds).toBe(running[0].job.reservedCreditSeconds);
    expect(third.job.upstreamIds).toEqual([]);
    const standing = [await job(third.job.id), await job(fourth.job.id)].map((j) => j.queue);
    expect(standing.map((s) => s.position)).toEqual([1, 2]);
    // No job has finished on this account yet: QUEUE_DEFAULT_RUN_SECONDS (30) per batch of the project's 2 slots.
    expect(standing[0].retryAfterSeconds).toBe(30);
    expect(standing[1].retryAfterSeconds).toBe(30);
    expect(new Date(standing[0].estimatedStartAt).getTime()).toBeGreaterThan(Date.now());
    expect((await job(running[0].job.id)).queue).toBeNull();

    // The caller that asked not to wait gets today's refusal.
    const refused = await submit(tree, { queue: false });
    expect(refused.__typename).toBe('ConcurrencyLimitError');

    // A slot frees: the first in the queue starts (forwarded by the dispatcher); the second moves up.
    expect(h.sim.completeNow(running[0].job.upstreamIds[0])).toBe(true);
    await waitFor(async () => (await statusOf(third.job.id)) === 'SUBMITTED', 20_000);
    expect((await job(fourth.job.id)).queue.position).toBe(1);
    expect((await statusOf(fourth.job.id))).toBe('QUEUED');
    await expectCountersEqualLedger(h.services.db);
  });

  it('a queued job counts against a rate limit once, at its admission: its dispatch counts nothing again', async () => {
    const tree = await createTree(h, { name: 'Rated', concurrencyLimit: 1 });
    const policy = await h.gql(`mutation($input: SetUnitPolicyInput!) { setUnitPolicy(input: $input) { __typename } }`, {
      input: { orgUnitId: tree.teamId, jobsPerMinute: 2 },
    });
    expect(policy.data.setUnitPolicy.__typename).toBe('SetUnitPolicyPayload');
    const running = await submit(tree);
    const queued = await submit(tree);
    expect(queued.job.status).toBe('QUEUED');
    // The queued job was admitted: it took the second of the 2 jobs per minute.
    expect((await submit(tree)).__typename).toBe('RateLimitedError');
    expect(h.sim.completeNow(running.job.upstreamIds[0])).toBe(true);
    await waitFor(async () => (await statusOf(queued.job.id)) === 'SUBMITTED', 20_000);
    const [counted] = await queryRows<{ n: number }>(
      h.services.db,
      sql`select coalesce(sum(amount), 0)::int as n from rate_buckets where scope = ${`unit:${decodeGlobalID(tree.teamId).id}/jobs`}`,
    );
    expect(Number(counted!.n)).toBe(2);
    await expectCountersEqualLedger(h.services.db);
  });

  it('a queued job can be cancelled: its hold is released and its end is announced like any other', async () => {
    const tree = await createTree(h, { name: 'Cancel', concurrencyLimit: 1 });
    await submit(tree);
    const queued = await submit(tree);
    expect(queued.job.status).toBe('QUEUED');
    const res = await h.gql(CANCEL, { input: { jobId: queued.job.id } });
    expect(res.data.cancelJob).toMatchObject({ __typename: 'CancelJobPayload', job: { status: 'CANCELLED', reservedCreditSeconds: '0' } });
    expect(await finishedEvents(queued.job.id)).toBe(1);
    await expectCountersEqualLedger(h.services.db);
  });

  it('a job waiting past QUEUE_TTL_SECONDS expires: hold released, job.finished written; a running job is left alone', async () => {
    const tree = await createTree(h, { name: 'Expiry', concurrencyLimit: 1 });
    const running = await submit(tree);
    const queued = await submit(tree);
    expect(queued.job.status).toBe('QUEUED');
    // The expiry pass as it runs an hour later (QUEUE_TTL_SECONDS defaults to 3600).
    await expireQueuedJobs(h.services.jobDeps, h.services.config.queue, new Date(Date.now() + 3600_000 + 1000));
    const expired = await job(queued.job.id);
    expect(expired).toMatchObject({ status: 'EXPIRED', failureCode: 'queue_expired', reservedCreditSeconds: '0', queue: null });
    expect(await finishedEvents(queued.job.id)).toBe(1);
    expect(['SUBMITTED', 'PROCESSING']).toContain(await statusOf(running.job.id));
    // Nothing was sent for it: no drift note says HeyGen may bill it.
    const [note] = await queryRows<{ n: number }>(h.services.db, sql`select count(*)::int as n from drift_notes where job_id = ${decodeGlobalID(queued.job.id).id}`);
    expect(Number(note!.n)).toBe(0);
    await expectCountersEqualLedger(h.services.db);
  });

  it("HeyGen's own 429 (its slots used by other clients of the key) sends the job back to the queue, not to failure", async () => {
    const tree = await createTree(h, { name: 'Small', apiKey: SMALL_KEY, concurrencyLimit: 3 });
    const first = await submit(tree);
    expect(first.job.status).toBe('SUBMITTED');
    // The gateway sees a free slot; HeyGen does not.
    const second = await submit(tree);
    expect(second.job.status).toBe('QUEUED');
    const [row] = await queryRows<{ submit_attempts: number; next_check_at: Date }>(
      h.services.db,
      sql`select submit_attempts, next_check_at from jobs where id = ${decodeGlobalID(second.job.id).id}`,
    );
    expect(row!.submit_attempts).toBeGreaterThanOrEqual(1);
    expect(h.sim.stats().rateLimited.concurrency).toBeGreaterThan(0);
    // Once HeyGen's slot is free, the dispatcher sends it again and HeyGen takes it.
    expect(h.sim.completeNow(first.job.upstreamIds[0])).toBe(true);
    await waitFor(async () => (await statusOf(second.job.id)) === 'SUBMITTED', 20_000);
    expect(h.sim.stats().maxInFlight[SMALL_KEY]).toBe(1);
    await expectCountersEqualLedger(h.services.db);
  });
});

describe('concurrency shares', () => {
  it('ADMIN and FINANCE set weight, minimum and maximum per unit; bad values are refused; others may not', async () => {
    const tree = await createTree(h, { name: 'Shares', concurrencyLimit: 6 });
    const set = (shares: unknown[], token?: string) => h.gql(SET_SHARES, { input: { accountId: tree.accountId, shares } }, token);
    const ok = await set([
      { orgUnitId: tree.teamId, weight: 2, minSlots: 1, maxSlots: 5 },
      { orgUnitId: tree.otherTeamId, weight: 1 },
    ]);
    expect(ok.data.setConcurrencyShares.__typename).toBe('SetConcurrencySharesPayload');
    expect(ok.data.setConcurrencyShares.shares).toHaveLength(2);
    expect(ok.data.setConcurrencyShares.account.concurrencyShares.map((s: { weight: number }) => s.weight).sort()).toEqual([1, 2]);

    for (const bad of [
      [{ orgUnitId: tree.teamId, weight: 0 }],
      [{ orgUnitId: tree.teamId, weight: 1, minSlots: 2, maxSlots: 1 }],
      [{ orgUnitId: tree.teamId, weight: 1, minSlots: 4 }, { orgUnitId: tree.otherTeamId, weight: 1, minSlots: 3 }],
      [{ orgUnitId: tree.orgId, weight: 1 }],
    ]) {
      expect((await set(bad)).data.setConcurrencyShares.__typename).toBe('ValidationError');
    }
    const service = (await issueServiceToken(h, tree.projectId)).token;
    const denied = await set([{ orgUnitId: tree.teamId, weight: 3 }], service);
    expect(denied.errors?.[0]?.extensions?.code ?? denied.data?.setConcurrencyShares?.code).toBe('FORBIDDEN');
  });

  it('a unit at its maximum gets no more slots while others wait; below it, weights decide', async () => {
    const tree = await createTree(h, { name: 'Maximum', concurrencyLimit: 4 });
    await h.gql(SET_SHARES, {
      input: { accountId: tree.accountId, shares: [{ orgUnitId: tree.teamId, weight: 100, maxSlots: 2 }, { orgUnitId: tree.otherTeamId, weight: 1 }] },
    });
    const heavy = [await submit(tree), await submit(tree)];
    // The heavy team runs 2, its maximum: its next job waits though slots are free, and the light team's take them.
    const heavyWaiting = await submit(tree);
    expect(heavyWaiting.job.status).toBe('QUEUED');
    const lightRunning = [await submit(tree, {}, tree.otherProjectId), await submit(tree, {}, tree.otherProjectId)];
    for (const r of lightRunning) expect(r.job.status).toBe('SUBMITTED');
    const light = [await submit(tree, {}, tree.otherProjectId), await submit(tree, {}, tree.otherProjectId)];
    for (const q of light) expect(q.job.status).toBe('QUEUED');
    // A slot frees: by weight (100 to 1) it would be the heavy team's, but the heavy team runs its maximum, so the
    // light team's later job gets it.
    h.sim.completeNow(lightRunning[0].job.upstreamIds[0]);
    await waitFor(async () => (await statusOf(light[0].job.id)) === 'SUBMITTED', 20_000);
    expect(await statusOf(heavyWaiting.job.id)).toBe('QUEUED');
    // Another, the heavy team's: below its maximum, its slot-seconds per 100 of weight against the light team's per 1,
    // the heavy team's waiting job gets it.
    h.sim.completeNow(heavy[0].job.upstreamIds[0]);
    await waitFor(async () => (await statusOf(heavyWaiting.job.id)) === 'SUBMITTED', 20_000);
    expect(await statusOf(light[1].job.id)).toBe('QUEUED');
    await expectCountersEqualLedger(h.services.db);
  });

  it("a unit under its guaranteed minimum goes first, whatever the weights", async () => {
    const tree = await createTree(h, { name: 'Minimum', concurrencyLimit: 3 });
    await h.gql(SET_SHARES, {
      input: { accountId: tree.accountId, shares: [{ orgUnitId: tree.teamId, weight: 100 }, { orgUnitId: tree.otherTeamId, weight: 1, minSlots: 2 }] },
    });
    const heavy = [await submit(tree), await submit(tree)];
    await submit(tree, {}, tree.otherProjectId);
    const heavyWaiting = await submit(tree);
    const lightWaiting = await submit(tree, {}, tree.otherProjectId);
    for (const q of [heavyWaiting, lightWaiting]) expect(q.job.status).toBe('QUEUED');
    // By weight (100 to 1) the heavy team would win, but the light team runs 1 of its guaranteed 2.
    h.sim.completeNow(heavy[0].job.upstreamIds[0]);
    await waitFor(async () => (await statusOf(lightWaiting.job.id)) === 'SUBMITTED', 20_000);
    expect(await statusOf(heavyWaiting.job.id)).toBe('QUEUED');
    await expectCountersEqualLedger(h.services.db);
  });
});

// The queue's order holds for newcomers too: a free slot that a waiting job is due to take is not taken by a job that
// arrives after it, whether it may wait or not; one that no waiting job may take (their units at their maximum) is.
// No dispatcher runs here (workers off): the state between a slot freeing and the dispatch is held still, and the
// dispatch is a call. A slot frees when a running job is settled, at a fixed instant.
describe('newcomers and free slots', () => {
  let w: Harness;
  beforeAll(async () => {
    w = await startHarness({ workers: false, sim: { autoComplete: false }, env: { QUEUE_DEFAULT_RUN_SECONDS: '30' } });
  });
  afterAll(async () => w?.close());

  const send = async (tree: Tree, queue: boolean, projectId = tree.projectId) => {
    const res = await w.gql(SUBMIT.replace('retryAfterSeconds }', 'retryAfterSeconds limit inFlight waiting }'), {
      input: { projectId, kind: 'AVATAR_VIDEO', request: avatarRequest(), queue },
    });
    expect(res.errors).toBeUndefined();
    return res.data.submitJob;
  };
  const rawId = (id: string) => decodeGlobalID(id).id;
  const statusIn = async (id: string) => {
    const [row] = await queryRows<{ status: string }>(w.services.db, sql`select status::text as status from jobs where id = ${rawId(id)}`);
    return row!.status;
  };
  // A running job ends now, `runSeconds` after HeyGen took it (the account's measured run time for estimates).
  const finish = async (id: string, runSeconds: number) => {
    const end = new Date();
    await queryRows(w.services.db, sql`update jobs set submitted_at = ${new Date(end.getTime() - runSeconds * 1000)} where id = ${rawId(id)}`);
    const settled = await settleJob(w.services.db, rawId(id), { type: 'expired', reason: 'hold_expired', message: 'ended for the test' }, end);
    expect(settled.changed).toBe(true);
  };
  const setShares = (tree: Tree, shares: unknown[]) => mustMutate(w, SET_SHARES, { input: { accountId: tree.accountId, shares } }, 'setConcurrencyShares');
  const dispatch = (tree: Tree) => dispatchAccount(w.services.jobDeps, w.services.queue, rawId(tree.accountId));

  it('(a) a freed slot due to a waiting job goes to it: a newcomer that may not wait is refused with the wait it would have, one that may wait queues behind', async () => {
    const tree = await createTree(w, { name: 'Newcomers', concurrencyLimit: 2 });
    // Video is guaranteed 1 slot: when it runs none and a job of it waits, the next free slot is Video's.
    await setShares(tree, [{ orgUnitId: tree.teamId, weight: 1, minSlots: 1 }]);
    const video = await send(tree, true);
    const social = await send(tree, true, tree.otherProjectId);
    expect([video.job.status, social.job.status]).toEqual(['SUBMITTED', 'SUBMITTED']);
    const waiting = await send(tree, true);
    expect(waiting.job.status).toBe('QUEUED');
    // Video's running job ends after 60 s: a slot is free, and Video's waiting job is due to take it (Video runs 0 of
    // its guaranteed 1).
    await finish(video.job.id, 60);

    // Refused, whichever unit asks: the same project (behind it in admission order) or the sibling team.
    for (const projectId of [tree.projectId, tree.otherProjectId]) {
      const refused = await send(tree, false, projectId);
      expect(refused).toMatchObject({ __typename: 'ConcurrencyLimitError', code: 'CONCURRENCY_LIMIT', limit: 2, inFlight: 1, waiting: 1 });
      expect(refused.message).toContain('waiting in its queue');
    }
    // The honest wait, Job.queue's estimate for the same newcomer queued: for the same project, the waiting job and
    // itself on Video's 1 slot (its half of 2), each after the account's measured run time (60 s): 120 s.
    expect((await send(tree, false)).retryAfterSeconds).toBe(120);
    // One that may wait queues behind the waiting one and starts after it.
    const behind = await send(tree, true);
    expect(behind.job.status).toBe('QUEUED');
    expect((await w.gql(QUEUED_JOB, { id: behind.job.id })).data.job.queue.position).toBe(2);
    expect(await statusIn(waiting.job.id)).toBe('QUEUED');

    // The dispatcher gives the slot to the waiting job; the account is full again.
    expect(await dispatch(tree)).toBe(1);
    expect(await statusIn(waiting.job.id)).toBe('SUBMITTED');
    expect(await statusIn(behind.job.id)).toBe('QUEUED');
    expect(await send(tree, false, tree.otherProjectId)).toMatchObject({ __typename: 'ConcurrencyLimitError', inFlight: 2, waiting: 1 });
    await expectCountersEqualLedger(w.services.db);
  });

  it("(b, c) jobs held back by their unit's maximum do not keep another unit's newcomer from a free slot, waiting or not; the maximum holds for newcomers too", async () => {
    const tree = await createTree(w, { name: 'Held back', concurrencyLimit: 4 });
    await setShares(tree, [{ orgUnitId: tree.teamId, weight: 10, maxSlots: 1 }]);
    const first = await send(tree, true);
    expect(first.job.status).toBe('SUBMITTED');
    // Video is at its maximum: its next jobs wait although the account has 3 free slots, and one that may not wait
    // is refused.
    const held = [await send(tree, true), await send(tree, true)];
    for (const q of held) expect(q.job.status).toBe('QUEUED');
    expect(await send(tree, false)).toMatchObject({ __typename: 'ConcurrencyLimitError', limit: 4, inFlight: 1, waiting: 2 });

    // (b) Social's newcomer that may not wait takes a free slot: no waiting job may.
    const now = await send(tree, false, tree.otherProjectId);
    expect(now).toMatchObject({ __typename: 'SubmitJobPayload', job: { status: 'SUBMITTED' } });
    // (c) So does one that may wait: it starts at once, it does not queue behind jobs that cannot start.
    const atOnce = await send(tree, true, tree.otherProjectId);
    expect(atOnce).toMatchObject({ __typename: 'SubmitJobPayload', job: { status: 'SUBMITTED' } });
    // The dispatcher agrees: nothing of the queue may start.
    expect(await dispatch(tree)).toBe(0);

    // Video's running job ends: the slot is the first held job's, not a newcomer's (Social runs 2, a free slot left
    // over is left to whoever may take it).
    await finish(first.job.id, 30);
    expect(await send(tree, false)).toMatchObject({ __typename: 'ConcurrencyLimitError' });
    expect(await dispatch(tree)).toBe(1);
    expect(await statusIn(held[0]!.job.id)).toBe('SUBMITTED');
    expect(await statusIn(held[1]!.job.id)).toBe('QUEUED');
    expect((await send(tree, false, tree.otherProjectId)).job.status).toBe('SUBMITTED');
    await expectCountersEqualLedger(w.services.db);
  });

  it('concurrent newcomers: with one free slot due to a waiting job none takes it; with free slots no waiting job may take, exactly those are taken', async () => {
    const tree = await createTree(w, { name: 'Crowd', concurrencyLimit: 3 });
    await setShares(tree, [{ orgUnitId: tree.teamId, weight: 1, minSlots: 1, maxSlots: 1 }]);
    const running = await send(tree, true);
    const held = await send(tree, true);
    expect([running.job.status, held.job.status]).toEqual(['SUBMITTED', 'QUEUED']);
    // Video at its maximum: Social's 20 simultaneous newcomers share the 2 free slots, exactly.
    const crowd = await Promise.all(Array.from({ length: 20 }, () => send(tree, false, tree.otherProjectId)));
    expect(crowd.filter((r) => r.__typename === 'SubmitJobPayload')).toHaveLength(2);
    expect(crowd.filter((r) => r.__typename === 'ConcurrencyLimitError')).toHaveLength(18);
    // Video's job ends: the freed slot is due to its waiting job (Video runs 0 of its guaranteed 1), and 20
    // simultaneous newcomers of both units leave it.
    await finish(running.job.id, 30);
    const second = await Promise.all(Array.from({ length: 20 }, (_, i) => send(tree, false, i % 2 ? tree.projectId : tree.otherProjectId)));
    expect(second.every((r) => r.__typename === 'ConcurrencyLimitError')).toBe(true);
    expect(await dispatch(tree)).toBe(1);
    expect(await statusIn(held.job.id)).toBe('SUBMITTED');
    await expectCountersEqualLedger(w.services.db);
  });
});

describe('on the embedded PGlite of the demo', () => {
  let e: Harness;
  beforeAll(async () => {
    e = await startHarness({ embedded: true, sim: { autoComplete: false }, env: { QUEUE_INTERVAL_MS: '50' } });
  });
  afterAll(async () => e?.close());

  it('a queued job starts when the running one ends', async () => {
    const tree = await createTree(e, { name: 'Embedded', concurrencyLimit: 1 });
    const send = async () => (await e.gql(SUBMIT, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } })).data.submitJob;
    const first = await send();
    const second = await send();
    expect([first.job.status, second.job.status]).toEqual(['SUBMITTED', 'QUEUED']);
    expect(e.sim.completeNow(first.job.upstreamIds[0])).toBe(true);
    await waitFor(async () => (await e.gql(QUEUED_JOB, { id: second.job.id })).data.job.status === 'SUBMITTED', 20_000);
    await expectCountersEqualLedger(e.services.db);
  });
});
