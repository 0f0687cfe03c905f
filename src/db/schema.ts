// Drizzle tables. Money is never a JS number here: credit-seconds are bigint
// micro-credit-seconds (1 cs = 1_000_000), USD rates are numeric strings.
import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  check,
  date,
  index,
  integer,
  jsonb,
  numeric,
  pgEnum,
  pgTable,
  primaryKey,
  text,
  timestamp,
  unique,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';

export const ORG_UNIT_KINDS = ['ORGANIZATION', 'DEPARTMENT', 'TEAM', 'PROJECT'] as const;
export type OrgUnitKind = (typeof ORG_UNIT_KINDS)[number];
export const BILLING_MODELS = ['USAGE_BASED', 'CREDIT_PACKAGE'] as const;
export type BillingModel = (typeof BILLING_MODELS)[number];
export const ALLOCATION_POLICIES = ['PROPORTIONAL', 'MARGINAL', 'COMMITTED_SHARES'] as const;
export type AllocationPolicy = (typeof ALLOCATION_POLICIES)[number];
export const BUDGET_WINDOWS = ['MONTHLY', 'CONTRACT_TERM', 'LIFETIME', 'DAILY', 'WEEKLY', 'QUARTERLY', 'CUSTOM'] as const;
export type BudgetWindow = (typeof BUDGET_WINDOWS)[number];
export const ENFORCEMENTS = ['HARD', 'SOFT'] as const;
export type Enforcement = (typeof ENFORCEMENTS)[number];
export const JOB_KINDS = [
  'AVATAR_VIDEO',
  'TEMPLATE_VIDEO',
  'VIDEO_TRANSLATION',
  'VIDEO_AGENT',
  'LIPSYNC',
  'TTS',
  'TRANSLATION_PROOFREAD',
  'AVATAR_CREATION',
  'VIDEO_BATCH',
  'VIDEO_TRANSLATION_BATCH',
  'LIPSYNC_BATCH',
] as const;
export type JobKind = (typeof JOB_KINDS)[number];
export const JOB_STATUSES = [
  /** Admitted (its hold taken) but waiting for a free concurrency slot of its account (src/jobs/queue.ts). */
  'QUEUED',
  'RESERVED',
  'SUBMIT_UNKNOWN',
  'SUBMITTED',
  'PROCESSING',
  'SUCCEEDED',
  'FAILED',
  'CANCELLED',
  'REJECTED',
  'EXPIRED',
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const LEDGER_ENTRY_TYPES = ['HOLD', 'RELEASE', 'DEBIT', 'ADJUSTMENT'] as const;
export type LedgerEntryType = (typeof LEDGER_ENTRY_TYPES)[number];
export const ITEM_KINDS = [
  'video',
  'translation',
  'agent_session',
  'lipsync',
  'speech',
  'proofread',
  'avatar_look',
  'avatar_group',
  'batch_video',
  'batch_translation',
  'batch_lipsync',
] as const;
export type ItemKind = (typeof ITEM_KINDS)[number];
export const ITEM_STATUSES = ['pending', 'processing', 'completed', 'failed', 'not_found'] as const;
export type ItemStatus = (typeof ITEM_STATUSES)[number];

export const orgUnitKindEnum = pgEnum('org_unit_kind', ORG_UNIT_KINDS);
export const billingModelEnum = pgEnum('billing_model', BILLING_MODELS);
export const allocationPolicyEnum = pgEnum('allocation_policy', ALLOCATION_POLICIES);
export const budgetWindowEnum = pgEnum('budget_window', BUDGET_WINDOWS);
export const enforcementEnum = pgEnum('enforcement', ENFORCEMENTS);
export const jobKindEnum = pgEnum('job_kind', JOB_KINDS);
export const jobStatusEnum = pgEnum('job_status', JOB_STATUSES);
export const ledgerEntryTypeEnum = pgEnum('ledger_entry_type', LEDGER_ENTRY_TYPES);

const micro = (name: string) => bigint(name, { mode: 'bigint' });
const createdAt = () => timestamp('created_at', { withTimezone: true }).notNull().defaultNow();

/** Price book: credit-seconds billed per output second, per product; editable per account. */
export interface PriceBook {
  unit: 'credit-seconds per output second';
  rates: Record<string, string>;
  /**
   * Seconds held for what can be neither measured nor read from the request (audio_asset, video_asset,
   * template, video_agent); a caller's estimate can raise these, never lower them.
   */
  maxSeconds: Record<string, string>;
  wordsPerMinute: number;
  /** Estimates are multiplied by this (percent), so that a hold rarely falls short. */
  safetyMarginPercent: number;
  /** 0 bills exact seconds; N rounds each output up to a multiple of N seconds. */
  billingIncrementSeconds: number;
}

export const accountsTable = pgTable('accounts', {
  id: uuid('id').primaryKey().defaultRandom(),
  name: text('name').notNull().unique(),
  billingModel: billingModelEnum('billing_model').notNull(),
  apiKeyCiphertext: text('api_key_ciphertext').notNull(),
  apiKeyHint: text('api_key_hint').notNull(),
  webhookSecretCiphertext: text('webhook_secret_ciphertext'),
  baseUrl: text('base_url').notNull(),
  concurrencyLimit: integer('concurrency_limit').notNull(),
  timezone: text('timezone').notNull().default('UTC'),
  priceBook: jsonb('price_book').$type<PriceBook>().notNull(),
  /** Credit-seconds per "credit" in HeyGen's users/me answer (unconfirmed upstream, so configurable). */
  walletCreditUnitSeconds: integer('wallet_credit_unit_seconds').notNull().default(60),
  createdAt: createdAt(),
}, (t) => [check('accounts_concurrency_positive', sql`${t.concurrencyLimit} > 0`)]);

/**
 * Contract terms, versioned: a row applies from `effective_from` (a YYYY-MM period) until the next row.
 * The allocation policy and the cost centre are terms too, so a closed month keeps the rules it was billed by.
 */
export const accountTermsTable = pgTable('account_terms', {
  id: uuid('id').primaryKey().defaultRandom(),
  accountId: uuid('account_id').notNull().references(() => accountsTable.id),
  effectiveFrom: text('effective_from').notNull(),
  /** The published tier these terms were taken from (MMC_1000, MMC_5000, MMC_20000), or null for custom terms. */
  preset: text('preset'),
  mmcUsd: numeric('mmc_usd'),
  includedMicroCs: micro('included_micro_cs'),
  contractRateUsd: numeric('contract_rate_usd'),
  overageRateUsd: numeric('overage_rate_usd'),
  poolMicroCs: micro('pool_micro_cs'),
  /** Credit package: the price per credit-second, or (exclusive) the package's total price. */
  pricePerCsUsd: numeric('price_per_cs_usd'),
  totalPriceUsd: numeric('total_price_usd'),
  termStart: text('term_start'),
  termEnd: text('term_end'),
  allocationPolicy: allocationPolicyEnum('allocation_policy').notNull().default('PROPORTIONAL'),
  /** Receives unallocated commitment and forfeited credits; null: the organization (root). */
  costCentreUnitId: uuid('cost_centre_unit_id').references(() => orgUnitsTable.id),
  createdBy: text('created_by'),
  createdAt: createdAt(),
}, (t) => [
  unique('account_terms_account_effective').on(t.accountId, t.effectiveFrom),
  check('account_terms_one_price', sql`${t.pricePerCsUsd} is null or ${t.totalPriceUsd} is null`),
]);

export const orgUnitsTable = pgTable('org_units', {
  id: uuid('id').primaryKey().defaultRandom(),
  parentId: uuid('parent_id'),
  kind: orgUnitKindEnum('kind').notNull(),
  name: text('name').notNull(),
  /** Ancestor ids from the root to this unit, inclusive: ancestors in one read, subtree by `path @> {id}`. */
  path: uuid('path').array().notNull(),
  depth: integer('depth').notNull(),
  accountId: uuid('account_id').references(() => accountsTable.id),
  createdAt: createdAt(),
}, (t) => [
  unique('org_units_parent_name').on(t.parentId, t.name).nullsNotDistinct(),
  index('org_units_path_gin').using('gin', t.path),
  // One organization: two concurrent creations cannot both become a root.
  uniqueIndex('org_units_single_root').on(sql`(${t.parentId} is null)`).where(sql`${t.parentId} is null`),
]);

export const budgetsTable = pgTable('budgets', {
  id: uuid('id').primaryKey().defaultRandom(),
  orgUnitId: uuid('org_unit_id').notNull().references(() => orgUnitsTable.id),
  /** null: the budget covers the unit's use of every account. */
  accountId: uuid('account_id').references(() => accountsTable.id),
  window: budgetWindowEnum('window').notNull(),
  limitMicroCs: micro('limit_micro_cs').notNull(),
  /** Set when the limit was given in USD: limit_micro_cs is then derived from it (see budgets.ts). */
  limitUsd: numeric('limit_usd'),
  enforcement: enforcementEnum('enforcement').notNull().default('HARD'),
  allowOverage: boolean('allow_overage').notNull().default(true),
  alertThresholds: integer('alert_thresholds').array().notNull().default(sql`'{50,80,100}'::integer[]`),
  /** CUSTOM only: the first day (inclusive) and the end day (exclusive) of the window, account-local dates. */
  windowFrom: date('window_from', { mode: 'string' }),
  windowTo: date('window_to', { mode: 'string' }),
  /** MONTHLY only: at most this much of last month's unused limit is added to this month's (see budgets.ts). */
  rolloverCapMicroCs: micro('rollover_cap_micro_cs'),
  /** Set with the cap: the first period (YYYY-MM) whose unused limit carries into the next one. */
  rolloverFrom: text('rollover_from'),
  createdAt: createdAt(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
}, (t) => [
  unique('budgets_unit_account_window').on(t.orgUnitId, t.accountId, t.window).nullsNotDistinct(),
  check('budgets_limit_non_negative', sql`${t.limitMicroCs} >= 0`),
  // Compared as text: a new enum value may not be used as a constant in the transaction that adds it.
  check(
    'budgets_custom_dates',
    sql`(${t.window}::text = 'CUSTOM') = (${t.windowFrom} is not null and ${t.windowTo} is not null) and (${t.windowFrom} is null or ${t.windowFrom} < ${t.windowTo})`,
  ),
  check(
    'budgets_rollover_monthly',
    sql`(${t.rolloverCapMicroCs} is null or (${t.window}::text = 'MONTHLY' and ${t.rolloverCapMicroCs} >= 0 and ${t.rolloverFrom} is not null))`,
  ),
]);

/**
 * Rollup counters per (unit, account, period): one row for every unit on a job's path,
 * updated in the same transaction as the ledger entries that justify them.
 */
export const usageRollupsTable = pgTable('usage_rollups', {
  orgUnitId: uuid('org_unit_id').notNull().references(() => orgUnitsTable.id),
  accountId: uuid('account_id').notNull().references(() => accountsTable.id),
  period: text('period').notNull(),
  reservedMicroCs: micro('reserved_micro_cs').notNull().default(sql`0`),
  settledMicroCs: micro('settled_micro_cs').notNull().default(sql`0`),
}, (t) => [
  primaryKey({ columns: [t.orgUnitId, t.accountId, t.period] }),
  check('usage_rollups_reserved_non_negative', sql`${t.reservedMicroCs} >= 0`),
]);

/**
 * MARGINAL's pool fill, kept as money settles (docs/billing.md, "MARGINAL from rollups"): per (account, period), the
 * included pool it was split with, the period's settled total and the last entry in settlement order (settled at, to
 * the millisecond, then ledger id); per unit (its own usage, not its subtree) the settled usage and its in-pool part.
 * Moved by a trigger on ledger_entries in the writer's transaction (every writer of DEBIT and ADJUSTMENT holds the
 * account row lock). `corrected`: the period has a negative adjustment, whose netting moves earlier entries; its
 * statement is computed from the ledger instead, and only `settled` is kept.
 */
export const usagePoolPeriodsTable = pgTable('usage_pool_periods', {
  accountId: uuid('account_id').notNull().references(() => accountsTable.id),
  period: text('period').notNull(),
  includedMicroCs: micro('included_micro_cs').notNull(),
  settledMicroCs: micro('settled_micro_cs').notNull().default(sql`0`),
  lastAt: timestamp('last_at', { withTimezone: true }),
  lastId: bigint('last_id', { mode: 'bigint' }),
  corrected: boolean('corrected').notNull().default(false),
}, (t) => [primaryKey({ columns: [t.accountId, t.period] })]);

export const usagePoolRollupsTable = pgTable('usage_pool_rollups', {
  accountId: uuid('account_id').notNull().references(() => accountsTable.id),
  period: text('period').notNull(),
  orgUnitId: uuid('org_unit_id').notNull().references(() => orgUnitsTable.id),
  settledMicroCs: micro('settled_micro_cs').notNull().default(sql`0`),
  inPoolMicroCs: micro('in_pool_micro_cs').notNull().default(sql`0`),
}, (t) => [primaryKey({ columns: [t.accountId, t.period, t.orgUnitId] })]);

/**
 * Daily counters per (unit, account, product, day), the day in the account's time zone (computed by the gateway,
 * never by PostgreSQL): one row for every unit on the path, moved by a trigger on ledger_entries in the same
 * transaction (migration 0014). `reserved` sits on the day the hold was placed (a release takes it back from
 * there), `settled` on the day of the settlement. Sum over days = usage_rollups. Product: the price-book product
 * of the job; ADJUSTMENT for adjustments.
 */
export const usageDailyTable = pgTable('usage_daily', {
  orgUnitId: uuid('org_unit_id').notNull().references(() => orgUnitsTable.id),
  accountId: uuid('account_id').notNull().references(() => accountsTable.id),
  product: text('product').notNull(),
  day: date('day', { mode: 'string' }).notNull(),
  reservedMicroCs: micro('reserved_micro_cs').notNull().default(sql`0`),
  settledMicroCs: micro('settled_micro_cs').notNull().default(sql`0`),
}, (t) => [
  primaryKey({ columns: [t.orgUnitId, t.accountId, t.day, t.product] }),
]);

/**
 * Where an app asked to be told that its job ended: its URL, the `callback_id` it wants echoed, and the service
 * token whose callback signing secret signs the deliveries.
 */
export interface AppCallback {
  url: string;
  callbackId: string | null;
  tokenId: string;
}

export const jobsTable = pgTable('jobs', {
  id: uuid('id').primaryKey().defaultRandom(),
  projectId: uuid('project_id').notNull().references(() => orgUnitsTable.id),
  accountId: uuid('account_id').notNull().references(() => accountsTable.id),
  kind: jobKindEnum('kind').notNull(),
  status: jobStatusEnum('status').notNull(),
  request: jsonb('request').notNull(),
  requestHash: text('request_hash').notNull(),
  idempotencyScope: text('idempotency_scope').notNull(),
  idempotencyKey: text('idempotency_key'),
  createdBy: text('created_by').notNull(),
  /** The person an app named as the one it acts for (SERVICE tokens only); the job's person is then `user:<end_user>`, else created_by. */
  endUser: text('end_user'),
  /** Key/value tags (keys from the organization's allowlist, tag_keys): chargeback and budgets by tag value. */
  tags: jsonb('tags').$type<Record<string, string>>().notNull().default(sql`'{}'::jsonb`),
  product: text('product').notNull(),
  rateMicroCsPerSecond: micro('rate_micro_cs_per_second').notNull(),
  estimatedSeconds: numeric('estimated_seconds').notNull(),
  estimatedMicroCs: micro('estimated_micro_cs').notNull(),
  /** The hold still open on this job (0 once settled or released). */
  reservedMicroCs: micro('reserved_micro_cs').notNull(),
  holdPeriod: text('hold_period').notNull(),
  /** The day (account's time zone) the hold was placed: its daily rollup row (null only for jobs older than it). */
  holdDay: date('hold_day', { mode: 'string' }),
  actualSeconds: numeric('actual_seconds'),
  actualMicroCs: micro('actual_micro_cs'),
  overrunMicroCs: micro('overrun_micro_cs'),
  settledPeriod: text('settled_period'),
  failureCode: text('failure_code'),
  failureMessage: text('failure_message'),
  submitAttempts: integer('submit_attempts').notNull().default(0),
  checkAttempts: integer('check_attempts').notNull().default(0),
  /** Queue lease: background workers claim jobs whose next_check_at has passed (FOR UPDATE SKIP LOCKED). */
  nextCheckAt: timestamp('next_check_at', { withTimezone: true }),
  /**
   * When a worker last claimed the job to ask HeyGen about it. Status reads of one job are at least
   * STATUS_READ_MIN_INTERVAL_MS apart, however many webhooks arrive and on however many processes.
   */
  lastCheckedAt: timestamp('last_checked_at', { withTimezone: true }),
  /** A webhook named the job while it was still being forwarded: read it as soon as HeyGen's acceptance is recorded. */
  hintedAt: timestamp('hinted_at', { withTimezone: true }),
  /**
   * Since when the job waits in its account's queue (set while QUEUED, null otherwise): the queue's partial index is
   * on it, not on the status (a new enum value cannot be used in the migration's transaction that adds it).
   */
  queuedAt: timestamp('queued_at', { withTimezone: true }),
  holdExpiresAt: timestamp('hold_expires_at', { withTimezone: true }).notNull(),
  /** The app's own callback (`callback_url` / `callback_id` of the body, kept apart from what is sent to HeyGen); null: none. */
  callback: jsonb('callback').$type<AppCallback>(),
  createdAt: createdAt(),
  submittedAt: timestamp('submitted_at', { withTimezone: true }),
  settledAt: timestamp('settled_at', { withTimezone: true }),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
}, (t) => [
  unique('jobs_idempotency').on(t.idempotencyScope, t.idempotencyKey),
  index('jobs_in_flight').on(t.accountId).where(sql`status in ('RESERVED','SUBMIT_UNKNOWN','SUBMITTED','PROCESSING')`),
  index('jobs_due').on(t.nextCheckAt).where(sql`next_check_at is not null`),
  index('jobs_project_created').on(t.projectId, t.createdAt, t.id),
  // The queue: FIFO by admission within a project, per account.
  index('jobs_queued').on(t.accountId, t.projectId, t.createdAt, t.id).where(sql`queued_at is not null`),
  // The queue's fair share counts the slot-seconds of an account's jobs that ended in the last hour (gateway_queue_pick).
  index('jobs_account_settled').on(t.accountId, t.settledAt).where(sql`settled_at is not null`),
  check('jobs_reserved_non_negative', sql`${t.reservedMicroCs} >= 0`),
]);

export const jobItemsTable = pgTable('job_items', {
  id: uuid('id').primaryKey().defaultRandom(),
  jobId: uuid('job_id').notNull().references(() => jobsTable.id),
  upstreamId: text('upstream_id').notNull(),
  kind: text('kind').$type<ItemKind>().notNull(),
  videoId: text('video_id'),
  language: text('language'),
  status: text('status').$type<ItemStatus>().notNull().default('pending'),
  durationSeconds: numeric('duration_seconds'),
  costMicroCs: micro('cost_micro_cs'),
  failureMessage: text('failure_message'),
  /** The create answer's `data` where it holds more than ids, as HeyGen sent it (text to speech: audio_url, duration, request_id; avatar creation: avatar_group, avatar_item). */
  createAnswer: jsonb('create_answer'),
  createdAt: createdAt(),
}, (t) => [
  unique('job_items_job_upstream').on(t.jobId, t.upstreamId),
  index('job_items_upstream').on(t.upstreamId),
  index('job_items_video').on(t.videoId),
  // The avatar group of a created look (HeyGen's create answer): the /v3 front finds which job created a group.
  index('job_items_avatar_group')
    .on(sql`(coalesce(${t.createAnswer} -> 'avatar_group' ->> 'id', ${t.createAnswer} -> 'avatar_item' ->> 'group_id'))`)
    .where(sql`kind = 'avatar_look'`),
]);

/**
 * Append-only ledger (a trigger refuses UPDATE and DELETE). Amounts are positive; the type gives the sign:
 * open reserved = Σ HOLD − Σ RELEASE, settled = Σ DEBIT + Σ ADJUSTMENT (which may be negative).
 */
export const ledgerEntriesTable = pgTable('ledger_entries', {
  id: bigserial('id', { mode: 'bigint' }).primaryKey(),
  jobId: uuid('job_id').references(() => jobsTable.id),
  entryType: ledgerEntryTypeEnum('entry_type').notNull(),
  accountId: uuid('account_id').notNull().references(() => accountsTable.id),
  orgUnitId: uuid('org_unit_id').notNull().references(() => orgUnitsTable.id),
  period: text('period').notNull(),
  /** The day (account's time zone) the movement counts on in usage_daily; a HOLD takes its job's hold_day. */
  day: date('day', { mode: 'string' }),
  amountMicroCs: micro('amount_micro_cs').notNull(),
  note: text('note'),
  createdAt: createdAt(),
}, (t) => [
  // A job's entries are found through ledger_one_per_job_type (job_id first): no index of job_id alone, which cost
  // each of a job's entries one more index insert.
  index('ledger_account_period').on(t.accountId, t.period),
  // Settlement order within a period, for MARGINAL: the entries settled after a late one (usage_pool_periods).
  index('ledger_settlement_order').on(t.accountId, t.period, t.createdAt).where(sql`entry_type in ('DEBIT', 'ADJUSTMENT')`),
  unique('ledger_one_per_job_type').on(t.jobId, t.entryType),
  check('ledger_amount_sign', sql`${t.entryType} = 'ADJUSTMENT' or ${t.amountMicroCs} >= 0`),
]);

/** The gateway's own JWT signing keys (private half encrypted under the master key). */
export const signingKeysTable = pgTable('signing_keys', {
  kid: text('kid').primaryKey(),
  alg: text('alg').notNull(),
  privateKeyCiphertext: text('private_key_ciphertext').notNull(),
  publicJwk: jsonb('public_jwk').notNull(),
  active: boolean('active').notNull().default(true),
  createdAt: createdAt(),
});

/** Service tokens: only the jti is stored; the token itself is shown once. */
export const serviceTokensTable = pgTable('service_tokens', {
  id: uuid('id').primaryKey().defaultRandom(),
  orgUnitId: uuid('org_unit_id').notNull().references(() => orgUnitsTable.id),
  name: text('name').notNull(),
  createdBy: text('created_by').notNull(),
  expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
  revokedAt: timestamp('revoked_at', { withTimezone: true }),
  lastUsedAt: timestamp('last_used_at', { withTimezone: true }),
  /** The secret app callbacks of this token's jobs are signed with (encrypted; shown once, at issue or rotation). */
  callbackSecretCiphertext: text('callback_secret_ciphertext'),
  callbackSecretRotatedAt: timestamp('callback_secret_rotated_at', { withTimezone: true }),
  createdAt: createdAt(),
}, (t) => [index('service_tokens_unit').on(t.orgUnitId)]);

/**
 * COMMITTED_SHARES: finance's share of the commitment per unit, versioned like the terms. The set in force
 * for a period is the one with the latest `effective_from` not after it; each set sums exactly to 1.
 */
export const committedSharesTable = pgTable('committed_shares', {
  accountId: uuid('account_id').notNull().references(() => accountsTable.id),
  effectiveFrom: text('effective_from').notNull(),
  orgUnitId: uuid('org_unit_id').notNull().references(() => orgUnitsTable.id),
  share: numeric('share').notNull(),
  createdBy: text('created_by'),
  createdAt: createdAt(),
}, (t) => [
  primaryKey({ columns: [t.accountId, t.effectiveFrom, t.orgUnitId] }),
  check('committed_shares_range', sql`${t.share} >= 0 and ${t.share} <= 1`),
]);

/**
 * CONCURRENCY_SHARES: how an account's concurrency slots are shared among the org units whose jobs wait for one
 * (src/jobs/queue.ts): at each level of the tree, the next slot goes to the child unit with the fewest slot-seconds
 * per unit of weight (gateway_queue_pick), units under their guaranteed minimum first, never one at its maximum. A
 * unit without a row has weight 1, no minimum and no maximum.
 */
export const concurrencySharesTable = pgTable('concurrency_shares', {
  accountId: uuid('account_id').notNull().references(() => accountsTable.id),
  orgUnitId: uuid('org_unit_id').notNull().references(() => orgUnitsTable.id),
  weight: integer('weight').notNull(),
  minSlots: integer('min_slots').notNull().default(0),
  maxSlots: integer('max_slots'),
  updatedBy: text('updated_by'),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
}, (t) => [
  primaryKey({ columns: [t.accountId, t.orgUnitId] }),
  check('concurrency_shares_weight', sql`${t.weight} > 0`),
  check('concurrency_shares_min', sql`${t.minSlots} >= 0`),
  check('concurrency_shares_max', sql`${t.maxSlots} is null or ${t.maxSlots} >= greatest(${t.minSlots}, 1)`),
]);

/**
 * Usage adjustments (usage made before the gateway existed, corrections): the money is one ADJUSTMENT
 * ledger entry; this row says why, who, and which period was asked for (a closed one moves to the next open one).
 */
export const usageAdjustmentsTable = pgTable('usage_adjustments', {
  id: uuid('id').primaryKey().defaultRandom(),
  ledgerEntryId: bigint('ledger_entry_id', { mode: 'bigint' }).notNull().unique().references(() => ledgerEntriesTable.id),
  requestedPeriod: text('requested_period').notNull(),
  reason: text('reason').notNull(),
  createdBy: text('created_by').notNull(),
  createdAt: createdAt(),
});

/** Closed periods: the chargeback statement frozen as canonical JSON. A trigger refuses UPDATE and DELETE. */
export const billingStatementsTable = pgTable('billing_statements', {
  id: uuid('id').primaryKey().defaultRandom(),
  accountId: uuid('account_id').notNull().references(() => accountsTable.id),
  period: text('period').notNull(),
  statement: text('statement').notNull(),
  closedBy: text('closed_by').notNull(),
  closedAt: timestamp('closed_at', { withTimezone: true }).notNull(),
}, (t) => [unique('billing_statements_account_period').on(t.accountId, t.period)]);

/** Who changed what (append-only): before and after as JSON, amounts as decimal strings. */
export const auditEventsTable = pgTable('audit_events', {
  id: bigserial('id', { mode: 'bigint' }).primaryKey(),
  actorSubject: text('actor_subject').notNull(),
  actorRole: text('actor_role').notNull(),
  /** jti of the token the change was made with. */
  actorTokenId: text('actor_token_id'),
  /** X-Request-Id of the HTTP request (or one the gateway made up). */
  requestId: text('request_id'),
  action: text('action').notNull(),
  entityType: text('entity_type').notNull(),
  entityId: text('entity_id').notNull(),
  before: jsonb('before'),
  after: jsonb('after'),
  createdAt: createdAt(),
}, (t) => [
  index('audit_events_entity').on(t.entityType, t.entityId),
  index('audit_events_created').on(t.createdAt, t.id),
  index('audit_events_actor').on(t.actorSubject, t.createdAt),
]);

/** The wallet-sync queue: one row per account, claimed with FOR UPDATE SKIP LOCKED when next_sync_at has passed. */
export const walletSyncStateTable = pgTable('wallet_sync_state', {
  accountId: uuid('account_id').primaryKey().references(() => accountsTable.id),
  nextSyncAt: timestamp('next_sync_at', { withTimezone: true }).notNull().defaultNow(),
  lastAttemptAt: timestamp('last_attempt_at', { withTimezone: true }),
  lastError: text('last_error'),
  failures: integer('failures').notNull().default(0),
}, (t) => [index('wallet_sync_due').on(t.nextSyncAt)]);

/**
 * What HeyGen's `users/me` said, converted to credit-seconds with the account's wallet_credit_unit_seconds,
 * and the drift against the ledger (HeyGen's used − the gateway's settled) at that moment.
 */
export const walletSnapshotsTable = pgTable('wallet_snapshots', {
  id: bigserial('id', { mode: 'bigint' }).primaryKey(),
  accountId: uuid('account_id').notNull().references(() => accountsTable.id),
  takenAt: timestamp('taken_at', { withTimezone: true }).notNull(),
  /** Usage-based: the period compared; credit package: the term's periods `from..to`. */
  comparedFrom: text('compared_from').notNull(),
  comparedTo: text('compared_to').notNull(),
  billingType: text('billing_type'),
  includedCredits: numeric('included_credits'),
  remainingCredits: numeric('remaining_credits'),
  spendingCapUsd: numeric('spending_cap_usd'),
  spendingCurrentUsd: numeric('spending_current_usd'),
  walletCurrency: text('wallet_currency'),
  walletRemainingBalance: numeric('wallet_remaining_balance'),
  creditUnitSeconds: integer('credit_unit_seconds').notNull(),
  /** null when the answer has no figure the gateway can compare (e.g. a subscription plan). */
  heygenUsedMicroCs: micro('heygen_used_micro_cs'),
  gatewayUsedMicroCs: micro('gateway_used_micro_cs').notNull(),
  driftMicroCs: micro('drift_micro_cs'),
  thresholdMicroCs: micro('threshold_micro_cs').notNull(),
  flagged: boolean('flagged').notNull(),
}, (t) => [index('wallet_snapshots_account_taken').on(t.accountId, t.takenAt, t.id)]);

export const MAPPABLE_ROLES = ['ADMIN', 'FINANCE', 'MANAGER', 'MEMBER'] as const;
export const mappableRoleEnum = pgEnum('mappable_role', MAPPABLE_ROLES);

/**
 * How company identity-provider tokens become gateway roles: a token whose `claim` is (or contains) `value`
 * gets `role` on `org_unit_id`. Of several matches the most privileged role wins.
 */
export const roleMappingsTable = pgTable('role_mappings', {
  id: uuid('id').primaryKey().defaultRandom(),
  claim: text('claim').notNull(),
  value: text('value').notNull(),
  role: mappableRoleEnum('role').notNull(),
  orgUnitId: uuid('org_unit_id').references(() => orgUnitsTable.id),
  createdBy: text('created_by').notNull(),
  createdAt: createdAt(),
}, (t) => [
  unique('role_mappings_claim_value_role_unit').on(t.claim, t.value, t.role, t.orgUnitId).nullsNotDistinct(),
  check('role_mappings_unit_for_scoped_roles', sql`(${t.role} in ('MANAGER', 'MEMBER')) = (${t.orgUnitId} is not null)`),
]);

/**
 * Usage HeyGen may bill that the ledger does not hold: a job whose hold expired (or whose submission stayed
 * unresolved past HeyGen's idempotency window) while it may still exist upstream. The wallet sync shows the
 * real difference; a note tells finance which job it may come from and how much the released hold was.
 */
export const driftNotesTable = pgTable('drift_notes', {
  id: bigserial('id', { mode: 'bigint' }).primaryKey(),
  accountId: uuid('account_id').notNull().references(() => accountsTable.id),
  jobId: uuid('job_id').notNull().references(() => jobsTable.id),
  projectId: uuid('project_id').notNull().references(() => orgUnitsTable.id),
  /** The account period the note was written in. */
  period: text('period').notNull(),
  /** `hold_expired` or `submit_unresolved`. */
  reason: text('reason').notNull(),
  /** The hold that was released: what the gateway expected the job to cost. */
  releasedMicroCs: micro('released_micro_cs').notNull(),
  createdAt: createdAt(),
}, (t) => [unique('drift_notes_job').on(t.jobId), index('drift_notes_account_period').on(t.accountId, t.period)]);

export const OUTBOX_STATUSES = ['PENDING', 'DELIVERED', 'DEAD'] as const;
export type OutboxStatus = (typeof OUTBOX_STATUSES)[number];

/**
 * The outbox: events written in the transaction that causes them, delivered at least once by any gateway process
 * (claimed with FOR UPDATE SKIP LOCKED when next_attempt_at has passed, which is also the claim's lease). One row
 * per event and destination; `dedupe_key` makes a re-run of the cause write nothing. `topic` names the destination
 * kind (`app_callback`), `kind` the event (`avatar_video.success`). DEAD: gave up after max_attempts.
 */
export const outboxEventsTable = pgTable('outbox_events', {
  id: uuid('id').primaryKey().defaultRandom(),
  topic: text('topic').notNull(),
  kind: text('kind').notNull(),
  dedupeKey: text('dedupe_key').notNull(),
  payload: jsonb('payload').notNull(),
  /** Where it goes, per topic (app_callback: `{url, tokenId}`); never a secret. */
  destination: jsonb('destination').$type<Record<string, unknown>>().notNull(),
  /** The job the event is about, when it is about one: who may read the job may read its events. */
  jobId: uuid('job_id').references(() => jobsTable.id),
  /** The unit the event belongs to (a job's project), so that readers of its subtree may be given it. */
  orgUnitId: uuid('org_unit_id').references(() => orgUnitsTable.id),
  status: text('status').$type<OutboxStatus>().notNull().default('PENDING'),
  attempts: integer('attempts').notNull().default(0),
  maxAttempts: integer('max_attempts').notNull(),
  nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true }),
  deliveredAt: timestamp('delivered_at', { withTimezone: true }),
  lastError: text('last_error'),
  createdAt: createdAt(),
}, (t) => [
  unique('outbox_events_topic_dedupe').on(t.topic, t.dedupeKey),
  index('outbox_events_due').on(t.nextAttemptAt).where(sql`status = 'PENDING'`),
  // The metrics' read (pending, lag, given up per topic) stays small however many events were delivered.
  index('outbox_events_undelivered').on(t.topic, t.createdAt).where(sql`status <> 'DELIVERED'`),
  index('outbox_events_job').on(t.jobId),
  // The money-event feed of a subtree, newest first (moneyEvents), and an account's last run-out forecast.
  index('outbox_events_money_unit').on(t.orgUnitId, t.createdAt).where(sql`topic = 'money_event'`),
  check('outbox_events_status', sql`${t.status} in ('PENDING', 'DELIVERED', 'DEAD')`),
]);

