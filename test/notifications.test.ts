// Notification channels and rules, against real PostgreSQL, local receivers and a local SMTP server
// (docs/notifications.md):
// - a team's budget crossing 50 and 100 % reaches the team manager's signed webhook (checked with the receiver's
//   snippet from the docs), after two failed attempts (retried with backoff, the log readable in GraphQL); Slack and
//   Teams receivers get their own message formats; an e-mail arrives at the SMTP server;
// - 50, 80 and 100 % of a budget filled by jobs submitted through GraphQL and forwarded to the simulator reach a signed
//   webhook, Slack and e-mail exactly once each;
// - another subtree's rule never receives the team's events; a MANAGER cannot create a rule for another subtree
//   (NotFoundError) or above its own (ForbiddenError);
// - URLs and secrets never appear in GraphQL answers, logs or the audit trail; master-key rotation re-encrypts them.
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { sql } from 'drizzle-orm';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, waitFor, type Harness } from './support/harness.js';
import { avatarRequest, createTree, mustMutate, setBudget, SUBMIT, type Tree } from './support/fixtures.js';
import { queryRows } from '../src/db/client.js';
import { admitJob } from '../src/jobs/admission.js';
import { runOutboxOnce } from '../src/outbox/worker.js';
import { formatCreditSeconds, parseCreditSeconds } from '../src/primitives/money.js';
import { createSecretBox, generateMasterKey } from '../src/secrets/secret-box.js';
import { rotateMasterKey } from '../src/custody/rotation.js';
import { decryptChannelSecret } from '../src/notifications/channels.js';
import { recordMoneyEvent } from '../src/notifications/events.js';
import { notificationChannelsTable } from '../src/db/schema.js';

