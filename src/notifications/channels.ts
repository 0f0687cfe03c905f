// Notification channels and rules (docs/notifications.md). A channel's secret part — the URL (for Slack and Teams the
// URL is the credential), a webhook's signing secret, an SMTP URL with its password — is one JSON object encrypted
// under the master key, bound to the channel's id; it is never returned, logged or audited (the audit trail gets the
// channel's kind, name and `display`: a host, or the recipients). Rules route the money events of a subtree, of the
// kinds they name, to one channel. Who may: ADMIN and FINANCE everywhere, a MANAGER in its own subtree (both the
// rule's unit and the channel's).
import { newRowId } from '../primitives/ids.js';
import { randomBytes } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { notificationChannelsTable, notificationRulesTable, NOTIFICATION_CHANNEL_KINDS, type NotificationChannelKind } from '../db/schema.js';
import type { SecretBox } from '../secrets/secret-box.js';
import { ValidationError } from '../errors.js';
import { MONEY_EVENT_KINDS, type MoneyEventKind } from './events.js';

export type ChannelRow = typeof notificationChannelsTable.$inferSelect;
export type RuleRow = typeof notificationRulesTable.$inferSelect;

/** The encrypted part of a channel, per kind. */
export type ChannelSecret =
  | { kind: 'WEBHOOK'; url: string; signingSecret: string }
  | { kind: 'SLACK' | 'TEAMS'; url: string }
  | { kind: 'EMAIL'; smtpUrl: string; from: string; to: string[] };

export interface ChannelConfigInput {
  /** WEBHOOK, SLACK, TEAMS: the URL to POST to. */
  url?: string | null;
  /** EMAIL: `smtp://user:password@host:port` or `smtps://…`. */
  smtpUrl?: string | null;
  /** EMAIL: sender address. */
  from?: string | null;
  /** EMAIL: recipients (1 to 20). */
  to?: readonly string[] | null;
}

/**
 * Checks a URL a channel is to call (the app-callback rules: src/jobs/callback.ts, given by the caller) and returns
 * it normalised; throws a ValidationError naming `field`. `http://` and private hosts only where the operator allows.
 */
export type UrlCheck = (value: unknown, field: string) => string;

export function channelSecretContext(channelId: string): string {
  return `notification_channel:${channelId}`;
}

/** A webhook channel's signing secret: 32 random bytes, recognisable by its prefix. */
export function generateChannelSigningSecret(): string {
  return `gwns_${randomBytes(32).toString('base64url')}`;
}

export function decryptChannelSecret(box: SecretBox, channel: Pick<ChannelRow, 'id' | 'secretCiphertext'>): ChannelSecret {
  return JSON.parse(box.decrypt(channel.secretCiphertext, channelSecretContext(channel.id))) as ChannelSecret;
}

const EMAIL = /^[^\s@<>",;:]{1,64}@[^\s@<>",;:]{1,253}$/;
const MAX_NAME = 100;

function checkEmail(value: unknown, field: string): string {
  if (typeof value !== 'string' || !EMAIL.test(value) || /[\u0000-\u001f\u007f]/.test(value)) throw new ValidationError(field, 'not an e-mail address');
  return value;
}

/** An SMTP URL: smtp: or smtps:, a host that passes the same address rules as webhook URLs. */
function checkSmtpUrl(value: unknown, checkUrl: UrlCheck): string {
  const field = 'input.smtpUrl';
  if (typeof value !== 'string' || value.length === 0 || value.length > 2048 || /[\u0000-\u0020\u007f]/.test(value)) {
    throw new ValidationError(field, 'smtpUrl must be smtp://[user:password@]host[:port] or smtps://…');
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ValidationError(field, 'smtpUrl is not a valid URL');
  }
  if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') throw new ValidationError(field, 'smtpUrl must start with smtp:// or smtps://');
  // The host passes the webhook rules (public addresses only, unless the operator allows private ones).
  checkUrl(`https://${url.host}/`, field);
  return value;
}

/** Validates a channel's configuration for its kind: the secret to store and what may be shown of it. */
export function channelSecretOf(kind: NotificationChannelKind, input: ChannelConfigInput, checkUrl: UrlCheck, signingSecret: string | null): { secret: ChannelSecret; display: string } {
  if (kind === 'EMAIL') {
    const smtpUrl = checkSmtpUrl(input.smtpUrl, checkUrl);
    const from = checkEmail(input.from, 'input.from');
    const to = input.to ?? [];
    if (to.length === 0 || to.length > 20) throw new ValidationError('input.to', 'name 1 to 20 recipients');
    const recipients = to.map((t, i) => checkEmail(t, `input.to[${i}]`));
    return { secret: { kind, smtpUrl, from, to: recipients }, display: `e-mail to ${recipients.join(', ')} via ${new URL(smtpUrl).hostname}` };
  }
  if (input.url === undefined || input.url === null) throw new ValidationError('input.url', `a ${kind} channel needs a url`);
  const url = checkUrl(input.url, 'input.url');
  const host = new URL(url).host;
  if (kind === 'WEBHOOK') return { secret: { kind, url, signingSecret: signingSecret ?? generateChannelSigningSecret() }, display: `webhook to ${host}` };
  return { secret: { kind, url }, display: `${kind === 'SLACK' ? 'Slack' : 'Teams'} webhook at ${host}` };
}