/** The delivery log: one row per attempt, whatever its outcome. */
export const outboxDeliveriesTable = pgTable('outbox_deliveries', {
  id: bigserial('id', { mode: 'bigint' }).primaryKey(),
  eventId: uuid('event_id').notNull().references(() => outboxEventsTable.id),
  attempt: integer('attempt').notNull(),
  /** `delivered`, `failed` (retried) or `gave_up` (the last attempt failed). */
  outcome: text('outcome').notNull(),
  httpStatus: integer('http_status'),
  error: text('error'),
  startedAt: timestamp('started_at', { withTimezone: true }).notNull(),
  durationMs: integer('duration_ms').notNull(),
}, (t) => [unique('outbox_deliveries_event_attempt').on(t.eventId, t.attempt)]);

export const NOTIFICATION_CHANNEL_KINDS = ['WEBHOOK', 'SLACK', 'TEAMS', 'EMAIL'] as const;
export type NotificationChannelKind = (typeof NOTIFICATION_CHANNEL_KINDS)[number];

/**
 * Where money events go: a signed webhook, a Slack or Teams incoming webhook, or an e-mail address over SMTP. The
 * channel's secret part (the URL, which for Slack and Teams is the credential itself, the webhook's signing secret,
 * the SMTP URL with its password) is one JSON object encrypted under the master key (bound to the channel's id);
 * `display` holds what may be shown (a host, a recipient).
 */
