// Acceptance (docs/notifications.md, "Delivery"): kill -9 the gateway between the event's commit and its delivery;
// after a restart the event is delivered, exactly once to a receiver that deduplicates on X-Gateway-Delivery-Id,
// at least once to one that does not.
//
// How the kill lands between the two, honestly: gateway A (a child process) claims the delivery and POSTs it; the
// receiver holds that first request open, never answering, and the test SIGKILLs A while it waits. The attempt was
// counted but never finished. Gateway B, started on the same database, takes the row once A's claim (its lease)
// runs out and delivers it; the receiver answers that one.
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, waitFor, type Harness } from './support/harness.js';
import { spawnGateway, type GatewayProcess } from './support/processes.js';
import { createTree, mustMutate, type Tree } from './support/fixtures.js';
import { queryRows } from '../src/db/client.js';
import { recordMoneyEvent } from '../src/notifications/events.js';

interface Arrival {
  headers: http.IncomingHttpHeaders;
  body: string;
}

let h: Harness;
let tree: Tree;
let secret = '';
const gateways: GatewayProcess[] = [];
/** Every request whose body arrived: what a receiver that does not deduplicate processes. */
const arrivals: Arrival[] = [];
/** What a receiver that deduplicates on the delivery id stores. */
const stored = new Map<string, Arrival>();
let holdFirst = true;
const held: http.ServerResponse[] = [];
const receiver = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const arrival = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
    arrivals.push(arrival);
    if (holdFirst) {
      // The first delivery is never answered: its sender dies waiting.
      holdFirst = false;
      held.push(res);
      return;
    }
    const id = String(req.headers['x-gateway-delivery-id']);
    if (!stored.has(id)) stored.set(id, arrival);
    res.end('ok');
  });
});

function signed(a: Arrival): boolean {
  const fields = Object.fromEntries(String(a.headers['x-gateway-signature']).split(',').map((p) => p.split('=', 2)));
  const expected = createHmac('sha256', secret).update(`${fields.t}.${a.body}`).digest();
  const given = Buffer.from(fields.v1 ?? '', 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** A gateway child process on the test's database, delivering the outbox quickly. */
function gateway(): Promise<GatewayProcess> {
  return spawnGateway({
    DATABASE_URL: h.database.url,
    GATEWAY_MASTER_KEY: h.config.masterKey!,
    HEYGEN_BASE_URL: h.sim.url,
    WORKERS_ENABLED: 'true',
    WALLET_SYNC_ENABLED: 'false',
    FORECAST_ALERT_INTERVAL_MS: '0',
    OUTBOX_INTERVAL_MS: '100',
    CALLBACK_ALLOW_HTTP: 'true',
    CALLBACK_ALLOW_PRIVATE: 'true',
    // A short claim: the outbox lease is (CALLBACK_TIMEOUT_MS + HEYGEN_TIMEOUT_MS × HEYGEN_MAX_ATTEMPTS) per
    // round of OUTBOX_CONCURRENCY deliveries + 30 s, so B may take the dead process's row about 32 s after A's claim.
    CALLBACK_TIMEOUT_MS: '1000',
    HEYGEN_TIMEOUT_MS: '1000',
    HEYGEN_MAX_ATTEMPTS: '1',
    OUTBOX_BATCH_SIZE: '1',
    OUTBOX_CONCURRENCY: '1',
    CALLBACK_RETRY_BASE_MS: '100',
    CALLBACK_RETRY_MAX_MS: '200',
  });
}

beforeAll(async () => {
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  // The test's own process only sets things up and commits the event; it delivers nothing.
  h = await startHarness({ workers: false, env: { CALLBACK_ALLOW_HTTP: 'true', CALLBACK_ALLOW_PRIVATE: 'true' } });
  tree = await createTree(h);
  const created = await mustMutate(
    h,
    `mutation($input: CreateNotificationChannelInput!) { createNotificationChannel(input: $input) { __typename ... on NotificationChannelPayload { signingSecret channel { id } } ... on Error { message code } } }`,
    { input: { orgUnitId: tree.teamId, kind: 'WEBHOOK', name: 'crash hook', config: { url } } },
    'createNotificationChannel',
  );
  secret = created.signingSecret;
  await mustMutate(
    h,
    `mutation($input: CreateNotificationRuleInput!) { createNotificationRule(input: $input) { __typename ... on CreateNotificationRulePayload { rule { id } } ... on Error { message code } } }`,
    { input: { orgUnitId: tree.teamId, channelId: created.channel.id, eventKinds: ['JOB_FINISHED'] } },
    'createNotificationRule',
  );
}, 60_000);
afterAll(async () => {
  for (const g of gateways) await g.stop();
  for (const res of held) res.destroy();
  receiver.closeAllConnections();
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
  await h?.close();
});

describe('a gateway killed between the commit and the delivery', () => {
  it('delivers the event after a restart: once to a receiver that deduplicates on the delivery id, at least once to one that does not', async () => {
    const a = await gateway();
    gateways.push(a);
    await h.services.db.transaction((tx) =>
      recordMoneyEvent(tx, { kind: 'job.finished', dedupeKey: 'crash-test', orgUnitId: decodeGlobalID(tree.projectId).id, data: { jobId: null, status: 'SUCCEEDED' } }),
    );
    // A has claimed the delivery and is waiting for the receiver's answer: kill it there.
    await waitFor(async () => arrivals.length >= 1, 30_000);
    a.child.kill('SIGKILL');
    await new Promise<void>((resolve) => (a.child.exitCode !== null || a.child.signalCode !== null ? resolve() : a.child.once('exit', () => resolve())));
    expect(a.child.signalCode).toBe('SIGKILL');
    const delivery = async () =>
      (
        await queryRows<{ id: string; status: string; attempts: number }>(
          h.services.db,
          sql`select id, status, attempts from outbox_events where topic like 'notify.%' and payload->>'kind' = 'job.finished' and payload->'data'->>'status' = 'SUCCEEDED'`,
        )
      )[0];
    // Committed, claimed once, not delivered.
    expect(await delivery()).toMatchObject({ status: 'PENDING', attempts: 1 });

    const b = await gateway();
    gateways.push(b);
    await waitFor(async () => (await delivery())?.status === 'DELIVERED', 90_000, 200);
    const row = (await delivery())!;
    // The plain receiver processed it twice (the request A never saw answered, and B's); the deduplicating one once.
    expect(arrivals.length).toBeGreaterThanOrEqual(2);
    expect(stored.size).toBe(1);
    const ids = new Set(arrivals.map((x) => x.headers['x-gateway-delivery-id']));
    expect([...ids]).toEqual([row.id]);
    expect(new Set(arrivals.map((x) => JSON.parse(x.body).id)).size).toBe(1);
    expect(arrivals.map((x) => x.headers['x-gateway-delivery-attempt'])).toEqual(arrivals.map((_x, i) => String(i + 1)));
    expect(arrivals.every(signed)).toBe(true);
  }, 150_000);
});
