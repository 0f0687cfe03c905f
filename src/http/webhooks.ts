// HeyGen webhooks are hints: they only make the job due for a status read with the account's own key.
// A forged or replayed webhook can at most trigger that read, and not even that more than once per
// STATUS_READ_MIN_INTERVAL_MS per job (hintJob is coalesced in PostgreSQL); money never moves on a webhook body.
import { eq } from 'drizzle-orm';
import { accountsTable } from '../db/schema.js';
import { webhookSecretOf } from '../accounts/accounts.js';
import { parseWebhookEvent, verifyWebhookSignature } from '../heygen/webhooks.js';
import { hintAndClaimJob, hintJob } from '../jobs/follow.js';
import { runClaimed, runDueJobNow } from '../jobs/worker.js';
import { isUuid } from '../org/units.js';
import type { Services } from '../app.js';

export interface WebhookResult {
  status: number;
  body: Record<string, unknown>;
}

export async function handleHeygenWebhook(
  services: Services,
  accountId: string,
  rawBody: Buffer,
  headers: Record<string, string | string[] | undefined>,
  route: 'endpoint' | 'callback',
): Promise<WebhookResult> {
  if (!isUuid(accountId)) return { status: 404, body: { error: 'unknown account' } };
  // Registered endpoints are signed; HeyGen does not sign per-job callback_url deliveries. Either way the body
  // only makes the job due for a status read with the account's own key.
  let secret: string | null = null;
  if (route === 'endpoint') {
    const [account] = await services.db.select().from(accountsTable).where(eq(accountsTable.id, accountId));
    if (!account) return { status: 404, body: { error: 'unknown account' } };
    secret = webhookSecretOf(services.box, account);
  }
  if (secret) {
    const header = headers[services.config.webhookSignature.header];
    const value = Array.isArray(header) ? header[0] : header;
    if (!verifyWebhookSignature(rawBody, secret, value, services.config.webhookSignature.scheme)) {
      const reason = value ? 'invalid' : 'missing';
      services.metrics.webhookVerificationFailures.inc({ reason });
      services.logger.warn({ accountId, reason }, 'webhook with a missing or bad signature refused');
      return { status: 401, body: { error: 'bad signature' } };
    }
  }
  let json: unknown;
  try {
    json = JSON.parse(rawBody.toString('utf8'));
  } catch {
    return { status: 400, body: { error: 'body is not JSON' } };
  }
  let event;
  try {
    event = parseWebhookEvent(json);
  } catch {
    return { status: 400, body: { error: 'not a HeyGen webhook event' } };
  }
  // An id PostgreSQL cannot hold (NUL) names no job: it is unknown, not an error.
  const jobHint = { jobId: event.callbackId && isUuid(event.callbackId) ? event.callbackId : null, upstreamId: event.upstreamId?.includes('\u0000') ? null : event.upstreamId };
  const { follow } = services.jobDeps;
  // A signed webhook comes from HeyGen: the job is read now, after answering, and its hint claims it in the same
  // statement when its last read is at least the interval ago (hintAndClaimJob). Unsigned ones only mark the job due:
  // the worker's next pass reads it, in bulk, brought forward to within CALLBACK_READ_WITHIN_MS.
  const hint = secret
    ? await hintAndClaimJob(services.db, accountId, jobHint, follow.statusReadMinIntervalMs, follow.leaseMs)
    : { ...(await hintJob(services.db, accountId, jobHint, follow.statusReadMinIntervalMs)), claimed: null };
  if (!hint.accountKnown) return { status: 404, body: { error: 'unknown account' } };
  if (!hint.jobId) {
    // Debug only: unknown ids cost one indexed statement and no upstream call, and must not flood the log either.
    services.logger.debug({ accountId, eventType: event.eventType }, 'webhook for no known job ignored');
    return { status: 202, body: { accepted: false } };
  }
  const jobId = hint.jobId;
  const claimed = hint.claimed;
  // An unsigned callback that made its job due: this process's worker reads it soon, with the others due by then.
  if (!secret && hint.dueNow) services.worker?.runWithin(services.config.workers.callbackReadWithinMs);
  if (claimed || (secret && hint.dueNow)) {
    // HeyGen's events say the job ended: its detail (with the duration) is read at once, not the bulk status first.
    // Not claimed by the hint but made due by it (a job awaiting resubmission): through the worker's claim, so never
    // sooner than it would.
    setImmediate(() => {
      (claimed ? runClaimed(services.jobDeps, [claimed], { detailFirst: true }) : runDueJobNow(services.jobDeps, jobId, { detailFirst: true })).catch(
        (error: unknown) => services.logger.warn({ jobId, err: error }, 'refresh after webhook failed; the poller will retry'),
      );
    });
  }
  return { status: 202, body: { accepted: true } };
}