export function checkChannelName(name: string): string {
  const trimmed = name.trim();
  if (trimmed.length === 0 || trimmed.length > MAX_NAME || /[\u0000-\u001f\u007f]/.test(trimmed)) {
    throw new ValidationError('input.name', `name must be 1 to ${MAX_NAME} printable characters`);
  }
  return trimmed;
}

export function checkChannelKind(kind: string): NotificationChannelKind {
  if (!(NOTIFICATION_CHANNEL_KINDS as readonly string[]).includes(kind)) throw new ValidationError('input.kind', `kind must be one of ${NOTIFICATION_CHANNEL_KINDS.join(', ')}`);
  return kind as NotificationChannelKind;
}

export function checkEventKinds(kinds: readonly string[]): MoneyEventKind[] {
  if (kinds.length === 0) throw new ValidationError('input.eventKinds', 'name at least one event kind');
  for (const k of kinds) {
    if (!(MONEY_EVENT_KINDS as readonly string[]).includes(k)) throw new ValidationError('input.eventKinds', `unknown event kind ${JSON.stringify(k).slice(0, 80)}; kinds: ${MONEY_EVENT_KINDS.join(', ')}`);
  }
  return [...new Set(kinds)] as MoneyEventKind[];
}

/** Creates a channel; returns it and, for a WEBHOOK, its signing secret (its only showing). */
export async function createChannel(
  tx: Db,
  box: SecretBox,
  input: { orgUnitId: string; kind: NotificationChannelKind; name: string; config: ChannelConfigInput },
  checkUrl: UrlCheck,
  now: Date,
): Promise<{ channel: ChannelRow; signingSecret: string | null }> {
  const name = checkChannelName(input.name);
  const { secret, display } = channelSecretOf(input.kind, input.config, checkUrl, null);
  const id = newRowId();
  const [existing] = await tx
    .select({ id: notificationChannelsTable.id })
    .from(notificationChannelsTable)
    .where(and(eq(notificationChannelsTable.orgUnitId, input.orgUnitId), eq(notificationChannelsTable.name, name)));
  if (existing) throw new ValidationError('input.name', 'this unit already has a channel of that name');
  const [channel] = await tx
    .insert(notificationChannelsTable)
    .values({ id, orgUnitId: input.orgUnitId, kind: input.kind, name, display, secretCiphertext: box.encrypt(JSON.stringify(secret), channelSecretContext(id)), createdAt: now, updatedAt: now })
    .returning();
  return { channel: channel!, signingSecret: secret.kind === 'WEBHOOK' ? secret.signingSecret : null };
}

/**
 * Changes a channel: its name, whether it is enabled, its configuration (given whole), and for a WEBHOOK a new
 * signing secret (`rotateSigningSecret`, returned this once). Returns the row and a new secret if one was made.
 */
export async function updateChannel(
  tx: Db,
  box: SecretBox,
  channel: ChannelRow,
  input: { name?: string | null; enabled?: boolean | null; config?: ChannelConfigInput | null; rotateSigningSecret?: boolean | null },
  checkUrl: UrlCheck,
  now: Date,
): Promise<{ channel: ChannelRow; signingSecret: string | null }> {
  const set: Partial<typeof notificationChannelsTable.$inferInsert> = { updatedAt: now };
  if (input.name !== undefined && input.name !== null) set.name = checkChannelName(input.name);
  if (input.enabled !== undefined && input.enabled !== null) set.enabled = input.enabled;
  let signingSecret: string | null = null;
  if (input.config || input.rotateSigningSecret) {
    const current = decryptChannelSecret(box, channel);
    if (input.rotateSigningSecret && channel.kind !== 'WEBHOOK') throw new ValidationError('input.rotateSigningSecret', 'only a WEBHOOK channel has a signing secret');
    const keep = current.kind === 'WEBHOOK' && !input.rotateSigningSecret ? current.signingSecret : null;
    const config: ChannelConfigInput = input.config ?? (current.kind === 'EMAIL' ? current : { url: current.url });
    const { secret, display } = channelSecretOf(channel.kind, config, checkUrl, keep);
    set.secretCiphertext = box.encrypt(JSON.stringify(secret), channelSecretContext(channel.id));
    set.display = display;
    if (secret.kind === 'WEBHOOK' && input.rotateSigningSecret) signingSecret = secret.signingSecret;
  }
  if (set.name && set.name !== channel.name) {
    const [clash] = await tx
      .select({ id: notificationChannelsTable.id })
      .from(notificationChannelsTable)
      .where(and(eq(notificationChannelsTable.orgUnitId, channel.orgUnitId), eq(notificationChannelsTable.name, set.name)));
    if (clash) throw new ValidationError('input.name', 'this unit already has a channel of that name');
  }
  const [updated] = await tx.update(notificationChannelsTable).set(set).where(eq(notificationChannelsTable.id, channel.id)).returning();
  return { channel: updated!, signingSecret };
}

/** What the audit trail records of a channel: never its URL or secrets. */
export function auditedChannel(c: ChannelRow): Record<string, unknown> {
  return { orgUnitId: c.orgUnitId, kind: c.kind, name: c.name, display: c.display, enabled: c.enabled };
}