// --- The receiver's check, written only from docs/notifications.md. ---
function verifyGatewaySignature(secret: string, header: string | undefined, rawBody: string, toleranceSeconds = 300): boolean {
  if (typeof header !== 'string') return false;
  const fields = Object.fromEntries(header.split(',').map((part) => part.split('=', 2)));
  const t = Number(fields.t);
  if (!Number.isInteger(t) || Math.abs(Date.now() / 1000 - t) > toleranceSeconds) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${rawBody}`).digest();
  const given = Buffer.from(fields.v1 ?? '', 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

class Receiver {
  readonly received: Received[] = [];
  /** Statuses to answer per path, in order; 200 once they run out. */
  answers = new Map<string, number[]>();
  url = '';
  private server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      this.received.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.statusCode = this.answers.get(req.url ?? '')?.shift() ?? 200;
      res.end('ok');
    });
  });
  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  on(path: string): Received[] {
    return this.received.filter((r) => r.path === path);
  }
  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

interface Mail {
  from: string;
  to: string[];
  data: string;
}

let h: Harness;
let tree: Tree;
let receiver: Receiver;
let smtp: SMTPServer;
let smtpPort = 0;
const mails: Mail[] = [];
const tokens = { manager: '', otherManager: '' };
const raw = (id: string) => decodeGlobalID(id).id;

const CREATE_CHANNEL = `mutation($input: CreateNotificationChannelInput!) { createNotificationChannel(input: $input) {
  __typename ... on NotificationChannelPayload { signingSecret channel { id kind name display enabled } } ... on Error { message code } } }`;
const CREATE_RULE = `mutation($input: CreateNotificationRuleInput!) { createNotificationRule(input: $input) {
  __typename ... on CreateNotificationRulePayload { rule { id eventKinds orgUnit { id } channel { id } } } ... on Error { message code } } }`;
const DELIVERIES = `query($c: ID!) { notificationDeliveries(channelId: $c) { deliveryId eventId eventKind status attempts lastError event
  log { attempt outcome httpStatus error } } }`;

async function drain(now: Date): Promise<void> {
  while ((await runOutboxOnce(h.services.outboxDeps, now)) > 0) {
    /* again */
  }
}

const channels = { webhook: { id: '', secret: '' }, other: { id: '', secret: '' }, slack: '', teams: '', email: '' };

beforeAll(async () => {
  receiver = new Receiver();
  await receiver.start();
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onAuth(auth, _session, cb) {
      cb(null, { user: auth.username });
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          data: Buffer.concat(chunks).toString('utf8'),
        });
        cb();
      });
    },
  });
  await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', () => resolve()));
  smtpPort = (smtp.server.address() as AddressInfo).port;
  h = await startHarness({
    workers: false,
    env: { CALLBACK_ALLOW_HTTP: 'true', CALLBACK_ALLOW_PRIVATE: 'true', CALLBACK_RETRY_BASE_MS: '60000', CALLBACK_RETRY_MAX_MS: '3600000', NOTIFY_MAX_ATTEMPTS: '5' },
  });
  tree = await createTree(h);
  tokens.manager = await h.services.tokens.issueOperatorToken({ name: 'maya', role: 'MANAGER', unitId: raw(tree.teamId) });
  tokens.otherManager = await h.services.tokens.issueOperatorToken({ name: 'otto', role: 'MANAGER', unitId: raw(tree.otherTeamId) });
}, 60_000);
afterAll(async () => {
  await h?.close();
  await receiver?.close();
  await new Promise<void>((resolve) => smtp?.close(() => resolve()));
});

describe('channels and rules', () => {
  it('a MANAGER creates a webhook channel and a rule for its subtree; not for another subtree, nor above its own', async () => {
    const created = await mustMutate(h, CREATE_CHANNEL, { input: { orgUnitId: tree.teamId, kind: 'WEBHOOK', name: 'team hook', config: { url: `${receiver.url}/team` } } }, 'createNotificationChannel', tokens.manager);
    expect(created.signingSecret).toMatch(/^gwns_[A-Za-z0-9_-]{43}$/);
    expect(created.channel).toMatchObject({ kind: 'WEBHOOK', name: 'team hook', enabled: true, display: `webhook to ${new URL(receiver.url).host}` });
    channels.webhook = { id: created.channel.id, secret: created.signingSecret };
    const rule = await mustMutate(
      h,
      CREATE_RULE,
      { input: { orgUnitId: tree.teamId, channelId: channels.webhook.id, eventKinds: ['BUDGET_THRESHOLD_CROSSED', 'BUDGET_THRESHOLD_RESOLVED'] } },
      'createNotificationRule',
      tokens.manager,
    );
    expect(rule.rule).toMatchObject({ eventKinds: ['BUDGET_THRESHOLD_CROSSED', 'BUDGET_THRESHOLD_RESOLVED'], orgUnit: { id: tree.teamId } });

    // Another team (a sibling it cannot read): NotFound; the department above it (readable, not managed): Forbidden.
    const sibling = await h.gql(CREATE_RULE, { input: { orgUnitId: tree.otherTeamId, channelId: channels.webhook.id, eventKinds: ['JOB_FINISHED'] } }, tokens.manager);
    expect(sibling.data.createNotificationRule.__typename).toBe('NotFoundError');
    const above = await h.gql(CREATE_RULE, { input: { orgUnitId: tree.deptId, channelId: channels.webhook.id, eventKinds: ['JOB_FINISHED'] } }, tokens.manager);
    expect(above.data.createNotificationRule.__typename).toBe('ForbiddenError');
    const aboveChannel = await h.gql(CREATE_CHANNEL, { input: { orgUnitId: tree.deptId, kind: 'WEBHOOK', name: 'x', config: { url: `${receiver.url}/x` } } }, tokens.manager);
    expect(aboveChannel.data.createNotificationChannel.__typename).toBe('ForbiddenError');

    // The other team's manager: its own channel and a rule for every kind of its own subtree; it cannot route the
    // first team's events, nor use the first team's channel.
    const other = await mustMutate(h, CREATE_CHANNEL, { input: { orgUnitId: tree.otherTeamId, kind: 'WEBHOOK', name: 'other hook', config: { url: `${receiver.url}/other` } } }, 'createNotificationChannel', tokens.otherManager);
    channels.other = { id: other.channel.id, secret: other.signingSecret };
    const all = ['BUDGET_THRESHOLD_CROSSED', 'BUDGET_THRESHOLD_RESOLVED', 'BUDGET_REFUSED', 'JOB_FINISHED'];
    await mustMutate(h, CREATE_RULE, { input: { orgUnitId: tree.otherTeamId, channelId: channels.other.id, eventKinds: all } }, 'createNotificationRule', tokens.otherManager);
    const foreign = await h.gql(CREATE_RULE, { input: { orgUnitId: tree.otherTeamId, channelId: channels.webhook.id, eventKinds: all } }, tokens.otherManager);
    expect(foreign.data.createNotificationRule.__typename).toBe('NotFoundError');

    // Bad input is a typed ValidationError and writes nothing.
    for (const [kind, config] of [
      ['WEBHOOK', { url: 'ftp://example.com/x' }],
      ['SLACK', {}],
      ['EMAIL', { smtpUrl: `smtp://127.0.0.1:${smtpPort}`, from: 'not an address', to: ['a@example.com'] }],
      ['EMAIL', { smtpUrl: 'http://mail.example.com', from: 'a@example.com', to: ['a@example.com'] }],
    ] as const) {
      const r = await h.gql(CREATE_CHANNEL, { input: { orgUnitId: tree.teamId, kind, name: `bad ${kind}`, config } }, tokens.manager);
      expect(r.data.createNotificationChannel.__typename, JSON.stringify(config)).toBe('ValidationError');
    }

    // FINANCE (everywhere): Slack, Teams and e-mail on the organization, for threshold crossings.
    const finance = await h.services.tokens.issueOperatorToken({ name: 'fiona', role: 'FINANCE' });
    const make = async (kind: string, config: Record<string, unknown>) =>
      (await mustMutate(h, CREATE_CHANNEL, { input: { orgUnitId: tree.orgId, kind, name: `finance ${kind}`, config } }, 'createNotificationChannel', finance)).channel.id as string;
    channels.slack = await make('SLACK', { url: `${receiver.url}/slack/T000/B000/XXXX` });
    channels.teams = await make('TEAMS', { url: `${receiver.url}/teams/webhookb2/abc` });
    channels.email = await make('EMAIL', { smtpUrl: `smtp://finance-bot:s3cr3t-smtp-pass@127.0.0.1:${smtpPort}`, from: 'gateway@example.com', to: ['finance@example.com', 'cfo@example.com'] });
    for (const c of [channels.slack, channels.teams, channels.email]) {
      await mustMutate(h, CREATE_RULE, { input: { orgUnitId: tree.orgId, channelId: c, eventKinds: ['BUDGET_THRESHOLD_CROSSED'] } }, 'createNotificationRule', finance);
    }
  }, 30_000);

  it("delivers a team's threshold crossings to its signed webhook (after two failures), Slack, Teams and e-mail; never to another subtree", async () => {
    const actor = await h.services.tokens.authenticate(h.services.db, h.adminToken);
    const admit = () =>
      admitJob(h.services.db, actor, { projectId: raw(tree.projectId), kind: 'AVATAR_VIDEO', request: avatarRequest(), estimatedSeconds: null, idempotencyKey: null }, h.services.admission);
    const first = await admit();
    const budget = await setBudget(h, { orgUnitId: tree.teamId, window: 'MONTHLY', limitCreditSeconds: formatCreditSeconds(first.job.reservedMicroCs * 2n), enforcement: 'HARD', alertThresholds: [50, 100] });
    await admit(); // 2 of 2 holds: setBudget saw 1 hold (no event: no state yet) and this one crosses 50 and 100.
    const [crossings] = await queryRows<{ n: number }>(h.services.db, sql`select count(*)::int as n from outbox_events where topic = 'money_event' and kind = 'budget.threshold_crossed' and payload->'data'->>'budgetId' = ${raw(budget.budget.id)}`);
    expect(crossings!.n).toBe(2);

    receiver.answers.set('/team', [500, 503, 500, 503]);
    const t0 = new Date();
    await drain(t0);
    // Two events, both failed once on the team webhook (500, 503); Slack and Teams got theirs.
    expect(receiver.on('/team')).toHaveLength(2);
    await drain(new Date(t0.getTime() + 3_600_000));
    expect(receiver.on('/team')).toHaveLength(4);
    await drain(new Date(t0.getTime() + 3 * 3_600_000));
    const team = receiver.on('/team');
    expect(team).toHaveLength(6);
    for (const r of team) {
      expect(verifyGatewaySignature(channels.webhook.secret, r.headers['x-gateway-signature'] as string, r.body)).toBe(true);
      expect(verifyGatewaySignature(channels.other.secret, r.headers['x-gateway-signature'] as string, r.body)).toBe(false);
      expect(verifyGatewaySignature(channels.webhook.secret, r.headers['x-gateway-signature'] as string, r.body + ' ')).toBe(false);
      const body = JSON.parse(r.body);
      expect(r.headers['x-gateway-event-id']).toBe(body.id);
      expect(body).toMatchObject({ kind: 'budget.threshold_crossed', orgUnitId: raw(tree.teamId), orgUnitName: 'Video', data: { budgetId: raw(budget.budget.id), enforcement: 'HARD' } });
    }
    // A replayed old delivery (a timestamp outside the tolerance) is refused by the documented check.
    const old = Math.floor(Date.now() / 1000) - 3600;
    const oldHeader = `t=${old},v1=${createHmac('sha256', channels.webhook.secret).update(`${old}.${team[0]!.body}`).digest('hex')}`;
    expect(verifyGatewaySignature(channels.webhook.secret, oldHeader, team[0]!.body)).toBe(false);
    expect(new Set(team.map((r) => JSON.parse(r.body).data.threshold))).toEqual(new Set([50, 100]));
    // The other subtree's rule got nothing.
    expect(receiver.on('/other')).toHaveLength(0);

    // Slack: Block Kit with a fallback text; Teams: an Adaptive Card.
    const slack = receiver.on('/slack/T000/B000/XXXX').map((r) => JSON.parse(r.body));
    expect(slack).toHaveLength(2);
    expect(slack.map((s) => s.text).sort()).toEqual(['Video: 100% of its HARD MONTHLY budget used', 'Video: 50% of its HARD MONTHLY budget used']);
    expect(slack[0].blocks[0]).toMatchObject({ type: 'header', text: { type: 'plain_text' } });
    expect(slack[0].blocks[1].fields.map((f: any) => f.text)).toContain('*Unit*\nVideo');
    const teams = receiver.on('/teams/webhookb2/abc').map((r) => JSON.parse(r.body));
    expect(teams).toHaveLength(2);
    expect(teams[0]).toMatchObject({ type: 'message', attachments: [{ contentType: 'application/vnd.microsoft.card.adaptive', content: { type: 'AdaptiveCard' } }] });
    expect(teams[0].attachments[0].content.body[1].facts).toContainEqual({ title: 'Unit', value: 'Video' });
    // E-mail: one per event, to both recipients, from the configured sender.
    expect(mails).toHaveLength(2);
    for (const m of mails) {
      expect(m.from).toBe('gateway@example.com');
      expect(m.to.sort()).toEqual(['cfo@example.com', 'finance@example.com']);
      expect(m.data).toMatch(/Subject: \[HeyGen gateway\] Video: (50|100)% of its HARD MONTHLY budget used/);
    }

    // The delivery log in GraphQL: three attempts per event on the webhook, the last one delivered.
    const log = await h.gql(DELIVERIES, { c: channels.webhook.id }, tokens.manager);
    expect(log.errors).toBeUndefined();
    expect(log.data.notificationDeliveries).toHaveLength(2);
    for (const d of log.data.notificationDeliveries) {
      expect(d).toMatchObject({ eventKind: 'budget.threshold_crossed', status: 'DELIVERED', attempts: 3 });
      expect(d.log.map((a: any) => [a.outcome, a.httpStatus])).toEqual([
        ['failed', expect.any(Number)],
        ['failed', expect.any(Number)],
        ['delivered', 200],
      ]);
    }
    // The other manager cannot read this channel's log.
    const foreign = await h.gql(DELIVERIES, { c: channels.webhook.id }, tokens.otherManager);
    expect(foreign.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');

    // Delivered again by nobody: later passes find nothing due.
    await drain(new Date(t0.getTime() + 24 * 3_600_000));
    expect(receiver.on('/team')).toHaveLength(6);
  }, 60_000);

  it('a disabled channel gets nothing routed; a deleted one takes its rules with it', async () => {
    const UPDATE = `mutation($input: UpdateNotificationChannelInput!) { updateNotificationChannel(input: $input) { __typename ... on NotificationChannelPayload { signingSecret channel { enabled } } ... on Error { message } } }`;
    const off = await mustMutate(h, UPDATE, { input: { id: channels.other.id, enabled: false } }, 'updateNotificationChannel', tokens.otherManager);
    expect(off.channel.enabled).toBe(false);
    // An event of the other subtree while its channel is disabled: routed nowhere.
    await h.services.db.transaction((tx) => recordMoneyEvent(tx, { kind: 'job.finished', dedupeKey: 'disabled-test', orgUnitId: raw(tree.otherProjectId), data: { jobId: null } }));
    await drain(new Date());
    const [routed] = await queryRows<{ n: number }>(h.services.db, sql`select count(*)::int as n from outbox_events where destination->>'channelId' = ${raw(channels.other.id)}`);
    expect(routed!.n).toBe(0);
    expect(receiver.on('/other')).toHaveLength(0);
    // A rotated signing secret is returned once, and signs from then on.
    const rotated = await mustMutate(h, UPDATE, { input: { id: channels.other.id, rotateSigningSecret: true } }, 'updateNotificationChannel', tokens.otherManager);
    expect(rotated.signingSecret).toMatch(/^gwns_/);
    expect(rotated.signingSecret).not.toBe(channels.other.secret);
    const del = await h.gql(`mutation($input: DeleteNotificationChannelInput!) { deleteNotificationChannel(input: $input) { __typename ... on DeleteNotificationChannelPayload { deletedId } } }`, { input: { id: channels.other.id } }, tokens.otherManager);
    expect(del.data.deleteNotificationChannel.deletedId).toBe(channels.other.id);
    const [rules] = await queryRows<{ n: number }>(h.services.db, sql`select count(*)::int as n from notification_rules where channel_id = ${raw(channels.other.id)}`);
    expect(rules!.n).toBe(0);
  }, 30_000);
});

