// Delivery of money events (docs/notifications.md), by the outbox worker of any gateway process:
// 1. `money_event` rows (written with their cause) are fanned out: the rules whose subtree holds the event's unit
//    and that name its kind give the channels, and one outbox row per channel is written (unique per event and
//    channel, so a fan-out run twice writes each once). Rules are read at fan-out, not when the cause committed.
// 2. One handler per channel kind delivers a channel's row: a signed JSON POST (WEBHOOK), a Slack or Teams message,
//    or an e-mail over SMTP. Each attempt is logged (outbox_deliveries), a failure is retried with backoff, and a
//    channel that fails only delays its own rows: admissions never wait for any of this.
import dns from 'node:dns/promises';
import net from 'node:net';
import { eq } from 'drizzle-orm';
import { namedStatement, type Db } from '../db/client.js';
import { notificationChannelsTable } from '../db/schema.js';
import type { SecretBox } from '../secrets/secret-box.js';
import { enqueueEvents, type AttemptResult, type ClaimedEvent } from '../outbox/outbox.js';
import { deliveredTogether, type DeliverAll, type OutboxHandler } from '../outbox/worker.js';
import { ATTEMPT_HEADER, EVENT_ID_HEADER, post, signCallback, SIGNATURE_HEADER, type AppCallbackSettings } from '../outbox/app-callback.js';
import { isPublicAddress } from '../pricing/media.js';
import { formatCreditSeconds } from '../primitives/money.js';
import { decryptChannelSecret } from './channels.js';
import { MONEY_EVENT_TOPIC, moneyEventOf, type MoneyEvent } from './events.js';

/** The outbox topic of a channel kind's deliveries. */
export const CHANNEL_TOPICS = { WEBHOOK: 'notify.webhook', SLACK: 'notify.slack', TEAMS: 'notify.teams', EMAIL: 'notify.email' } as const;
export const DELIVERY_ID_HEADER = 'x-gateway-delivery-id';

/** A money event as a channel receives it: the event plus the name of its unit. */
export interface ChannelEvent extends MoneyEvent {
  orgUnitName: string | null;
}

export interface NotificationSettings extends AppCallbackSettings {
  /** Attempts per channel delivery before it is given up. */
  maxAttempts: number;
}

type FanOutTarget = { channel_id: string; kind: keyof typeof CHANNEL_TOPICS; unit_name: string };

/**
 * The channels whose rules match money events: $1 their units, $2 their kinds (in the same order); each target row
 * carries the 1-based position `i` of its event.
 */
const FAN_OUT_TARGETS_MANY = namedStatement<FanOutTarget & { i: string }>(
  'gateway_money_event_targets_many',
  `select distinct q.i, c.id as channel_id, c.kind, u.name as unit_name
          from unnest($1::uuid[], $2::text[]) with ordinality as q(unit_id, kind, i)
          join org_units u on u.id = q.unit_id
          join notification_rules r on u.path @> array[r.org_unit_id]
          join notification_channels c on c.id = r.channel_id
          where c.enabled and q.kind = any(r.event_kinds)
          order by q.i, c.id`,
);

/**
 * Fans a money event out to the channels of the rules that match it. A pass's events are fanned out together
 * (`deliverAll`): one statement reads their rules, one writes their channels' events, and the pass records their
 * attempts in one more; each event reaches the channels it would alone. Only the database is written to (each
 * channel's own event is delivered later, under its own topic), so no event waits for a slow receiver.
 */
export function moneyEventFanOut(db: Db, settings: Pick<NotificationSettings, 'maxAttempts'>): OutboxHandler {
  const deliverAll: DeliverAll = async (events, now) => {
    const started = performance.now();
    // An event whose payload cannot be read fails alone; the others are fanned out.
    const money = events.map((event) => {
      try {
        return moneyEventOf(event.payload);
      } catch (error) {
        return error instanceof Error ? error : new Error(String(error));
      }
    });
    const asked = money.flatMap((m, at) => (m instanceof Error ? [] : [{ at, m }]));
    const targets = new Map<number, FanOutTarget[]>();
    if (asked.length > 0) {
      const rows = await FAN_OUT_TARGETS_MANY.rows(db, [asked.map(({ m }) => m.orgUnitId), asked.map(({ m }) => m.kind)]);
      for (const { i, ...target } of rows) {
        const at = asked[Number(i) - 1]!.at;
        const list = targets.get(at);
        if (list) list.push(target);
        else targets.set(at, [target]);
      }
    }
    await enqueueEvents(
      db,
      asked.flatMap(({ at, m }) =>
        (targets.get(at) ?? []).map((t) => ({
          topic: CHANNEL_TOPICS[t.kind],
          kind: m.kind,
          dedupeKey: `${m.id}:${t.channel_id}`,
          payload: (): ChannelEvent => ({ ...m, orgUnitName: t.unit_name }),
          destination: { channelId: t.channel_id },
          orgUnitId: m.orgUnitId,
          maxAttempts: settings.maxAttempts,
        })),
      ),
      now,
    );
    const durationMs = Math.round(performance.now() - started);
    return money.map((m) => (m instanceof Error ? m : { ok: true, httpStatus: null, error: null, startedAt: now, durationMs }));
  };
  return deliveredTogether(deliverAll);
}

