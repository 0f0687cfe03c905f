// Live updates: GraphQL subscriptions over SSE, published by PostgreSQL NOTIFY from the writing transaction, heard
// by every gateway process. Two gateways on one database: jobs go through A (which forwards and settles them);
// subscribers sit on B.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { startHarness, waitFor, type Harness } from './support/harness.js';
import { avatarRequest, createTree, setBudget, SUBMIT, type Tree } from './support/fixtures.js';
import { subscribe } from './support/sse.js';
import { createLiveHub, parseLiveSignal, publishLive, unitTopic } from '../src/live/hub.js';

const JOB_UPDATED = `subscription($id: ID!) { jobUpdated(id: $id) { id status actualCreditSeconds reservedCreditSeconds settledAt } }`;
const JOBS_UPDATED = `subscription($projectId: ID!) { jobsUpdated(projectId: $projectId) { id status } }`;
const BUDGET_UPDATED = `subscription($orgUnitId: ID!) { budgetUpdated(orgUnitId: $orgUnitId) { id reservedCreditSeconds settledCreditSeconds availableCreditSeconds } }`;
const ORDER = ['RESERVED', 'SUBMIT_UNKNOWN', 'SUBMITTED', 'PROCESSING', 'SUCCEEDED'];

let a: Harness;
let b: Harness;
let tree: Tree;
const tokens: Record<string, string> = {};
const raw = (globalId: string) => decodeGlobalID(globalId).id;

async function submit(): Promise<string> {
  const res = await a.gql(SUBMIT, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } });
  expect(res.data.submitJob.__typename).toBe('SubmitJobPayload');
  return res.data.submitJob.job.id;
}

beforeAll(async () => {
  // The simulator renders for a while: the subscriber on B sees the job in flight before it ends.
  a = await startHarness({ sim: { renderMs: 600 } });
  b = await startHarness({ databaseUrl: a.database.url, workers: false, env: { GATEWAY_MASTER_KEY: a.config.masterKey!, GRAPHQL_MAX_SUBSCRIPTIONS_PER_CALLER: '3' } });
  tree = await createTree(a);
  const issue = a.services.tokens.issueOperatorToken;
  tokens.member = await issue({ name: 'mel', role: 'MEMBER', unitId: raw(tree.teamId) });
  tokens.otherMember = await issue({ name: 'olga', role: 'MEMBER', unitId: raw(tree.otherTeamId) });
  tokens.limited = await issue({ name: 'lim', role: 'MEMBER', unitId: raw(tree.teamId) });
}, 60_000);
afterAll(async () => {
  await b?.close();
  await a?.close();
});