// Before the secrets suite: its master-key rotation leaves this process unable to read the account's API key.
describe('thresholds filled by jobs through the simulator', () => {
  it('50, 80 and 100 % each reach a signed webhook, Slack and e-mail exactly once', async () => {
    // A team of its own (nothing else counts in its budget); the organization's Slack, Teams and e-mail rules route
    // its crossings too.
    const team = (await mustMutate(h, `mutation($input: CreateOrgUnitInput!) { createOrgUnit(input: $input) { __typename ... on CreateOrgUnitPayload { orgUnit { id } } ... on Error { message } } }`, { input: { kind: 'TEAM', name: 'Fresh crew', parentId: tree.deptId } }, 'createOrgUnit')).orgUnit.id as string;
    const project = (await mustMutate(h, `mutation($input: CreateOrgUnitInput!) { createOrgUnit(input: $input) { __typename ... on CreateOrgUnitPayload { orgUnit { id } } ... on Error { message } } }`, { input: { kind: 'PROJECT', name: 'Fresh', parentId: team } }, 'createOrgUnit')).orgUnit.id as string;
    const hook = await mustMutate(h, CREATE_CHANNEL, { input: { orgUnitId: team, kind: 'WEBHOOK', name: 'fresh hook', config: { url: `${receiver.url}/fresh` } } }, 'createNotificationChannel');
    await mustMutate(h, CREATE_RULE, { input: { orgUnitId: team, channelId: hook.channel.id, eventKinds: ['BUDGET_THRESHOLD_CROSSED'] } }, 'createNotificationRule');
    // Jobs submitted through GraphQL, each forwarded to the simulator (by the submitting request) before the next;
    // each holds the same estimate (one fifth of the limit).
    const submit = async () => {
      const res = await mustMutate(h, SUBMIT, { input: { projectId: project, kind: 'AVATAR_VIDEO', request: avatarRequest() } }, 'submitJob');
      await waitFor(async () => (await queryRows<{ n: number }>(h.services.db, sql`select count(*)::int as n from job_items where job_id = ${raw(res.job.id)}`))[0]!.n === 1, 15_000);
      return res.job;
    };
    const first = await submit();
    const hold = parseCreditSeconds(first.reservedCreditSeconds);
    const budget = await setBudget(h, { orgUnitId: team, window: 'MONTHLY', limitCreditSeconds: formatCreditSeconds(hold * 5n), enforcement: 'SOFT', alertThresholds: [50, 80, 100] });
    for (let i = 0; i < 4; i++) await submit(); // 40, 60 (50 crossed), 80 (80 crossed), 100 % (100 crossed)
    const mailsBefore = mails.length;
    await drain(new Date());
    await drain(new Date(Date.now() + 3_600_000));

    const hooked = receiver.on('/fresh');
    expect(hooked.map((r) => JSON.parse(r.body).data.threshold).sort()).toEqual([100, 50, 80]);
    for (const r of hooked) {
      expect(verifyGatewaySignature(hook.signingSecret, r.headers['x-gateway-signature'] as string, r.body)).toBe(true);
      expect(JSON.parse(r.body).data.budgetId).toBe(raw(budget.budget.id));
    }
    const slack = receiver.on('/slack/T000/B000/XXXX').map((r) => JSON.parse(r.body).text as string).filter((t) => t.startsWith('Fresh crew:'));
    expect(slack.sort()).toEqual(['Fresh crew: 100% of its SOFT MONTHLY budget used', 'Fresh crew: 50% of its SOFT MONTHLY budget used', 'Fresh crew: 80% of its SOFT MONTHLY budget used']);
    const mailed = mails.slice(mailsBefore).map((m) => /Subject: \[HeyGen gateway\] Fresh crew: (\d+)%/.exec(m.data)?.[1]);
    expect(mailed.sort()).toEqual(['100', '50', '80']);
  }, 60_000);
});