// --- Message formatting -------------------------------------------------------------------------------------

function cs(micro: unknown): string {
  if (typeof micro !== 'string' || !/^-?\d+$/.test(micro)) return '?';
  return `${formatCreditSeconds(BigInt(micro))} credit-seconds`;
}

/** A one-line title and the facts of an event, in words (the same for every channel kind). */
export function describeEvent(e: ChannelEvent): { title: string; facts: Array<[string, string]> } {
  const d = e.data as Record<string, string | number | null>;
  const unit = e.orgUnitName ?? e.orgUnitId;
  const facts: Array<[string, string]> = [['Unit', unit]];
  const window = d.windowFrom === d.windowTo ? String(d.windowFrom) : `${d.windowFrom}..${d.windowTo}`;
  let title: string;
  switch (e.kind) {
    case 'budget.threshold_crossed':
    case 'budget.threshold_resolved': {
      // A tag value's or a person's budget names its group (reason TAG or PERSON), as its refusals do.
      const budget =
        d.reason === 'TAG'
          ? `${d.window} budget of tag ${d.tagKey}=${d.tagValue}`
          : d.reason === 'PERSON'
            ? `${d.window} budget of person ${d.person}`
            : `${d.enforcement} ${d.window} budget`;
      title =
        e.kind === 'budget.threshold_crossed' ? `${unit}: ${d.threshold}% of its ${budget} used` : `${unit}: back under ${d.threshold}% of its ${budget}`;
      facts.push(['Used', cs(d.usedMicroCs)], ['Limit', cs(d.limitMicroCs)], ['Window', window === '0000-01..9999-12' ? 'lifetime' : window]);
      break;
    }
    case 'budget.refused':
      title =
        d.reason === 'POOL'
          ? `${unit}: jobs refused, the account's pool is used up`
          : d.reason === 'TAG'
            ? `${unit}: jobs refused by the budget of tag ${d.tagKey}=${d.tagValue}`
            : d.reason === 'PERSON'
              ? `${unit}: jobs refused by the budget of person ${d.person}`
              : `${unit}: jobs refused by its HARD budget`;
      facts.push(['Hour', String(d.hour)], ['Available', cs(d.availableMicroCs)], ['Limit', cs(d.limitMicroCs)]);
      break;
    case 'pool.crossed':
      title = `Included pool used up for ${d.period}: overage has begun`;
      facts.push(['Period', String(d.period)], ['Included', cs(d.includedMicroCs)], ['Settled', cs(d.settledMicroCs)]);
      break;
    case 'pool.run_out_forecast':
      title = `Included pool projected to run out on ${d.runsOutOn}, before ${d.horizon}`;
      facts.push(['Runs out on', String(d.runsOutOn)], ['Previously told', d.previousRunsOutOn ? String(d.previousRunsOutOn) : '—'], ['Pool', String(d.window)], ['Daily burn', cs(d.dailyBurnMicroCs)]);
      break;
    case 'wallet.drift_flagged':
      title = "HeyGen's usage and the gateway's ledger disagree";
      facts.push(['Drift', cs(d.driftMicroCs)], ['Threshold', cs(d.thresholdMicroCs)], ['Compared', `${d.comparedFrom}..${d.comparedTo}`]);
      break;
    case 'hold.overdue':
      title = `${unit}: a job's hold ran out while HeyGen may still bill it`;
      facts.push(['Job', String(d.jobId)], ['Released', cs(d.releasedMicroCs)]);
      break;
    case 'job.overrun':
      title = `${unit}: a job cost more than its hold`;
      facts.push(['Job', String(d.jobId)], ['Estimated', cs(d.estimatedMicroCs)], ['Actual', cs(d.actualMicroCs)], ['Overrun', cs(d.overrunMicroCs)]);
      break;
    case 'period.closed':
      title = `Billing period ${d.period} closed`;
      facts.push(['Period', String(d.period)], ['Invoice', `$${d.invoiceTotalUsd}`]);
      break;
    case 'job.finished':
      title = `${unit}: job ${d.status}`;
      facts.push(['Job', String(d.jobId)], ['Kind', String(d.kind)], ['Cost', cs(d.actualMicroCs)]);
      break;
    case 'budget.increase_requested':
      title = `${unit}: ${d.requestedBy} asks for ${cs(d.amountMicroCs)} more${d.until ? ` until ${d.until}` : ''}`;
      facts.push(['Reason', String(d.reason)], ['Limit', cs(d.limitMicroCs)], ['Request', String(d.requestId)]);
      break;
    case 'budget.increase_decided':
      title = `${unit}: ${d.decidedBy} ${String(d.status).toLowerCase()} the request for ${cs(d.amountMicroCs)} more${d.until ? ` until ${d.until}` : ''}`;
      facts.push(['Requested by', String(d.requestedBy)], ['Limit', cs(d.limitMicroCs)], ['Note', String(d.decisionNote ?? '')], ['Request', String(d.requestId)]);
      break;
    default:
      title = `${unit}: ${e.kind}`;
  }
  facts.push(['Event', `${e.kind} ${e.id}`], ['At', e.occurredAt]);
  return { title, facts };
}