describe('subscriptions across processes', () => {
  it('a job submitted and settled through A is seen moving to its end by a subscriber on B', async () => {
    const project = await subscribe(b.url, JOBS_UPDATED, { projectId: tree.projectId }, tokens.member!);
    const jobId = await submit();
    const one = await subscribe(b.url, JOB_UPDATED, { id: jobId }, tokens.member!);
    const statuses: string[] = [];
    let last: any;
    let receivedAt = 0;
    for (;;) {
      const event = await one.next(15_000);
      if (event === null) break;
      receivedAt = Date.now();
      expect(event.errors).toBeUndefined();
      last = event.data.jobUpdated;
      statuses.push(last.status);
    }
    // The stream completes by itself after the job's end, which it names, settled.
    expect(statuses.at(-1)).toBe('SUCCEEDED');
    expect(one.events.at(-1)!.event).toBe('complete');
    expect(BigInt(last.actualCreditSeconds.replace('.', ''))).toBeGreaterThan(0n);
    expect(last.reservedCreditSeconds).toMatch(/^0(\.0+)?$/);
    // Heard on B within a second of the settlement committed on A (one machine, one clock).
    expect(receivedAt - new Date(last.settledAt).getTime()).toBeLessThan(1_000);
    // Seen in flight first, and never backwards.
    expect(statuses.length).toBeGreaterThanOrEqual(2);
    const ranks = statuses.map((s) => ORDER.indexOf(s));
    expect(ranks.every((r) => r >= 0)).toBe(true);
    expect([...ranks].sort((x, y) => x - y)).toEqual(ranks);
    await one.ended;

    // The project's stream saw the same job reach its end (events may coalesce, never reorder).
    const seen: string[] = [];
    while (seen.at(-1) !== 'SUCCEEDED') {
      const event = await project.next(15_000);
      expect(event.errors).toBeUndefined();
      if (event.data.jobsUpdated.id === jobId) seen.push(event.data.jobsUpdated.status);
    }
    expect(seen.map((s) => ORDER.indexOf(s))).toEqual([...seen.map((s) => ORDER.indexOf(s))].sort((x, y) => x - y));
    project.close();
  }, 40_000);

  it('budgetUpdated on B follows the usage that jobs through A move', async () => {
    await setBudget(a, { orgUnitId: tree.teamId, window: 'MONTHLY', limitCreditSeconds: '100000', enforcement: 'HARD' });
    const sub = await subscribe(b.url, BUDGET_UPDATED, { orgUnitId: tree.teamId }, tokens.member!);
    const first = await sub.next();
    expect(first.errors).toBeUndefined();
    const before = first.data.budgetUpdated[0];
    expect(before).toBeDefined();
    await submit();
    // Events until the job's usage is settled into the team's budget.
    for (;;) {
      const event = await sub.next(15_000);
      expect(event.errors).toBeUndefined();
      const now = event.data.budgetUpdated[0];
      if (now.settledCreditSeconds !== before.settledCreditSeconds && /^0(\.0+)?$/.test(now.reservedCreditSeconds)) break;
    }
    sub.close();
  }, 40_000);

  it('a caller from another subtree gets the same NOT_FOUND as for an id that does not exist', async () => {
    const jobId = await submit();
    const outcome = async (query: string, variables: Record<string, unknown>, token: string) => {
      const sub = await subscribe(b.url, query, variables, token);
      const event = await sub.next();
      await sub.ended;
      return { data: event.data, codes: event.errors?.map((e: any) => e.extensions?.code), events: sub.events.map((e) => e.event) };
    };
    const unknownJob = Buffer.from('Job:00000000-0000-4000-8000-000000000001').toString('base64');
    for (const [query, variables] of [
      [JOB_UPDATED, { id: jobId }],
      [JOBS_UPDATED, { projectId: tree.projectId }],
      [BUDGET_UPDATED, { orgUnitId: tree.teamId }],
    ] as const) {
      const refused = await outcome(query, variables, tokens.otherMember!);
      expect(refused.codes).toEqual(['NOT_FOUND']);
      expect(refused.data ?? null).toBeNull();
      expect(refused.events).toEqual(['next', 'complete']);
    }
    const unknown = await outcome(JOB_UPDATED, { id: unknownJob }, tokens.member!);
    expect(unknown.codes).toEqual(['NOT_FOUND']);
    // The member of the other team never hears of the job, even while it moves (subscribed to its own project).
    const own = await subscribe(b.url, JOBS_UPDATED, { projectId: tree.otherProjectId }, tokens.otherMember!);
    await waitFor(async () => (await a.gql(`query($id: ID!) { job(id: $id) { status } }`, { id: jobId })).data.job.status === 'SUCCEEDED', 15_000);
    own.close();
    expect(own.events.filter((e) => e.event === 'next')).toEqual([]);
  }, 40_000);

  it('limits open subscriptions per caller, and frees the slot when one is closed', async () => {
    const open = await Promise.all([0, 1, 2].map(() => subscribe(b.url, BUDGET_UPDATED, { orgUnitId: tree.teamId }, tokens.limited!)));
    await Promise.all(open.map((s) => s.next()));
    const refused = await subscribe(b.url, BUDGET_UPDATED, { orgUnitId: tree.teamId }, tokens.limited!);
    const event = await refused.next();
    expect(event.errors.map((e: any) => e.extensions.code)).toEqual(['VALIDATION_FAILED']);
    open[0]!.close();
    await waitFor(async () => b.services.live.count() <= 2);
    const again = await subscribe(b.url, BUDGET_UPDATED, { orgUnitId: tree.teamId }, tokens.limited!);
    expect((await again.next()).errors).toBeUndefined();
    for (const s of [...open.slice(1), again]) s.close();
  });

  it('the generic hook: publishLive in a transaction on A reaches a subscriber on B on commit, and a rollback publishes nothing', async () => {
    const unit = raw(tree.teamId);
    const stream = b.services.live.subscribe(unitTopic('money', unit), 'test');
    // B's first stream: B registers as a listener before anything is announced to it.
    await b.services.live.ready();
    const rolledBack = '00000000-0000-4000-8000-00000000000a';
    const committed = '00000000-0000-4000-8000-00000000000b';
    await expect(
      a.services.db.transaction(async (tx) => {
        await publishLive(tx, 'money', rolledBack, [unit]);
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    await a.services.db.transaction((tx) => publishLive(tx, 'money', committed, [unit]));
    expect(await stream.next()).toEqual({ done: false, value: committed });
    await stream.return();
  });

  it('streams end cleanly (complete) when the process shuts its subscriptions down', async () => {
    const c = await startHarness({ databaseUrl: a.database.url, workers: false, env: { GATEWAY_MASTER_KEY: a.config.masterKey! } });
    const sub = await subscribe(c.url, BUDGET_UPDATED, { orgUnitId: tree.teamId }, tokens.member!);
    await sub.next();
    await c.close();
    await sub.ended;
    expect(sub.events.at(-1)!.event).toBe('complete');
  }, 30_000);
});

describe('the hub', () => {
  it('reads only well-formed signals (ids only)', () => {
    expect(parseLiveSignal('{"k":"job","id":"8f0c6c4e-0000-4000-8000-000000000000","u":["x1"]}')).toEqual({
      kind: 'job',
      id: '8f0c6c4e-0000-4000-8000-000000000000',
      units: ['x1'],
    });
    for (const bad of ['', 'null', '{"k":"Job;drop","id":"1"}', '{"k":"job"}', '{"k":"job","id":"' + 'x'.repeat(65) + '"}']) {
      expect(parseLiveSignal(bad)).toBeNull();
    }
  });

  it('coalesces a slow subscriber\'s pending ids, resyncs entity topics, and completes streams on close', async () => {
    const hub = createLiveHub({ maxPerOwner: 2 });
    const job = hub.subscribe('job:j1', 'me', ['j1']);
    const project = hub.subscribe('job@p1', 'me');
    expect(() => hub.subscribe('job@p1', 'me')).toThrow(/at most 2/);
    expect(hub.subscribe('job@p1', 'you')).toBeDefined();
    expect([hub.wants('job'), hub.wants('money')]).toEqual([true, false]);
    expect(await job.next()).toEqual({ done: false, value: 'j1' });
    for (let i = 0; i < 3; i++) hub.dispatch({ kind: 'job', id: 'j1', units: ['p1'] });
    hub.dispatch({ kind: 'job', id: 'j2', units: ['p1'] });
    hub.dispatch({ kind: 'job', id: 'j3', units: ['p2'] });
    expect(await job.next()).toEqual({ done: false, value: 'j1' });
    expect(await project.next()).toEqual({ done: false, value: 'j1' });
    expect(await project.next()).toEqual({ done: false, value: 'j2' });
    hub.resync();
    expect(await job.next()).toEqual({ done: false, value: 'j1' });
    const waiting = project.next();
    hub.close();
    expect(await waiting).toEqual({ done: true, value: undefined });
    expect(await job.next()).toEqual({ done: true, value: undefined });
    expect(hub.count()).toBe(0);
    expect(() => hub.subscribe('job:j1', 'me')).toThrow(/shutting down/);
  });
});
