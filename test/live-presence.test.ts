// Live signals are sent only while some process has a subscription open (src/live/presence.ts, migration
// "live_signals_when_listened"): a NOTIFY makes its commit wait for PostgreSQL's one notification-queue lock, so the
// job path's transactions must not take it for nobody. A plain LISTEN connection counts what is announced; a marker
// notified by the test after the work arrives after every notification committed before it (delivery is in commit
// order), so "nothing before the marker" means nothing was announced.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, waitFor, type Harness } from './support/harness.js';
import { createTree, setBudget, SUBMIT, avatarRequest, type Tree } from './support/fixtures.js';
import { subscribe } from './support/sse.js';
import { createLivePresence } from '../src/live/presence.js';
import type { Db } from '../src/db/client.js';

const BUDGET_UPDATED = `subscription($orgUnitId: ID!) { budgetUpdated(orgUnitId: $orgUnitId) { id limitCreditSeconds reservedCreditSeconds } }`;

let h: Harness;
let tree: Tree;
let listener: pg.Client;
let raw: pg.Client;
const heard: { channel: string; payload: string }[] = [];

beforeAll(async () => {
  h = await startHarness({ callbacks: true, sim: { renderMs: 0 } });
  tree = await createTree(h, { name: 'Presence' });
  listener = new pg.Client({ connectionString: h.database.url });
  await listener.connect();
  listener.on('notification', (n) => heard.push({ channel: n.channel, payload: n.payload ?? '' }));
  await listener.query('LISTEN gateway_live');
  await listener.query('LISTEN gateway_money_event');
  raw = new pg.Client({ connectionString: h.database.url });
  await raw.connect();
});

afterAll(async () => {
  await listener?.end();
  await raw?.end();
  await h?.close();
});

const rawId = (globalId: string) => Buffer.from(globalId, 'base64').toString('utf8').split(':')[1]!;
const listeners = async () => (await raw.query<{ n: number }>('select count(*)::int as n from live_listeners where expires_at > now()')).rows[0]!.n;

/** What was announced until now: a marker is notified and awaited; everything heard before it is returned. */
async function announcedSoFar(): Promise<{ channel: string; payload: string }[]> {
  const marker = `marker-${Math.random()}`;
  await raw.query(`select pg_notify('gateway_live', $1)`, [marker]);
  await waitFor(async () => heard.some((n) => n.payload === marker), 10_000, 10);
  const before = heard.splice(0, heard.findIndex((n) => n.payload === marker) + 1);
  return before.slice(0, -1);
}

/** A job submitted through the gateway and followed to its end. */
async function jobToItsEnd(): Promise<string> {
  const res = await h.gql(SUBMIT, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } });
  expect(res.data.submitJob.__typename).toBe('SubmitJobPayload');
  const id = rawId(res.data.submitJob.job.id);
  await waitFor(async () => (await raw.query<{ s: string }>('select status::text as s from jobs where id = $1', [id])).rows[0]?.s === 'SUCCEEDED', 20_000, 20);
  return id;
}