/** Slack incoming-webhook body: a fallback text and Block Kit blocks (mrkdwn, special characters escaped). */
export function slackBody(e: ChannelEvent): unknown {
  const { title, facts } = describeEvent(e);
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return {
    text: esc(title),
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: title.slice(0, 150) } },
      { type: 'section', fields: facts.slice(0, 10).map(([k, v]) => ({ type: 'mrkdwn', text: `*${esc(k)}*\n${esc(v)}` })) },
    ],
  };
}

/** Microsoft Teams incoming-webhook body: an Adaptive Card with a fact set. */
export function teamsBody(e: ChannelEvent): unknown {
  const { title, facts } = describeEvent(e);
  return {
    type: 'message',
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        content: {
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          type: 'AdaptiveCard',
          version: '1.4',
          body: [
            { type: 'TextBlock', text: title, weight: 'Bolder', size: 'Medium', wrap: true },
            { type: 'FactSet', facts: facts.map(([k, v]) => ({ title: k, value: v })) },
          ],
        },
      },
    ],
  };
}

export function emailOf(e: ChannelEvent): { subject: string; text: string } {
  const { title, facts } = describeEvent(e);
  return { subject: `[HeyGen gateway] ${title}`.replace(/[\r\n]+/g, ' ').slice(0, 200), text: `${title}\n\n${facts.map(([k, v]) => `${k}: ${v}`).join('\n')}\n` };
}

// --- Channel handlers ---------------------------------------------------------------------------------------

export interface ChannelDeps {
  db: Db;
  box: SecretBox;
  settings: NotificationSettings;
}

type Finish = (r: Omit<AttemptResult, 'startedAt' | 'durationMs'>) => AttemptResult;

async function channelOf(deps: ChannelDeps, event: ClaimedEvent) {
  const channelId = (event.destination as { channelId?: unknown }).channelId;
  if (typeof channelId !== 'string') return null;
  const [row] = await deps.db.select().from(notificationChannelsTable).where(eq(notificationChannelsTable.id, channelId));
  return row ?? null;
}

function handler(deps: ChannelDeps, send: (event: ClaimedEvent, body: ChannelEvent, secret: ReturnType<typeof decryptChannelSecret>, finish: Finish) => Promise<AttemptResult>): OutboxHandler {
  return async (event, now) => {
    const started = performance.now();
    const finish: Finish = (r) => ({ ...r, startedAt: now, durationMs: Math.max(0, Math.round(performance.now() - started)) });
    const channel = await channelOf(deps, event);
    if (!channel) return finish({ ok: false, httpStatus: null, error: 'the channel was deleted', permanent: true });
    if (!channel.enabled) return finish({ ok: false, httpStatus: null, error: 'the channel is disabled', permanent: true });
    return send(event, event.payload as ChannelEvent, decryptChannelSecret(deps.box, channel), finish);
  };
}

/** Generic webhook: the event as JSON, signed like app callbacks with the channel's signing secret. */
export function webhookChannelHandler(deps: ChannelDeps): OutboxHandler {
  return handler(deps, async (event, body, secret, finish) => {
    if (secret.kind !== 'WEBHOOK') return finish({ ok: false, httpStatus: null, error: 'the channel is not a webhook', permanent: true });
    const raw = JSON.stringify(body);
    const headers = {
      [SIGNATURE_HEADER]: signCallback(secret.signingSecret, Math.floor(Date.now() / 1000), raw),
      [EVENT_ID_HEADER]: body.id,
      [DELIVERY_ID_HEADER]: event.id,
      [ATTEMPT_HEADER]: String(event.attempt),
      'user-agent': 'heygen-gateway-notifications/1',
    };
    const r = await post(new URL(secret.url), headers, raw, deps.settings);
    return finish({ ok: r.error === null, httpStatus: r.status, error: r.error });
  });
}

