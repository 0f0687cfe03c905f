// Acceptance (docs/notifications.md, "Delivery"): a channel that answers 500 for an hour, or never answers, never
// delays an admission. Admissions only write the event rows (in their own transaction); deliveries run in the
// outbox loop, outside any admission.
//
// The proof is structural first: while one receiver holds a delivery open (it never answers) and another answers
// 500 to every attempt, a series of admissions that keep causing new events (threshold crossings routed to both)
// all complete, and the held delivery is still unanswered when the last one returns. A timing comparison is added
// only as a generous bound (median with failing channels ≤ 3 × the healthy median + 25 ms), so that a loaded
// 2-core machine does not make it flaky: the structural part is what proves admissions do not wait.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, waitFor, type Harness } from './support/harness.js';
import { avatarRequest, createTree, mustMutate, setBudget, type Tree } from './support/fixtures.js';
import { queryRows } from '../src/db/client.js';
import { admitJob } from '../src/jobs/admission.js';
import { startOutboxWorker } from '../src/outbox/worker.js';
import { formatCreditSeconds } from '../src/primitives/money.js';
import type { Actor } from '../src/auth/actor.js';
import type { Periodic } from '../src/background/periodic.js';

const N = 20;
let h: Harness;
let tree: Tree;
let actor: Actor;
let outbox: Periodic;
const raw = (id: string) => decodeGlobalID(id).id;

/** Requests held open, never answered; and the count of 500s answered. */
const hanging: http.ServerResponse[] = [];
let answered500 = 0;
const receiver = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    if (req.url === '/hang') hanging.push(res);
    else {
      answered500++;
      res.statusCode = 500;
      res.end('down');
    }
  });
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** N admissions one after the other on a project; their durations in ms. */
async function admissions(projectId: string): Promise<number[]> {
  const took: number[] = [];
  for (let i = 0; i < N; i++) {
    const started = performance.now();
    await admitJob(h.services.db, actor, { projectId: raw(projectId), kind: 'AVATAR_VIDEO', request: avatarRequest(), estimatedSeconds: null, idempotencyKey: null }, h.services.admission);
    took.push(performance.now() - started);
  }
  return took;
}

/** A SOFT budget on the team whose thresholds (every 10 %) the N admissions cross one after the other. */
async function alertingBudget(teamId: string, holdMicroCs: bigint) {
  const thresholds = Array.from({ length: 10 }, (_x, i) => (i + 1) * 10);
  await setBudget(h, { orgUnitId: teamId, window: 'MONTHLY', limitCreditSeconds: formatCreditSeconds(holdMicroCs * BigInt(N + 1)), enforcement: 'SOFT', alertThresholds: thresholds });
}

beforeAll(async () => {
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  // No job worker (the admitted jobs stay held: only admissions are measured); the outbox loop is started below.
  h = await startHarness({
    workers: false,
    env: { CALLBACK_ALLOW_HTTP: 'true', CALLBACK_ALLOW_PRIVATE: 'true', CALLBACK_TIMEOUT_MS: '120000', CALLBACK_RETRY_BASE_MS: '100', CALLBACK_RETRY_MAX_MS: '200', NOTIFY_MAX_ATTEMPTS: '100' },
  });
  tree = await createTree(h);
  actor = await h.services.tokens.authenticate(h.services.db, h.adminToken);
  for (const [name, path] of [['hangs', '/hang'], ['fails', '/fail']] as const) {
    const channel = await mustMutate(
      h,
      `mutation($input: CreateNotificationChannelInput!) { createNotificationChannel(input: $input) { __typename ... on NotificationChannelPayload { channel { id } } ... on Error { message code } } }`,
      { input: { orgUnitId: tree.otherTeamId, kind: 'WEBHOOK', name, config: { url: `${base}${path}` } } },
      'createNotificationChannel',
    );
    await mustMutate(
      h,
      `mutation($input: CreateNotificationRuleInput!) { createNotificationRule(input: $input) { __typename ... on CreateNotificationRulePayload { rule { id } } ... on Error { message code } } }`,
      { input: { orgUnitId: tree.otherTeamId, channelId: channel.channel.id, eventKinds: ['BUDGET_THRESHOLD_CROSSED'] } },
      'createNotificationRule',
    );
  }
  outbox = startOutboxWorker(h.services.outboxDeps, 50);
}, 60_000);
afterAll(async () => {
  for (const res of hanging) res.destroy();
  await outbox?.stop();
  receiver.closeAllConnections();
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
  await h?.close();
});

describe('a failing channel and admissions', () => {
  it('admissions complete while a delivery hangs and another channel answers 500; their latency stays near the healthy one', async () => {
    // The same budget shape on both teams: the healthy team has no channel, the other team's events go to both.
    const probe = await admitJob(h.services.db, actor, { projectId: raw(tree.projectId), kind: 'AVATAR_VIDEO', request: avatarRequest(), estimatedSeconds: null, idempotencyKey: null }, h.services.admission);
    const hold = probe.job.reservedMicroCs;
    await alertingBudget(tree.teamId, hold);
    await alertingBudget(tree.otherTeamId, hold);
    const healthy = await admissions(tree.projectId);

    // A first crossing on the failing team (3 of 21 holds: 10 %), and wait until its delivery hangs and the other failed.
    for (let i = 0; i < 3; i++) {
      await admitJob(h.services.db, actor, { projectId: raw(tree.otherProjectId), kind: 'AVATAR_VIDEO', request: avatarRequest(), estimatedSeconds: null, idempotencyKey: null }, h.services.admission);
    }
    await waitFor(async () => hanging.length >= 1 && answered500 >= 1, 30_000);
    const failing = await admissions(tree.otherProjectId);

    // Every admission returned while the first delivery is still held open, unanswered.
    expect(failing).toHaveLength(N);
    expect(hanging.length).toBeGreaterThanOrEqual(1);
    expect(hanging[0]!.writableEnded).toBe(false);
    expect(answered500).toBeGreaterThanOrEqual(1);
    // The admissions caused events for both channels (threshold crossings of the failing team), none delivered.
    const [pending] = await queryRows<{ events: number; delivered: number }>(
      h.services.db,
      sql`select count(*) filter (where topic = 'money_event')::int as events,
                 count(*) filter (where topic like 'notify.%' and status = 'DELIVERED')::int as delivered
          from outbox_events where org_unit_id = ${raw(tree.otherTeamId)}::uuid or (topic like 'notify.%' and payload->>'orgUnitId' = ${raw(tree.otherTeamId)})`,
    );
    expect(pending!.events).toBeGreaterThanOrEqual(5);
    expect(pending!.delivered).toBe(0);
    // A generous bound only (see the header): not a benchmark.
    expect(median(failing)).toBeLessThanOrEqual(3 * median(healthy) + 25);
  }, 120_000);
});