export const notificationChannelsTable = pgTable('notification_channels', {
  id: uuid('id').primaryKey().defaultRandom(),
  /** The unit whose managers manage the channel (a subtree root). */
  orgUnitId: uuid('org_unit_id').notNull().references(() => orgUnitsTable.id),
  kind: text('kind').$type<NotificationChannelKind>().notNull(),
  name: text('name').notNull(),
  secretCiphertext: text('secret_ciphertext').notNull(),
  display: text('display').notNull(),
  enabled: boolean('enabled').notNull().default(true),
  createdAt: createdAt(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
}, (t) => [
  unique('notification_channels_unit_name').on(t.orgUnitId, t.name),
  check('notification_channels_kind', sql`${t.kind} in ('WEBHOOK', 'SLACK', 'TEAMS', 'EMAIL')`),
]);

/** Routes money events of a subtree (and of these kinds) to a channel. */
export const notificationRulesTable = pgTable('notification_rules', {
  id: uuid('id').primaryKey().defaultRandom(),
  /** Events of this unit and every unit below it. */
  orgUnitId: uuid('org_unit_id').notNull().references(() => orgUnitsTable.id),
  channelId: uuid('channel_id').notNull().references(() => notificationChannelsTable.id, { onDelete: 'cascade' }),
  eventKinds: text('event_kinds').array().notNull(),
  createdAt: createdAt(),
}, (t) => [index('notification_rules_unit').on(t.orgUnitId), index('notification_rules_channel').on(t.channelId)]);

/**
 * Which alert thresholds of a budget are crossed in a window (`window_from`..`window_to`, inclusive: YYYY-MM, or
 * YYYY-MM-DD for DAILY, WEEKLY and CUSTOM budgets): a row flips to
 * crossed once (the one `budget.threshold_crossed`), and back when a raise brings usage under (`resolved`);
 * `generation` counts the flips, so each crossing has its own event key. Maintained by the database triggers
 * (gateway_threshold_alerts), for unit budgets and group budgets alike: `budget_id` is a budgets or a group_budgets
 * id (both random uuids; neither kind of budget is ever deleted).
 */
export const budgetAlertStatesTable = pgTable('budget_alert_states', {
  budgetId: uuid('budget_id').notNull(),
  windowFrom: text('window_from').notNull(),
  windowTo: text('window_to').notNull(),
  threshold: integer('threshold').notNull(),
  crossed: boolean('crossed').notNull(),
  generation: integer('generation').notNull().default(1),
  changedAt: timestamp('changed_at', { withTimezone: true }).notNull().defaultNow(),
}, (t) => [primaryKey({ columns: [t.budgetId, t.windowFrom, t.windowTo, t.threshold] })]);

/** The tag keys jobs may carry, per organization (the root unit): set by ADMIN or FINANCE (setTagKeys). */
export const tagKeysTable = pgTable('tag_keys', {
  organizationId: uuid('organization_id').notNull().references(() => orgUnitsTable.id),
  key: text('key').notNull(),
  createdBy: text('created_by').notNull(),
  createdAt: createdAt(),
}, (t) => [primaryKey({ columns: [t.organizationId, t.key] })]);

/**
 * Usage per tag set: (unit, account, period, the job's whole tag set), one row for every unit on the job's path,
 * moved by a trigger on ledger_entries in the same transaction. Jobs without tags (and adjustments) have no row:
 * they are the unit's usage (usage_rollups) minus these. Grouping by one key sums the sets that carry it.
 */
export const usageTagRollupsTable = pgTable('usage_tag_rollups', {
  orgUnitId: uuid('org_unit_id').notNull().references(() => orgUnitsTable.id),
  accountId: uuid('account_id').notNull().references(() => accountsTable.id),
  period: text('period').notNull(),
  tags: jsonb('tags').$type<Record<string, string>>().notNull(),
  reservedMicroCs: micro('reserved_micro_cs').notNull().default(sql`0`),
  settledMicroCs: micro('settled_micro_cs').notNull().default(sql`0`),
}, (t) => [
  primaryKey({ columns: [t.orgUnitId, t.accountId, t.period, t.tags] }),
  check('usage_tag_rollups_reserved_non_negative', sql`${t.reservedMicroCs} >= 0`),
]);

/**
 * Usage per person: (unit, account, period, person), the person being the job's end user (`user:<name>`) or its
 * submitting subject (jobs.created_by); maintained like usage_tag_rollups. Adjustments have no person.
 */
export const usagePersonRollupsTable = pgTable('usage_person_rollups', {
  orgUnitId: uuid('org_unit_id').notNull().references(() => orgUnitsTable.id),
  accountId: uuid('account_id').notNull().references(() => accountsTable.id),
  period: text('period').notNull(),
  person: text('person').notNull(),
  reservedMicroCs: micro('reserved_micro_cs').notNull().default(sql`0`),
  settledMicroCs: micro('settled_micro_cs').notNull().default(sql`0`),
}, (t) => [
  primaryKey({ columns: [t.orgUnitId, t.accountId, t.period, t.person] }),
  check('usage_person_rollups_reserved_non_negative', sql`${t.reservedMicroCs} >= 0`),
]);

/**
 * Daily usage per tag set: usage_tag_rollups per account-local day instead of period (the day of the ledger entry:
 * a hold's day, which its release takes back from; a settlement's own day), moved by the same trigger in the same
 * transaction. Group budgets over DAILY, WEEKLY and CUSTOM windows sum it (gateway_group_budget_usage), as unit
 * budgets sum usage_daily. Sum over a period's days = usage_tag_rollups.
 */
export const usageTagDailyTable = pgTable('usage_tag_daily', {
  orgUnitId: uuid('org_unit_id').notNull().references(() => orgUnitsTable.id),
  accountId: uuid('account_id').notNull().references(() => accountsTable.id),
  day: date('day', { mode: 'string' }).notNull(),
  tags: jsonb('tags').$type<Record<string, string>>().notNull(),
  reservedMicroCs: micro('reserved_micro_cs').notNull().default(sql`0`),
  settledMicroCs: micro('settled_micro_cs').notNull().default(sql`0`),
}, (t) => [
  primaryKey({ columns: [t.orgUnitId, t.accountId, t.day, t.tags] }),
  check('usage_tag_daily_reserved_non_negative', sql`${t.reservedMicroCs} >= 0`),
]);

/** Daily usage per person: usage_person_rollups per account-local day, as usage_tag_daily is to usage_tag_rollups. */
export const usagePersonDailyTable = pgTable('usage_person_daily', {
  orgUnitId: uuid('org_unit_id').notNull().references(() => orgUnitsTable.id),
  accountId: uuid('account_id').notNull().references(() => accountsTable.id),
  day: date('day', { mode: 'string' }).notNull(),
  person: text('person').notNull(),
  reservedMicroCs: micro('reserved_micro_cs').notNull().default(sql`0`),
  settledMicroCs: micro('settled_micro_cs').notNull().default(sql`0`),
}, (t) => [
  primaryKey({ columns: [t.orgUnitId, t.accountId, t.day, t.person] }),
  check('usage_person_daily_reserved_non_negative', sql`${t.reservedMicroCs} >= 0`),
]);

/**
 * HARD caps on a group of jobs within a unit's subtree: those carrying one tag value (a campaign), or those of one
 * person. Checked by the admission function (gateway_check_group_budgets) with the unit budgets' guarantees, over
 * the unit budgets' windows (gateway_budget_bounds); threshold events like a unit budget's.
 */
export const groupBudgetsTable = pgTable('group_budgets', {
  id: uuid('id').primaryKey().defaultRandom(),
  orgUnitId: uuid('org_unit_id').notNull().references(() => orgUnitsTable.id),
  /** null: the budget covers every account. */
  accountId: uuid('account_id').references(() => accountsTable.id),
  window: budgetWindowEnum('window').notNull(),
  limitMicroCs: micro('limit_micro_cs').notNull(),
  tagKey: text('tag_key'),
  tagValue: text('tag_value'),
  person: text('person'),
  alertThresholds: integer('alert_thresholds').array().notNull().default(sql`'{50,80,100}'::integer[]`),
  /** CUSTOM only: the first day (inclusive) and the end day (exclusive) of the window, account-local dates. */
  windowFrom: date('window_from', { mode: 'string' }),
  windowTo: date('window_to', { mode: 'string' }),
  createdAt: createdAt(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
}, (t) => [
  unique('group_budgets_scope').on(t.orgUnitId, t.accountId, t.window, t.tagKey, t.tagValue, t.person).nullsNotDistinct(),
  check('group_budgets_limit_non_negative', sql`${t.limitMicroCs} >= 0`),
  check('group_budgets_one_group', sql`(${t.tagKey} is not null and ${t.tagValue} is not null and ${t.person} is null) or (${t.tagKey} is null and ${t.tagValue} is null and ${t.person} is not null)`),
  // As budgets_custom_dates (compared as text: a new enum value may not be used as a constant in the transaction that adds it).
  check(
    'group_budgets_custom_dates',
    sql`(${t.window}::text = 'CUSTOM') = (${t.windowFrom} is not null and ${t.windowTo} is not null) and (${t.windowFrom} is null or ${t.windowFrom} < ${t.windowTo})`,
  ),
]);

/** Output resolutions a policy can cap, lowest first (the order `maxResolution` compares in). */
export const RESOLUTIONS = ['720p', '1080p', '4k'] as const;
export type Resolution = (typeof RESOLUTIONS)[number];

/**
 * A unit's own job policy and rate limits (docs/governance.md). Every column is one rule; null: this unit sets none.
 * A job must satisfy the rules of every unit on its path (checked by `gateway_check_governance` in the admission
 * transaction), so the effective policy is the intersection (sets) or minimum (maxima) along the path. The rate
 * limit columns count jobs (and their holds) of the whole subtree; an admission locks the rows that carry one.
 */
export const unitPoliciesTable = pgTable('unit_policies', {
  orgUnitId: uuid('org_unit_id').primaryKey().references(() => orgUnitsTable.id),
  allowedKinds: jobKindEnum('allowed_kinds').array(),
  /** Pricing-model products (AVATAR_IV, TRANSLATION_PRECISION, …): every candidate product of a job must be in it. */
  allowedProducts: text('allowed_products').array(),
  maxResolution: text('max_resolution'),
  /** Longest single output, in whole seconds, as the hold estimates it. */
  maxLengthSeconds: integer('max_length_seconds'),
  /** Largest hold of one job. */
  maxCostMicroCs: micro('max_cost_micro_cs'),
  /** Target languages of translations (compared without case). */
  allowedLanguages: text('allowed_languages').array(),
  jobsPerMinute: integer('jobs_per_minute'),
  creditMicroCsPerHour: micro('credit_micro_cs_per_hour'),
  updatedBy: text('updated_by').notNull(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
}, (t) => [
  check('unit_policies_resolution', sql`${t.maxResolution} in ('720p', '1080p', '4k')`),
  check('unit_policies_positive', sql`${t.maxLengthSeconds} > 0 and ${t.maxCostMicroCs} > 0 and ${t.jobsPerMinute} > 0 and ${t.creditMicroCsPerHour} > 0`),
]);

/** Rate limits of one service token (its own submissions), on top of its project's path. */
export const serviceTokenRateLimitsTable = pgTable('service_token_rate_limits', {
  tokenId: uuid('token_id').primaryKey().references(() => serviceTokensTable.id),
  jobsPerMinute: integer('jobs_per_minute'),
  creditMicroCsPerHour: micro('credit_micro_cs_per_hour'),
  updatedBy: text('updated_by').notNull(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
}, (t) => [check('service_token_rate_limits_positive', sql`${t.jobsPerMinute} > 0 and ${t.creditMicroCsPerHour} > 0`)]);

/**
 * Sliding-window rate counters: what was admitted under one limit (`scope`: `unit:<id>/jobs`, `unit:<id>/cs`,
 * `token:<id>/jobs`, `token:<id>/cs`) in one bucket (1 s for jobs per minute, 60 s for credit-seconds per hour).
 * Written only by admissions holding the lock of the limit's row; buckets past the window are deleted then.
 */
export const rateBucketsTable = pgTable('rate_buckets', {
  scope: text('scope').notNull(),
  bucketStart: timestamp('bucket_start', { withTimezone: true }).notNull(),
  amount: bigint('amount', { mode: 'bigint' }).notNull(),
}, (t) => [primaryKey({ columns: [t.scope, t.bucketStart] })]);

export const BUDGET_REQUEST_STATUSES = ['PENDING', 'APPROVED', 'REJECTED'] as const;
export type BudgetRequestStatus = (typeof BUDGET_REQUEST_STATUSES)[number];

/**
 * A request to raise a budget's limit, by a caller the budget binds (docs/budgets.md, Requests and transfers), and
 * its one decision: PENDING until an approver (a MANAGER above the unit, FINANCE, ADMIN) approves or rejects it.
 */
export const budgetRequestsTable = pgTable('budget_requests', {
  id: uuid('id').primaryKey().defaultRandom(),
  budgetId: uuid('budget_id').notNull().references(() => budgetsTable.id),
  /** The budget's unit (budgets never move), so that the approvers' subtree filter reads one table. */
  orgUnitId: uuid('org_unit_id').notNull().references(() => orgUnitsTable.id),
  amountMicroCs: micro('amount_micro_cs').notNull(),
  /** null: a permanent raise; else the raise is a grant that ends at this instant. */
  until: timestamp('until', { withTimezone: true }),
  reason: text('reason').notNull(),
  status: text('status').$type<BudgetRequestStatus>().notNull().default('PENDING'),
  requestedBySubject: text('requested_by_subject').notNull(),
  requestedByRole: text('requested_by_role').notNull(),
  requestedByTokenId: text('requested_by_token_id'),
  createdAt: createdAt(),
  decidedBySubject: text('decided_by_subject'),
  decidedByRole: text('decided_by_role'),
  decidedAt: timestamp('decided_at', { withTimezone: true }),
  decisionNote: text('decision_note'),
}, (t) => [
  index('budget_requests_unit_status').on(t.orgUnitId, t.status, t.createdAt),
  index('budget_requests_requester').on(t.requestedBySubject, t.createdAt),
  check('budget_requests_status', sql`${t.status} in ('PENDING', 'APPROVED', 'REJECTED')`),
  check('budget_requests_amount_positive', sql`${t.amountMicroCs} > 0`),
]);

/**
 * A temporary raise of a budget's limit: while `until` has not passed it adds to the limit wherever the limit is
 * checked (the admission's `gateway_budget_granted`, the budgets' reads), and afterwards it simply stops counting,
 * so no job lowers the limit again. Written by the approval of a request with an `until`.
 */
export const budgetGrantsTable = pgTable('budget_grants', {
  id: uuid('id').primaryKey().defaultRandom(),
  budgetId: uuid('budget_id').notNull().references(() => budgetsTable.id, { onDelete: 'cascade' }),
  requestId: uuid('request_id').notNull().references(() => budgetRequestsTable.id),
  amountMicroCs: micro('amount_micro_cs').notNull(),
  until: timestamp('until', { withTimezone: true }).notNull(),
  createdAt: createdAt(),
}, (t) => [
  unique('budget_grants_request').on(t.requestId),
  index('budget_grants_budget_until').on(t.budgetId, t.until),
  check('budget_grants_amount_positive', sql`${t.amountMicroCs} > 0`),
]);

/**
 * Gateway processes with at least one open live subscription (src/live/presence.ts), each for as long as it renews its
 * row. The triggers that announce changes to subscriptions (`NOTIFY gateway_live`, `NOTIFY gateway_money_event`) send
 * nothing while this table has no row in force: a NOTIFY makes its transaction's commit take PostgreSQL's one lock on
 * the notification queue, which every notifying commit of the cluster waits for in turn.
 */
export const liveListenersTable = pgTable('live_listeners', {
  processId: uuid('process_id').primaryKey(),
  expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
});