describe('secrets', () => {
  it('URLs and secrets are never in GraphQL answers, logs or the audit trail; master-key rotation re-encrypts them', async () => {
    const secrets = [channels.webhook.secret, 's3cr3t-smtp-pass', '/slack/T000/B000/XXXX', '/teams/webhookb2/abc', `${receiver.url}/team`];
    const answers = JSON.stringify([
      (await h.gql(`{ notificationChannels { id kind name display enabled orgUnit { id } } }`)).data,
      (await h.gql(`{ notificationRules { id eventKinds channel { id display } } }`)).data,
      (await h.gql(DELIVERIES, { c: channels.slack })).data,
      (await h.gql(DELIVERIES, { c: channels.email })).data,
    ]);
    const audit = JSON.stringify(await queryRows(h.services.db, sql`select * from audit_events where action like 'notification%'`));
    expect(audit).toContain('notificationChannel.create');
    const logs = h.logs.join('\n');
    for (const s of secrets) {
      expect(answers, s).not.toContain(s);
      expect(audit, s).not.toContain(s);
      expect(logs, s).not.toContain(s);
    }
    const stored = JSON.stringify(await queryRows(h.services.db, sql`select * from notification_channels`));
    for (const s of secrets) expect(stored, s).not.toContain(s);

    // Rotation: every channel's secrets are written again under the new key, and read back with it alone.
    const newKey = generateMasterKey();
    const report = await rotateMasterKey(h.services.db, createSecretBox(newKey, [h.config.masterKey!]));
    const rows = await h.services.db.select().from(notificationChannelsTable);
    expect(report.notificationChannels).toBe(rows.length);
    const only = createSecretBox(newKey);
    const slack = rows.find((r) => r.kind === 'SLACK')!;
    expect(decryptChannelSecret(only, slack)).toEqual({ kind: 'SLACK', url: `${receiver.url}/slack/T000/B000/XXXX` });
    expect(() => decryptChannelSecret(createSecretBox(h.config.masterKey!), slack)).toThrow();
  }, 30_000);
});

