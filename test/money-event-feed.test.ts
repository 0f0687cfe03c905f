// The money-event feed (docs/notifications.md, "Reading events"): the `moneyEvents` query, newest first, paged, of a
// unit's subtree, showing a caller only the events of units whose costs it may read.
import { decodeGlobalID } from '@pothos/plugin-relay';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness.js';
import { createTree, issueServiceToken, type Tree } from './support/fixtures.js';
import { queryRows } from '../src/db/client.js';
import { recordMoneyEvent, type MoneyEventKind } from '../src/notifications/events.js';

const FEED = `query($u: ID!, $kinds: [MoneyEventKind!], $first: Int, $after: String, $last: Int, $before: String) {
  moneyEvents(orgUnitId: $u, kinds: $kinds, first: $first, after: $after, last: $last, before: $before) {
    edges { cursor node { id kind occurredAt orgUnit { id } data } }
    pageInfo { hasNextPage hasPreviousPage endCursor startCursor }
  }
}`;

let h: Harness;
let tree: Tree;
const tokens: Record<string, string> = {};
const raw = (globalId: string) => decodeGlobalID(globalId).id;
/** Event ids by where they happened, each list in the order written. */
const written: Record<'project' | 'team' | 'otherProject' | 'dept' | 'org', string[]> = { project: [], team: [], otherProject: [], dept: [], org: [] };
const order: string[] = [];

/** One event in a transaction of its own (as its cause would write it); returns its id. */
async function record(kind: MoneyEventKind, unitGlobalId: string, key: string): Promise<string> {
  await h.services.db.transaction((tx) => recordMoneyEvent(tx, { kind, dedupeKey: key, orgUnitId: raw(unitGlobalId), data: { note: key } }));
  const [row] = await queryRows<{ id: string }>(h.services.db, sql`select id from outbox_events where topic = 'money_event' and dedupe_key = ${`${kind}:${key}`}`);
  order.push(row!.id);
  return row!.id;
}

async function feed(token: string, variables: Record<string, unknown>) {
  const res = await h.gql(FEED, variables, token);
  return { errors: res.errors, connection: res.data?.moneyEvents, ids: (res.data?.moneyEvents?.edges ?? []).map((e: any) => e.node.id) as string[] };
}

/** The expected feed: the given events, newest first. */
const newestFirst = (...lists: string[][]) => order.filter((id) => lists.some((l) => l.includes(id))).reverse();

beforeAll(async () => {
  h = await startHarness({ workers: false });
  tree = await createTree(h);
  const issue = h.services.tokens.issueOperatorToken;
  tokens.admin = h.adminToken;
  tokens.finance = await issue({ name: 'fiona', role: 'FINANCE' });
  tokens.member = await issue({ name: 'mel', role: 'MEMBER', unitId: raw(tree.teamId) });
  tokens.otherMember = await issue({ name: 'olga', role: 'MEMBER', unitId: raw(tree.otherTeamId) });
  tokens.manager = await issue({ name: 'max', role: 'MANAGER', unitId: raw(tree.deptId) });
  tokens.service = (await issueServiceToken(h, tree.projectId, 'feed-app')).token;
  // Interleaved, so that each caller's feed is a strict subsequence of the whole.
  for (let i = 0; i < 5; i++) {
    written.project.push(await record('job.finished', tree.projectId, `p${i}`));
    if (i < 2) written.otherProject.push(await record('job.finished', tree.otherProjectId, `o${i}`));
    if (i === 1) written.team.push(await record('budget.threshold_crossed', tree.teamId, 'team80'));
    if (i === 2) written.dept.push(await record('budget.threshold_crossed', tree.deptId, 'dept50'));
    if (i === 3) written.org.push(await record('pool.crossed', tree.orgId, 'pool'));
  }
}, 60_000);
afterAll(async () => {
  await h?.close();
});

