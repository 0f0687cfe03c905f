// The `moneyEvents` subscription across processes (docs/notifications.md, "Reading events"): two gateways on one
// database; jobs go through A (which forwards and settles them), subscribers sit on B. An event is announced by
// `NOTIFY gateway_money_event` at its commit; each process turns it into a live signal for the event's unit path.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { startHarness, waitFor, type Harness } from './support/harness.js';
import { avatarRequest, createTree, issueServiceToken, mustMutate, SUBMIT, type Tree } from './support/fixtures.js';
import { subscribe, type Subscription } from './support/sse.js';
import { recordMoneyEvent, type MoneyEventKind } from '../src/notifications/events.js';

const MONEY_EVENTS = `subscription($u: ID!, $kinds: [MoneyEventKind!]) { moneyEvents(orgUnitId: $u, kinds: $kinds) { id kind occurredAt orgUnit { id } data } }`;

let a: Harness;
let b: Harness;
let tree: Tree;
const tokens: Record<string, string> = {};
const raw = (globalId: string) => decodeGlobalID(globalId).id;

/** An event written on A as its cause would write it (a marker: what a stream must see next). */
async function mark(kind: MoneyEventKind, unitGlobalId: string, key: string) {
  await a.services.db.transaction((tx) => recordMoneyEvent(tx, { kind, dedupeKey: key, orgUnitId: raw(unitGlobalId), data: { marker: key } }));
}

async function nextEvent(sub: Subscription) {
  const event = await sub.next(15_000);
  expect(event.errors).toBeUndefined();
  return event.data.moneyEvents;
}

beforeAll(async () => {
  a = await startHarness();
  b = await startHarness({ databaseUrl: a.database.url, workers: false, env: { GATEWAY_MASTER_KEY: a.config.masterKey! } });
  tree = await createTree(a);
  const issue = a.services.tokens.issueOperatorToken;
  tokens.member = await issue({ name: 'mel', role: 'MEMBER', unitId: raw(tree.teamId) });
  tokens.otherMember = await issue({ name: 'olga', role: 'MEMBER', unitId: raw(tree.otherTeamId) });
}, 60_000);
afterAll(async () => {
  await b?.close();
  await a?.close();
});

describe('moneyEvents subscription', () => {
  it('an event caused through A reaches a subscriber of its subtree on B; another subtree and other kinds see nothing', async () => {
    const own = await subscribe(b.url, MONEY_EVENTS, { u: tree.teamId, kinds: ['JOB_FINISHED'] }, tokens.member!);
    // The sibling team's member, on the department above both teams (a unit it may read).
    const other = await subscribe(b.url, MONEY_EVENTS, { u: tree.deptId }, tokens.otherMember!);
    const pools = await subscribe(b.url, MONEY_EVENTS, { u: tree.teamId, kinds: ['POOL_CROSSED'] }, tokens.member!);
    await waitFor(async () => b.services.live.count() >= 3);

    const res = await a.gql(SUBMIT, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } });
    expect(res.data.submitJob.__typename).toBe('SubmitJobPayload');
    const jobId = raw(res.data.submitJob.job.id);
    const finished = await nextEvent(own);
    expect(finished).toMatchObject({ kind: 'JOB_FINISHED', orgUnit: { id: tree.projectId }, data: { jobId, status: 'SUCCEEDED' } });

    // Markers written after the job's event: each stream's next event is its marker, so nothing came before it.
    await mark('job.finished', tree.otherProjectId, 'other-marker');
    await mark('pool.crossed', tree.projectId, 'pool-marker');
    expect(await nextEvent(other)).toMatchObject({ kind: 'JOB_FINISHED', orgUnit: { id: tree.otherProjectId }, data: { marker: 'other-marker' } });
    expect(await nextEvent(pools)).toMatchObject({ kind: 'POOL_CROSSED', data: { marker: 'pool-marker' } });
    // The team's JOB_FINISHED stream never saw the sibling's event nor the other kind.
    await mark('job.finished', tree.projectId, 'own-marker');
    expect(await nextEvent(own)).toMatchObject({ data: { marker: 'own-marker' } });
    for (const s of [own, other, pools]) s.close();
  }, 40_000);

  it('a unit of another subtree is the same NOT_FOUND as one that does not exist', async () => {
    for (const u of [tree.teamId, Buffer.from('OrgUnit:00000000-0000-4000-8000-000000000001').toString('base64')]) {
      const sub = await subscribe(b.url, MONEY_EVENTS, { u }, tokens.otherMember!);
      const event = await sub.next();
      await sub.ended;
      expect(event.errors.map((e: any) => e.extensions?.code)).toEqual(['NOT_FOUND']);
      expect(sub.events.map((e) => e.event)).toEqual(['next', 'complete']);
    }
  });

  it("a service token's streams end when it is revoked through the other process", async () => {
    const app = await issueServiceToken(a, tree.projectId, 'live-app');
    const sub = await subscribe(b.url, MONEY_EVENTS, { u: tree.projectId }, app.token);
    await waitFor(async () => b.services.live.count() >= 1);
    await mark('job.finished', tree.projectId, 'before-revocation');
    expect(await nextEvent(sub)).toMatchObject({ data: { marker: 'before-revocation' } });
    await mustMutate(
      a,
      `mutation($input: RevokeServiceTokenInput!) { revokeServiceToken(input: $input) { __typename ... on Error { message code } } }`,
      { input: { serviceTokenId: app.id } },
      'revokeServiceToken',
    );
    await sub.ended;
    expect(sub.events.map((e) => e.event)).toEqual(['next', 'complete']);
  });
});