describe('live signals only while someone listens', () => {
  it('with no subscription open, a job announces nothing from its admission to its settlement', async () => {
    expect(await listeners()).toBe(0);
    await announcedSoFar();
    await jobToItsEnd();
    expect(await announcedSoFar()).toEqual([]);
  });

  it('while a subscription is open the job and the usage it moves are announced; once it closes, nothing again', async () => {
    const sub = await subscribe(h.url, BUDGET_UPDATED, { orgUnitId: tree.teamId }, h.adminToken);
    expect(await listeners()).toBe(1);
    await sub.next();
    await announcedSoFar();
    const id = await jobToItsEnd();
    const announced = await announcedSoFar();
    expect(announced.filter((n) => n.channel === 'gateway_live' && JSON.parse(n.payload).k === 'job' && JSON.parse(n.payload).id === id).length).toBeGreaterThan(0);
    expect(announced.filter((n) => n.channel === 'gateway_live' && JSON.parse(n.payload).k === 'budget').length).toBeGreaterThan(0);
    expect(announced.filter((n) => n.channel === 'gateway_money_event').length).toBeGreaterThan(0);
    // The budget's subscriber was told (its next event is the team's usage after the job).
    expect(await sub.next()).toBeTruthy();

    sub.close();
    await waitFor(async () => (await listeners()) === 0, 10_000, 20);
    await announcedSoFar();
    await jobToItsEnd();
    expect(await announcedSoFar()).toEqual([]);
  });

  it('a row its process stopped renewing (the process died) is deleted when another process registers', async () => {
    expect(await listeners()).toBe(0);
    const dead = '00000000-0000-4000-8000-0000000000de';
    await raw.query(`insert into live_listeners (process_id, expires_at) values ($1, now() - interval '1 hour')`, [dead]);
    const sub = await subscribe(h.url, BUDGET_UPDATED, { orgUnitId: tree.teamId }, h.adminToken);
    const rows = (await raw.query<{ id: string }>('select process_id::text as id from live_listeners')).rows.map((r) => r.id);
    expect(rows).toHaveLength(1);
    expect(rows).not.toContain(dead);
    sub.close();
    await waitFor(async () => (await raw.query('select 1 from live_listeners')).rowCount === 0, 10_000, 20);
  });

  it('a change committed by a transaction begun before the first subscription reaches that subscription', async () => {
    expect(await listeners()).toBe(0);
    const { budget } = await setBudget(h, { orgUnitId: tree.projectId, window: 'LIFETIME', enforcement: 'SOFT', limitCreditSeconds: '1000' });
    // A change made by a transaction that looked for listeners before there was one: it announces nothing.
    const other = new pg.Client({ connectionString: h.database.url });
    await other.connect();
    try {
      await other.query('begin');
      await other.query(`update budgets set limit_micro_cs = limit_micro_cs * 2 where id = $1`, [rawId(budget.id)]);
      // The subscription opens only once that transaction has ended: until then it is not answered.
      let opened = false;
      const pending = subscribe(h.url, BUDGET_UPDATED, { orgUnitId: tree.projectId }, h.adminToken).then((s) => {
        opened = true;
        return s;
      });
      await waitFor(async () => (await listeners()) === 1, 10_000, 10);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(opened).toBe(false);
      await other.query('commit');
      const sub = await pending;
      // Its first event is the budget as that transaction left it.
      expect(await sub.next()).toMatchObject({ data: { budgetUpdated: [{ id: budget.id, limitCreditSeconds: '2000' }] } });
      sub.close();
      await waitFor(async () => (await listeners()) === 0, 10_000, 20);
    } finally {
      await other.end();
    }
  });
});

describe('a process that cannot register', () => {
  it('fails its first subscriptions, then registers at a renewal, catches up and is ready', async () => {
    // The gateway's database handle, failing every statement while `down` (the database away).
    let down = true;
    const db = new Proxy(h.services.db, {
      get(target, key, receiver) {
        if (key === 'execute' && down) return () => Promise.reject(new Error('connection refused'));
        return Reflect.get(target, key, receiver) as unknown;
      },
    }) as Db;
    let caughtUp = 0;
    const presence = createLivePresence(db, { ttlMs: 300, catchUpMaxMs: 1_000, logger: h.services.logger, onCaughtUp: () => caughtUp++ });
    try {
      presence.activate();
      await expect(presence.ready()).rejects.toThrow('connection refused');
      expect(caughtUp).toBe(0);
      expect(await listeners()).toBe(0);
      // Back: the next renewal (every 100 ms here) writes the row, waits for the transactions in flight and re-reads.
      down = false;
      await waitFor(async () => caughtUp === 1, 10_000, 20);
      await expect(presence.ready()).resolves.toBeUndefined();
      expect(await listeners()).toBe(1);
      presence.deactivate();
      await waitFor(async () => (await listeners()) === 0, 10_000, 20);
    } finally {
      await presence.close();
    }
  });
});