// Last: its events are fanned out to the channels above (not delivered), after every other suite has counted them.
describe('fan-out of an outbox pass', () => {
  it("fans a pass's money events out in three statements (their rules, their channels' events, their attempts), each to the channels it would reach alone", async () => {
    const moneyOnly = (batchSize: number) => ({
      ...h.services.outboxDeps,
      handlers: new Map([...h.services.outboxDeps.handlers].filter(([topic]) => topic === 'money_event')),
      settings: { ...h.services.outboxDeps.settings, batchSize },
    });
    while ((await runOutboxOnce(moneyOnly(50))) > 0) {
      /* earlier events out of the way */
    }
    // Routed to the team's webhook and the organization's channels, to the team's webhook only, to none, and (another
    // subtree, whose channel was deleted) to the organization's channels only.
    const asked = [
      { kind: 'budget.threshold_crossed', unit: tree.projectId },
      { kind: 'budget.threshold_resolved', unit: tree.projectId },
      { kind: 'job.finished', unit: tree.projectId },
      { kind: 'budget.threshold_crossed', unit: tree.otherProjectId },
    ] as const;
    const record = async (prefix: string) => {
      for (const [n, a] of asked.entries()) {
        await h.services.db.transaction((tx) => recordMoneyEvent(tx, { kind: a.kind, dedupeKey: `${prefix}-${n}`, orgUnitId: raw(a.unit), data: { jobId: null } }));
      }
    };
    const channelsOf = async (prefix: string) => {
      const out: string[][] = [];
      for (const [n, a] of asked.entries()) {
        const rows = await queryRows<{ channel: string }>(
          h.services.db,
          sql`select n.destination->>'channelId' as channel from outbox_events e join outbox_events n on n.dedupe_key like e.id::text || ':%'
              where e.topic = 'money_event' and e.dedupe_key = ${`${a.kind}:${prefix}-${n}`} order by 1`,
        );
        out.push(rows.map((r) => r.channel));
      }
      return out;
    };
    const statements: string[] = [];
    // The passes run at an instant after the events' own: an event is due from its transaction's start (PostgreSQL's
    // clock, to the microsecond), and a pass started within the same millisecond would find the last one not yet due.
    const afterEvents = async () => {
      const [row] = await queryRows<{ at: string }>(h.services.db, sql`select (clock_timestamp() + interval '1 millisecond')::text as at`);
      return new Date(row!.at);
    };
    h.services.database.onQuery = (text) => statements.push(text);
    try {
      // Alone: one pass per event, each reading its own rules.
      await record('fan-alone');
      const aloneAt = await afterEvents();
      while ((await runOutboxOnce(moneyOnly(1), aloneAt)) > 0) {
        /* one event a pass */
      }
      const ruleReads = () => statements.filter((s) => /notification_rules/.test(s)).length;
      const attemptWrites = () => statements.filter((s) => /outbox_deliveries/.test(s)).length;
      const [alone, aloneAttempts] = [ruleReads(), attemptWrites()];
      statements.length = 0;
      // Together: one pass: its claim, one read of the rules, one write of the channels' events, one of the attempts.
      await record('fan-together');
      const togetherAt = await afterEvents();
      statements.length = 0; // the clock's own read is not the pass's
      expect(await runOutboxOnce(moneyOnly(50), togetherAt)).toBe(asked.length);
      expect([alone, aloneAttempts]).toEqual([asked.length, asked.length]);
      expect([ruleReads(), attemptWrites(), statements.length]).toEqual([1, 1, 4]);
    } finally {
      h.services.database.onQuery = undefined;
    }
    const together = await channelsOf('fan-together');
    expect(together).toEqual(await channelsOf('fan-alone'));
    // Each event delivered, its one attempt logged, as alone.
    for (const prefix of ['fan-alone', 'fan-together']) {
      const rows = await queryRows<{ status: string; attempts: number; logged: string }>(
        h.services.db,
        sql`select e.status, e.attempts, string_agg(d.attempt || ':' || d.outcome, ',') as logged from outbox_events e join outbox_deliveries d on d.event_id = e.id
            where e.topic = 'money_event' and e.dedupe_key like ${`%:${prefix}-%`} group by e.id, e.status, e.attempts order by e.dedupe_key`,
      );
      expect(rows).toEqual(asked.map(() => ({ status: 'DELIVERED', attempts: 1, logged: '1:delivered' })));
    }
    const finance = [channels.slack, channels.teams, channels.email].map(raw);
    expect(together.map((c) => c.length)).toEqual([1 + finance.length, 1, 0, finance.length]);
  }, 30_000);
});