describe('moneyEvents', () => {
  it('lists the events of the subtree, newest first, with their facts', async () => {
    const all = await feed(tokens.admin!, { u: tree.deptId, first: 50 });
    expect(all.errors).toBeUndefined();
    expect(all.ids).toEqual(newestFirst(written.project, written.team, written.otherProject, written.dept));
    const times = all.connection.edges.map((e: any) => Date.parse(e.node.occurredAt));
    expect([...times].sort((x, y) => y - x)).toEqual(times);
    const team = all.connection.edges.find((e: any) => e.node.id === written.team[0])!.node;
    expect(team).toMatchObject({ kind: 'BUDGET_THRESHOLD_CROSSED', orgUnit: { id: tree.teamId }, data: { note: 'team80' } });
    // The organization's feed holds the account's events too.
    expect((await feed(tokens.finance!, { u: tree.orgId, first: 50 })).ids).toEqual(
      newestFirst(written.project, written.team, written.otherProject, written.dept, written.org),
    );
    const kinds = await feed(tokens.admin!, { u: tree.orgId, kinds: ['BUDGET_THRESHOLD_CROSSED', 'POOL_CROSSED'] });
    expect(kinds.ids).toEqual(newestFirst(written.team, written.dept, written.org));
  });

  it('shows a caller only the events of units whose costs it may read, whichever unit it asks about', async () => {
    const own = newestFirst(written.project, written.team);
    // A MEMBER of the team: its team and project, never the sibling team's, the department's or the pool's,
    // even through a unit above it that it may read.
    for (const unit of [tree.teamId, tree.deptId, tree.orgId]) expect((await feed(tokens.member!, { u: unit })).ids).toEqual(own);
    expect((await feed(tokens.member!, { u: tree.projectId })).ids).toEqual(newestFirst(written.project));
    expect((await feed(tokens.otherMember!, { u: tree.deptId })).ids).toEqual(newestFirst(written.otherProject));
    // Another subtree is the same NOT_FOUND as a unit that does not exist.
    for (const u of [tree.otherTeamId, Buffer.from('OrgUnit:00000000-0000-4000-8000-000000000001').toString('base64')]) {
      const refused = await feed(tokens.member!, { u });
      expect(refused.errors?.map((e: any) => e.extensions?.code)).toEqual(['NOT_FOUND']);
    }
    // A MANAGER of the department: its whole subtree, not the organization's pool.
    expect((await feed(tokens.manager!, { u: tree.orgId })).ids).toEqual(newestFirst(written.project, written.team, written.otherProject, written.dept));
    // A SERVICE token: its project only.
    expect((await feed(tokens.service!, { u: tree.teamId })).ids).toEqual(newestFirst(written.project));
  });

  it('pages forwards and backwards by cursor without repeats or gaps', async () => {
    const whole = newestFirst(written.project, written.team);
    const seen: string[] = [];
    let after: string | null = null;
    for (let pages = 0; ; pages++) {
      expect(pages).toBeLessThan(10);
      const page = await feed(tokens.member!, { u: tree.teamId, first: 2, after });
      expect(page.errors).toBeUndefined();
      expect(page.ids.length).toBeLessThanOrEqual(2);
      seen.push(...page.ids);
      if (!page.connection.pageInfo.hasNextPage) break;
      after = page.connection.pageInfo.endCursor;
    }
    expect(seen).toEqual(whole);
    const oldest = await feed(tokens.member!, { u: tree.teamId, last: 2 });
    expect(oldest.ids).toEqual(whole.slice(-2));
    const before = await feed(tokens.member!, { u: tree.teamId, last: 2, before: oldest.connection.pageInfo.startCursor });
    expect(before.ids).toEqual(whole.slice(-4, -2));
    // A cursor of another subtree's event positions nothing the caller could not see.
    const other = await feed(tokens.member!, { u: tree.teamId, after: written.otherProject[0] });
    expect(other.ids).toEqual(whole.filter((id) => order.indexOf(id) < order.indexOf(written.otherProject[0]!)));
    const bad = await feed(tokens.member!, { u: tree.teamId, after: 'not-a-cursor' });
    expect(bad.errors?.map((e: any) => e.extensions?.code)).toEqual(['VALIDATION_FAILED']);
  });
});