/** Slack and Teams incoming webhooks: their own message formats, no signature (the URL is the credential). */
export function chatChannelHandler(deps: ChannelDeps, kind: 'SLACK' | 'TEAMS'): OutboxHandler {
  return handler(deps, async (_event, body, secret, finish) => {
    if (secret.kind !== kind) return finish({ ok: false, httpStatus: null, error: `the channel is not ${kind}`, permanent: true });
    const raw = JSON.stringify(kind === 'SLACK' ? slackBody(body) : teamsBody(body));
    const r = await post(new URL(secret.url), { 'user-agent': 'heygen-gateway-notifications/1' }, raw, deps.settings);
    // The URL is a credential: a failure names the status only (post's messages never carry the URL).
    return finish({ ok: r.error === null, httpStatus: r.status, error: r.error });
  });
}

/** The SMTP host's address, refused when private unless allowed (as webhook URLs are at connect time). */
async function checkedSmtpHost(host: string, allowPrivate: boolean): Promise<string | null> {
  const bare = host.replace(/^\[|\]$/g, '');
  const address = net.isIP(bare) ? bare : (await dns.lookup(bare)).address;
  return allowPrivate || isPublicAddress(address) ? address : null;
}

/** E-mail over SMTP (nodemailer), one message per delivery, the event id as its Message-ID's left part. */
export function emailChannelHandler(deps: ChannelDeps): OutboxHandler {
  return handler(deps, async (event, body, secret, finish) => {
    if (secret.kind !== 'EMAIL') return finish({ ok: false, httpStatus: null, error: 'the channel is not EMAIL', permanent: true });
    const url = new URL(secret.smtpUrl);
    let address: string | null;
    try {
      address = await checkedSmtpHost(url.hostname, deps.settings.allowPrivate);
    } catch {
      return finish({ ok: false, httpStatus: null, error: 'the SMTP host could not be resolved' });
    }
    if (!address) return finish({ ok: false, httpStatus: null, error: 'the SMTP host resolves to a private, loopback or link-local address' });
    const secure = url.protocol === 'smtps:';
    // Imported on the first e-mail, not at start: a gateway that sends none keeps 1.6 MB less live heap (docs/benchmark.md).
    const { default: nodemailer } = await import('nodemailer');
    const transport = nodemailer.createTransport({
      host: address,
      port: url.port ? Number(url.port) : secure ? 465 : 587,
      secure,
      auth: url.username ? { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } : undefined,
      tls: { servername: net.isIP(url.hostname) ? undefined : url.hostname },
      connectionTimeout: deps.settings.timeoutMs,
      greetingTimeout: deps.settings.timeoutMs,
      socketTimeout: deps.settings.timeoutMs,
      logger: false,
      debug: false,
    });
    const { subject, text } = emailOf(body);
    try {
      await transport.sendMail({ from: secret.from, to: secret.to, subject, text, messageId: `<${body.id}.${event.id}@heygen-gateway>`, headers: { 'X-Gateway-Event-Id': body.id } });
      return finish({ ok: true, httpStatus: null, error: null });
    } catch (error) {
      const e = error as { responseCode?: number; code?: string };
      // Never the server's text (it may echo the credentials): its code only.
      const permanent = typeof e.responseCode === 'number' && e.responseCode >= 500 && e.responseCode < 600 && e.responseCode !== 554;
      return finish({ ok: false, httpStatus: null, error: `the SMTP server refused the message (${e.responseCode ?? e.code ?? 'error'})`, permanent });
    } finally {
      transport.close();
    }
  });
}

/** The outbox handlers of notifications: the fan-out and one per channel kind (src/app.ts adds them). */
export function notificationHandlers(deps: ChannelDeps): Array<[string, OutboxHandler]> {
  return [
    [MONEY_EVENT_TOPIC, moneyEventFanOut(deps.db, deps.settings)],
    [CHANNEL_TOPICS.WEBHOOK, webhookChannelHandler(deps)],
    [CHANNEL_TOPICS.SLACK, chatChannelHandler(deps, 'SLACK')],
    [CHANNEL_TOPICS.TEAMS, chatChannelHandler(deps, 'TEAMS')],
    [CHANNEL_TOPICS.EMAIL, emailChannelHandler(deps)],
  ];
}
