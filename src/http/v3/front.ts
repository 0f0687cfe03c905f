// The HeyGen-compatible /v3 front: an app that speaks HeyGen v3 changes its base URL and its key (a gateway token)
// and nothing else. Creates go through the same admission and forwarding as GraphQL `submitJob`
// (src/jobs/submit.ts); reads answer only for jobs the caller may read, with HeyGen's fresh answer; free catalog
// reads pass through with the account's key, cached briefly. What the table (products.ts) does not route is
// never passed on: 501 for HeyGen operations not offered, 404 for anything else.
import { and, desc, eq, inArray, isNotNull, lt, notInArray, or } from 'drizzle-orm';
import { Hono, type Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { LRUCache } from 'lru-cache';
import type { Services } from '../../app.js';
import type { ObservedEnv } from '../observe.js';
import { readBodyCapped } from '../limits.js';
import { RequestRateLimiter } from '../hardening.js';
import { AuthenticationError } from '../../auth/tokens.js';
import { canReadAccountTotals, canReadCostsOf, canReadUnit, type Actor } from '../../auth/actor.js';
import { isDatabaseUnavailable } from '../../db/client.js';
import { jobItemsTable, jobsTable, orgUnitsTable } from '../../db/schema.js';
import {
  BudgetExceededError,
  ConcurrencyLimitError,
  DomainError,
  ForbiddenError,
  IdempotencyConflictError,
  NotFoundError,
  PolicyViolationError,
  RateLimitedError,
  ValidationError,
} from '../../errors.js';
import { HeygenError, type RawAnswer } from '../../heygen/client.js';
import { IDEMPOTENCY_KEY, type JobRow } from '../../jobs/admission.js';
import { itemsOfJob, submitJob, type JobItemRow } from '../../jobs/submit.js';
import { queueStanding } from '../../jobs/queue.js';
import { findItems, findVisibleItems, limiter, loadAccount, readUpstream, recordBatchItemIds, withAppCallbackId, type ItemMatch } from '../../jobs/outputs.js';
import { projectHeadroom } from '../../jobs/headroom.js';
import { accountForPath, isUuid } from '../../org/units.js';
import type { AccountRow } from '../../accounts/accounts.js';
import { formatCreditSeconds, formatCents, MICRO_PER_CS, usdToCentsHalfUp } from '../../primitives/money.js';
import * as Q from '../../primitives/rational.js';
import { tryDecodeId } from '../../graphql/ids.js';
import { visibleJobsFilter } from '../../graphql/visibility.js';
import { CATALOG, CREATES, LISTS, READS, STATUSES, type CatalogEntry, type CreateEntry, type ListEntry, type ReadEntry, type StatusesEntry } from './products.js';
import { HEYGEN_V3_OPERATIONS } from './operations.js';
import * as E from './errors.js';

/** How long a catalog answer is served from memory, and how many (and how many bytes of them) are kept. */
export const CATALOG_CACHE = { ttlMs: 60_000, maxEntries: 500, maxBytes: 32 * 1024 * 1024 };
/** Largest page of a /v3 list (HeyGen's lists page too); each item is one fresh HeyGen read, at most 4 at a time. */
export const MAX_LIST_LIMIT = 100;
const DEFAULT_LIST_LIMIT = 20;
const LIST_READ_CONCURRENCY = 4;
/** HeyGen's bulk status reads take at most 100 ids. */
const MAX_STATUS_IDS = 100;
/** The header a MEMBER, MANAGER or ADMIN token names its project with (a service token's project is its own). */
export const PROJECT_HEADER = 'x-gateway-project';
/** `campaign=spring,client=acme`: a create's tags (keys and values percent-decoded, so that `,` and `=` can be sent). */
export const TAGS_HEADER = 'x-gateway-tags';
/** The person an app submits for (SERVICE tokens), as submitJob's endUser. */
export const END_USER_HEADER = 'x-gateway-end-user';

interface Caller {
  actor: Actor;
  /** The project named (a service token's own, or X-Gateway-Project), or null when none was named. */
  projectId: string | null;
}

type V3Env = ObservedEnv & { Variables: { caller: Caller } };
type V3Context = Context<V3Env>;

function headerValue(c: V3Context, name: string): string | undefined {
  const v = c.req.header(name);
  return v === undefined ? undefined : v.trim();
}

/** The project a caller acts for: its own (SERVICE), else X-Gateway-Project (a project's global id it may read). */
async function requireProject(services: Services, caller: Caller): Promise<{ id: string; path: string[]; name: string }> {
  if (!caller.projectId) {
    throw E.validation(
      'X-Gateway-Project',
      'this token is not a project\'s service token: name the project with the header X-Gateway-Project: <the project\'s id as the gateway API returns it>',
    );
  }
  const [unit] = await services.db.select().from(orgUnitsTable).where(eq(orgUnitsTable.id, caller.projectId));
  if (!unit || !canReadUnit(caller.actor, unit)) throw E.notFound('Project');
  if (unit.kind !== 'PROJECT') throw E.validation('X-Gateway-Project', 'X-Gateway-Project must name a PROJECT unit');
  return unit;
}

async function accountOfProject(services: Services, project: { path: string[] }): Promise<AccountRow> {
  const accountId = await accountForPath(services.db, project.path);
  const account = accountId ? await loadAccount(services.db, accountId) : null;
  if (!account) throw E.validation('X-Gateway-Project', 'no HeyGen account is assigned to this project or any unit above it');
  return account;
}

/** A JSON body, bounded as /graphql's, and an object (every v3 create takes one). */
async function readJsonObject(services: Services, c: V3Context): Promise<Record<string, unknown>> {
  const bytes = c.req.raw.body ? await readBodyCapped(c.req.raw, services.config.graphql.maxBodyBytes) : Buffer.alloc(0);
  if (!bytes) throw new E.V3Error(413, 'payload_too_large', `Request body exceeds ${services.config.graphql.maxBodyBytes} bytes`, null, { connection: 'close' });
  const text = Buffer.from(bytes).toString('utf8');
  let value: unknown;
  try {
    value = text.trim() === '' ? {} : JSON.parse(text);
  } catch {
    throw E.validation(null, 'Request body is not valid JSON');
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw E.validation(null, 'Request body must be a JSON object');
  return value as Record<string, unknown>;
}

/** The X-Gateway-Tags header as the tags of a job; a malformed pair or a key given twice is a 400. */
function tagsOfHeader(value: string | undefined): Record<string, string> {
  const tags: Record<string, string> = {};
  if (value === undefined || value === '') return tags;
  const decode = (part: string) => {
    try {
      return decodeURIComponent(part.trim());
    } catch {
      throw E.validation('X-Gateway-Tags', 'X-Gateway-Tags: invalid percent-encoding');
    }
  };
  for (const pair of value.split(',')) {
    const at = pair.indexOf('=');
    if (at < 0) throw E.validation('X-Gateway-Tags', 'X-Gateway-Tags must be key=value pairs separated by commas');
    const key = decode(pair.slice(0, at));
    if (Object.hasOwn(tags, key)) throw E.validation('X-Gateway-Tags', `X-Gateway-Tags: key "${key.slice(0, 64)}" is given twice`);
    tags[key] = decode(pair.slice(at + 1));
  }
  return tags;
}

/** `request.avatar.id` → `avatar.id`; the gateway's own fields under HeyGen's names. */
function paramOf(field: string): string | null {
  if (field === 'request') return null;
  if (field.startsWith('request.')) return field.slice('request.'.length);
  if (field === 'idempotencyKey') return 'Idempotency-Key';
  if (field === 'projectId') return 'X-Gateway-Project';
  if (field === 'tags' || field.startsWith('tags.')) return 'X-Gateway-Tags';
  if (field === 'endUser') return 'X-Gateway-End-User';
  return field;
}

const cs = (micro: bigint) => formatCreditSeconds(micro);

/** A refusal of the gateway's own rules, in HeyGen's envelope (the caller sees what GraphQL would show it). */
async function fromDomainError(services: Services, actor: Actor, error: DomainError): Promise<E.V3Error> {
  if (error instanceof ValidationError) return E.validation(paramOf(error.field), error.message);
  if (error instanceof ConcurrencyLimitError) {
    return new E.V3Error(429, 'rate_limit_exceeded', `Concurrent job limit reached: ${error.message}`, null, { 'retry-after': String(error.retryAfterSeconds) });
  }
  if (error instanceof BudgetExceededError) {
    // The limit only where the caller may see it (GraphQL's BudgetExceededError.limitCreditSeconds rule).
    let limitVisible = false;
    if (error.reason === 'POOL') limitVisible = canReadAccountTotals(actor);
    else {
      const [unit] = await services.db.select({ id: orgUnitsTable.id, path: orgUnitsTable.path }).from(orgUnitsTable).where(eq(orgUnitsTable.id, error.orgUnitId));
      limitVisible = !!unit && canReadCostsOf(actor, unit);
    }
    const parts = [
      `unit=${JSON.stringify(error.details?.unitName ?? '')}`,
      ...(error.group ? ['person' in error.group ? `person=${JSON.stringify(error.group.person)}` : `tag=${JSON.stringify(`${error.group.tagKey}=${error.group.tagValue}`)}`] : []),
      ...(error.details ? [`window=${JSON.stringify(error.details.window)}`] : []),
      ...(limitVisible ? [`limit_credit_seconds=${cs(error.limitMicroCs)}`] : []),
      `available_credit_seconds=${cs(error.availableMicroCs)}`,
      `requested_credit_seconds=${cs(error.requestedMicroCs)}`,
    ];
    return new E.V3Error(402, 'budget_exceeded', error.message, parts.join(' '));
  }
  if (error instanceof IdempotencyConflictError) {
    return new E.V3Error(409, 'conflict', 'This Idempotency-Key was already used with a different request', 'Idempotency-Key');
  }
  if (error instanceof NotFoundError) return E.notFound(error.entity === 'OrgUnit' ? 'Project' : error.entity);
  // A unit policy: 403 with the rule and its unit in `param` (docs/governance.md); a rate limit: 429 with Retry-After.
  if (error instanceof PolicyViolationError) {
    const parts = [`rule=${error.rule}`, ...(error.unitName !== null ? [`unit=${JSON.stringify(error.unitName)}`] : []), `limit=${JSON.stringify(error.limit)}`, `actual=${JSON.stringify(error.actual)}`];
    return new E.V3Error(403, 'policy_violation', error.message, parts.join(' '));
  }
  if (error instanceof RateLimitedError) {
    return new E.V3Error(429, 'rate_limit_exceeded', error.message, null, { 'retry-after': String(error.retryAfterSeconds) });
  }
  if (error instanceof ForbiddenError) return new E.V3Error(403, 'forbidden', error.message);
  return new E.V3Error(502, 'upstream_error', error.message);
}

/**
 * A create whose job waits for a concurrency slot (docs/heygen-front.md): 202 with HeyGen's `pending` status, no
 * upstream id yet (HeyGen has not seen the job), where it stands, and Retry-After; the same Idempotency-Key later
 * answers HeyGen's create answer once the job was forwarded.
 */
async function queuedAnswer(services: Services, job: JobRow, replayed: boolean): Promise<Response> {
  const standing = await queueStanding(services.db, job, services.config.queue);
  const retryAfter = standing?.retryAfterSeconds ?? 1;
  return Response.json(
    {
      data: {
        status: 'pending',
        gateway_job_id: job.id,
        queue_position: standing?.position ?? null,
        estimated_start_at: standing?.estimatedStartAt.toISOString() ?? null,
        retry_after_seconds: retryAfter,
      },
    },
    { status: 202, headers: { 'retry-after': String(retryAfter), ...(replayed ? { 'idempotent-replayed': 'true' } : {}) } },
  );
}

/** The answer of a create, from the job as it stands: HeyGen's answer, or an honest refusal (never a made-up id). */
function createAnswer(entry: CreateEntry, job: JobRow, items: readonly JobItemRow[], replayed: boolean): Response {
  const answer = entry.respond(job, items);
  if (answer) return Response.json(answer, { status: entry.status ?? 200, headers: replayed ? { 'idempotent-replayed': 'true' } : {} });
  const ref = `gateway job ${job.id}`;
  switch (job.status) {
    case 'RESERVED':
      if (replayed) {
        return new E.V3Error(409, 'request_in_progress', `A request with this Idempotency-Key is still in progress (${ref})`, null, { 'retry-after': '1' }).response();
      }
      return E.unavailable(`The job was admitted but not yet accepted by HeyGen (${ref}); the gateway keeps trying. Retry with the same Idempotency-Key to get its ids.`, 5).response();
    case 'SUBMIT_UNKNOWN':
      return E.unavailable(`HeyGen has not confirmed the job yet (${ref}); the gateway keeps trying with the same key. Retry with the same Idempotency-Key to get its ids.`, 5).response();
    case 'CANCELLED':
      return new E.V3Error(409, 'conflict', `The job of this Idempotency-Key was cancelled (${ref})`, 'Idempotency-Key').response();
    case 'EXPIRED':
      return new E.V3Error(409, 'conflict', `The job of this Idempotency-Key expired before HeyGen confirmed it (${ref})`, 'Idempotency-Key').response();
    default: {
      // HeyGen refused it when it was forwarded. About the request (validation, a missing asset): HeyGen's code and
      // message, as HeyGen answered them. About the company's account (its key, its credit): never told as if it
      // were the app's key or wallet, and HeyGen's words (which may name the company's balance) are not passed on.
      const code = job.failureCode ?? 'invalid_request';
      if (code === 'unauthorized' || code === 'forbidden') {
        return new E.V3Error(502, 'upstream_error', `HeyGen refused the gateway's account (${ref}); tell the gateway's operators`).response();
      }
      if (code === 'insufficient_credit') {
        return new E.V3Error(402, 'insufficient_credit', `The company's HeyGen account has too little credit for this job (${ref}); tell the gateway's operators`).response();
      }
      return new E.V3Error(E.statusOfHeygenCode(code), code, job.failureMessage ?? 'HeyGen refused the request').response();
    }
  }
}

function parseLimit(value: string | undefined): number {
  if (value === undefined) return DEFAULT_LIST_LIMIT;
  if (!/^\d{1,4}$/.test(value) || Number(value) < 1 || Number(value) > MAX_LIST_LIMIT) throw E.validation('limit', `limit must be an integer from 1 to ${MAX_LIST_LIMIT}`);
  return Number(value);
}

function encodeToken(at: Date, id: string): string {
  return Buffer.from(`${at.toISOString()}|${id}`, 'utf8').toString('base64url');
}
function decodeToken(token: string): { at: Date; id: string } {
  const [at, id] = Buffer.from(token, 'base64url').toString('utf8').split('|');
  const date = new Date(at ?? '');
  if (!id || !isUuid(id) || Number.isNaN(date.getTime())) throw E.validation('token', 'token is not a token this API returned');
  return { at: date, id };
}

/** The (query-sorted) upstream path of a catalog read, from the route template and the decoded parameters. */
function catalogPath(template: string, params: Record<string, string>, url: URL): string {
  const path = template.replace(/\{([^}]+)\}/g, (_m, name: string) => encodeURIComponent(params[name] ?? ''));
  const query = [...url.searchParams].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const search = new URLSearchParams(query).toString();
  return search ? `${path}?${search}` : path;
}

function toHono(template: string): string {
  return template.replace(/\{([^}]+)\}/g, ':$1');
}

const KNOWN_OPERATIONS = HEYGEN_V3_OPERATIONS.map((op) => {
  const [method, path] = op.split(' ') as [string, string];
  return { method, pattern: new RegExp(`^${path.replace(/\{[^}]+\}/g, '[^/]+')}$`) };
});

export function createV3Front(services: Services): Hono<V3Env> {
  const app = new Hono<V3Env>();
  const limiterPerCaller = new RequestRateLimiter(services.config.graphql.rateLimitPerMinute, 60_000);
  const catalog = new LRUCache<string, { status: number; body: unknown }>({
    max: CATALOG_CACHE.maxEntries,
    ttl: CATALOG_CACHE.ttlMs,
    maxSize: CATALOG_CACHE.maxBytes,
    sizeCalculation: (v) => Math.max(1, JSON.stringify(v.body).length),
  });
  const catalogInFlight = new Map<string, Promise<{ status: number; body: unknown }>>();
  // Fresh reads are never cached, but identical ones in flight at the same moment (many pollers of one video) share
  // one HeyGen call: its answer is as fresh for each of them.
  const readsInFlight = new Map<string, Promise<RawAnswer>>();
  const freshRead = (account: AccountRow, path: string): Promise<RawAnswer> => {
    const key = `${account.id} ${path}`;
    let pending = readsInFlight.get(key);
    if (!pending) {
      pending = readUpstream(services, account, path).finally(() => readsInFlight.delete(key));
      readsInFlight.set(key, pending);
    }
    return pending;
  };

  // Authentication: X-Api-Key or Authorization: Bearer, with a gateway token. Anything else: HeyGen's 401.
  app.use('/v3/*', async (c, next) => {
    const bearer = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '')?.[1];
    const token = headerValue(c, 'x-api-key') || bearer;
    if (!token) throw E.unauthorized();
    let actor: Actor;
    try {
      actor = await services.tokens.authenticate(services.db, token);
    } catch (error) {
      if (error instanceof AuthenticationError) throw E.unauthorized();
      throw error;
    }
    const info = c.get('requestInfo');
    if (info) info.subject = actor.subject;
    const retryAfter = limiterPerCaller.take(actor.subject);
    if (retryAfter > 0) throw new E.V3Error(429, 'rate_limit_exceeded', 'Too many requests', null, { 'retry-after': String(retryAfter) });
    let projectId: string | null = null;
    if (actor.role === 'SERVICE') projectId = actor.unitId;
    else {
      const named = headerValue(c, PROJECT_HEADER);
      if (named) projectId = tryDecodeId(named, 'OrgUnit') ?? '00000000-0000-0000-0000-000000000000';
    }
    c.set('caller', { actor: { ...actor, requestId: info?.id }, projectId });
    await next();
  });

  // ----- creates: the same admission and forwarding as GraphQL submitJob ---------------------------------------
  for (const entry of CREATES) {
    app.post(entry.path, async (c) => {
      const caller = c.get('caller');
      const project = await requireProject(services, caller);
      const key = c.req.header('idempotency-key');
      if (key !== undefined && !IDEMPOTENCY_KEY.test(key)) throw E.validation('Idempotency-Key', 'Idempotency-Key must match ^[A-Za-z0-9_\\-:.]{1,255}$');
      const body = await readJsonObject(services, c);
      const { job, replayed } = await submitJob(services, caller.actor, {
        projectId: project.id,
        kind: entry.kind,
        request: entry.request(body, c.req.param() as Record<string, string>),
        estimatedSeconds: null,
        idempotencyKey: key ?? null,
        // HeyGen's clients know a 429 with Retry-After, not a 202 without a video id: waiting is the app's opt-in.
        queue: c.req.header('x-gateway-queue')?.trim().toLowerCase() === 'true',
        tags: tagsOfHeader(headerValue(c, TAGS_HEADER)),
        endUser: headerValue(c, END_USER_HEADER) || null,
      });
      if (job.status === 'QUEUED') return queuedAnswer(services, job, replayed);
      return createAnswer(entry, job, await itemsOfJob(services.db, job.id), replayed);
    });
  }

  // ----- the caller's own view of its balance -------------------------------------------------------------------
  app.get('/v3/users/me', async (c) => {
    const caller = c.get('caller');
    const project = await requireProject(services, caller);
    const h = await projectHeadroom(services.db, caller.actor, project.id);
    const credits = (micro: bigint | null) => (micro === null ? null : Number(cs(micro)));
    const usd = (micro: bigint | null) =>
      micro === null || !h.rateUsdPerCs ? null : Number(formatCents(usdToCentsHalfUp(Q.mul(Q.rational(micro, MICRO_PER_CS), h.rateUsdPerCs))));
    return c.json({
      data: {
        username: `gateway-project:${h.projectName}`,
        email: null,
        first_name: null,
        last_name: null,
        billing_type: 'usage_based',
        wallet: null,
        subscription: null,
        usage_based: {
          included_credits: credits(h.limitMicroCs),
          remaining_credits: credits(h.availableMicroCs),
          spending_cap_usd: usd(h.limitMicroCs),
          spending_current_usd: usd(h.usedThisPeriodMicroCs),
        },
      },
    });
  });

  // ----- catalog reads (free): the account's key, a short cache; what a job created only through the job ------------
  for (const entry of CATALOG) app.get(toHono(entry.path), (c) => catalogRead(c, entry));
  async function catalogRead(c: V3Context, entry: CatalogEntry): Promise<Response> {
    const caller = c.get('caller');
    const project = await requireProject(services, caller);
    const account = await accountOfProject(services, project);
    const params = c.req.param() as Record<string, string>;
    // A dot segment would climb out of the catalog path once the URL is normalised.
    if (Object.values(params).some((v) => v === '' || v === '.' || v === '..')) throw new E.V3Error(404, 'not_found', 'Not found');
    const url = new URL(c.req.url);
    if (entry.owned) {
      // An id some job created (an avatar another project trained on the same account) is no catalog id: it is read
      // through that job, fresh, by those who may read the job; to everyone else it is exactly an unknown id.
      const id = params[entry.owned.param] ?? '';
      const { visible, claimed } = await findItems(services.db, caller.actor, [id], entry.owned.matches);
      if (claimed.has(id)) {
        const found = visible.get(id);
        const owner = found && (await loadAccount(services.db, found.job.accountId));
        if (!found || !owner) throw E.notFound(entry.owned.what);
        const answer = await freshRead(owner, catalogPath(entry.path, params, url));
        if (answer.status === 404) throw E.notFound(entry.owned.what);
        if (answer.status !== 200) throw new E.V3Error(502, 'upstream_error', `HeyGen answered HTTP ${answer.status}`);
        return c.json(withAppCallbackId(answer.body, found.job.callback?.callbackId) as object);
      }
    }
    const path = catalogPath(entry.path, params, url);
    const cacheKey = `${account.id} ${path}`;
    let answer = catalog.get(cacheKey);
    if (!answer) {
      let pending = catalogInFlight.get(cacheKey);
      if (!pending) {
        pending = readUpstream(services, account, path).finally(() => catalogInFlight.delete(cacheKey));
        catalogInFlight.set(cacheKey, pending);
      }
      answer = await pending;
      if (answer.status === 200) catalog.set(cacheKey, answer);
    }
    // HeyGen refusing the account's own key is the gateway's problem, not the app's key: never a 401/403 to the app.
    if (answer.status === 401 || answer.status === 403) {
      services.logger.error({ accountId: account.id, status: answer.status }, '/v3: HeyGen refused the account key on a catalog read');
      throw new E.V3Error(502, 'upstream_error', 'HeyGen refused the gateway\'s account; tell the gateway\'s operators');
    }
    // An unknown id answers the gateway's own 404, the same bytes as a job's object the caller may not read.
    if (entry.owned && answer.status === 404) throw E.notFound(entry.owned.what);
    if (entry.listed && answer.status === 200) return c.json((await withoutHiddenEntries(caller.actor, answer.body, entry.listed)) as object);
    return c.json(answer.body as object, answer.status as 200);
  }

  /** A catalog list without the entries (by `id`) that name items of jobs the caller may not read. */
  async function withoutHiddenEntries(actor: Actor, body: unknown, matches: readonly ItemMatch[]): Promise<unknown> {
    const data = (body as { data?: unknown } | null)?.data;
    if (!Array.isArray(data)) return body;
    const ids = data.map((e) => (e as { id?: unknown } | null)?.id).filter((id): id is string => typeof id === 'string');
    const { visible, claimed } = await findItems(services.db, actor, ids, matches);
    const hidden = (id: unknown) => typeof id === 'string' && claimed.has(id) && !visible.has(id);
    return { ...(body as object), data: data.filter((e) => !hidden((e as { id?: unknown } | null)?.id)) };
  }

  // ----- bulk statuses: the visible ids asked of HeyGen, the others `not_found` as HeyGen answers unowned ids ---
  for (const entry of STATUSES) app.get(entry.path, (c) => statuses(c, entry));
  async function statuses(c: V3Context, entry: StatusesEntry): Promise<Response> {
    const caller = c.get('caller');
    const url = new URL(c.req.url);
    const ids = url.searchParams.getAll(entry.param).flatMap((v) => v.split(',')).map((s) => s.trim()).filter(Boolean);
    const batchIds = url.searchParams.getAll('batch_ids').flatMap((v) => v.split(',')).map((s) => s.trim()).filter(Boolean);
    if (ids.length + batchIds.length === 0) throw E.validation(entry.param, `${entry.param} is required`);
    if (ids.length + batchIds.length > MAX_STATUS_IDS) throw E.validation(entry.param, `At most ${MAX_STATUS_IDS} ids per request`);
    const visible = await findVisibleItems(services.db, caller.actor, ids, entry.matches);
    const visibleBatches = await findVisibleItems(services.db, caller.actor, batchIds, entry.batchMatches);
    const byAccount = new Map<string, { ids: string[]; batchIds: string[] }>();
    const of = (accountId: string) => {
      let asked = byAccount.get(accountId);
      if (!asked) byAccount.set(accountId, (asked = { ids: [], batchIds: [] }));
      return asked;
    };
    for (const [id, v] of visible) of(v.job.accountId).ids.push(id);
    for (const [id, v] of visibleBatches) of(v.job.accountId).batchIds.push(id);
    const answered = new Map<string, unknown>();
    const batchRows = new Map<string, unknown[]>();
    for (const [accountId, asked] of byAccount) {
      const account = await loadAccount(services.db, accountId);
      if (!account) continue;
      const query = [
        ...(asked.ids.length ? [`${entry.param}=${asked.ids.map(encodeURIComponent).join(',')}`] : []),
        ...(asked.batchIds.length ? [`batch_ids=${asked.batchIds.map(encodeURIComponent).join(',')}`] : []),
      ].join('&');
      const answer = await freshRead(account, `${entry.upstream}?${query}`);
      const data = (answer.body as { data?: unknown })?.data;
      if (answer.status !== 200 || !Array.isArray(data)) throw new E.V3Error(502, 'upstream_error', `HeyGen answered HTTP ${answer.status}`);
      for (const row of data) {
        const { video_id: id, batch_id: batchId } = (row ?? {}) as { video_id?: unknown; batch_id?: unknown };
        if (typeof batchId === 'string' && asked.batchIds.includes(batchId)) batchRows.set(batchId, [...(batchRows.get(batchId) ?? []), row]);
        else if (typeof id === 'string' && asked.ids.includes(id)) answered.set(id, row);
      }
    }
    for (const [batchId, rows] of batchRows) await recordBatchItemIds(services.db, entry.batchMatches[0]!.kind, batchId, rows);
    const notFoundEntry = (videoId: string | null, batchId: string | null) => ({ video_id: videoId, status: 'not_found', error: null, batch_id: batchId, item_index: null });
    const data = [...ids.map((id) => answered.get(id) ?? notFoundEntry(id, null)), ...batchIds.flatMap((b) => batchRows.get(b) ?? [notFoundEntry(null, b)])];
    return c.json({ data, has_more: false, next_token: null });
  }

  // ----- one job's output by the id HeyGen gave the app -------------------------------------------------------------
  for (const entry of READS) app.get(entry.path, (c) => readOne(c, entry));
  async function readOne(c: V3Context, entry: ReadEntry): Promise<Response> {
    const caller = c.get('caller');
    const id = c.req.param(entry.param) ?? '';
    // Another project's id and an id nobody issued answer the same bytes.
    const found = (await findVisibleItems(services.db, caller.actor, [id], entry.matches)).get(id);
    if (!found) throw E.notFound(entry.what);
    const account = await loadAccount(services.db, found.job.accountId);
    if (!account) throw E.notFound(entry.what);
    const query = new URLSearchParams();
    for (const name of entry.query ?? []) {
      const value = c.req.query(name);
      if (value !== undefined) query.set(name, value);
    }
    const search = query.toString();
    const answer = await freshRead(account, search ? `${entry.upstream(id)}?${search}` : entry.upstream(id));
    if (answer.status === 404) throw E.notFound(entry.what);
    if (answer.status !== 200) throw new E.V3Error(502, 'upstream_error', `HeyGen answered HTTP ${answer.status}`);
    // A batch's items: the app may now ask for each by its own id, so the gateway must know those ids too.
    const items = (answer.body as { data?: { items?: unknown } } | null)?.data?.items;
    if (entry.matches[0]?.by === 'batch' && Array.isArray(items)) await recordBatchItemIds(services.db, entry.matches[0].kind, id, items);
    return c.json(withAppCallbackId(answer.body, found.job.callback?.callbackId) as object);
  }

  // ----- lists: only the caller's jobs, newest first, each read fresh -------------------------------------------------
  for (const entry of LISTS) app.get(entry.path, (c) => list(c, entry));
  async function list(c: V3Context, entry: ListEntry): Promise<Response> {
    const caller = c.get('caller');
    const url = new URL(c.req.url);
    const limit = parseLimit(url.searchParams.get('limit') ?? undefined);
    const token = url.searchParams.get('token') ?? url.searchParams.get('next_token');
    const after = token ? decodeToken(token) : null;
    const projectFilter = caller.actor.role === 'SERVICE' || !caller.projectId ? undefined : eq(jobsTable.projectId, caller.projectId);
    const rows = await services.db
      .select({ item: jobItemsTable, accountId: jobsTable.accountId, callback: jobsTable.callback })
      .from(jobItemsTable)
      .innerJoin(jobsTable, eq(jobsTable.id, jobItemsTable.jobId))
      .where(
        and(
          visibleJobsFilter(caller.actor),
          projectFilter,
          inArray(jobItemsTable.kind, [...entry.kinds]),
          entry.withVideoOnly ? or(notInArray(jobItemsTable.kind, [...entry.withVideoOnly]), isNotNull(jobItemsTable.videoId)) : undefined,
          after ? or(lt(jobItemsTable.createdAt, after.at), and(eq(jobItemsTable.createdAt, after.at), lt(jobItemsTable.id, after.id))) : undefined,
        ),
      )
      .orderBy(desc(jobItemsTable.createdAt), desc(jobItemsTable.id))
      .limit(limit + 1);
    const page = rows.slice(0, limit);
    const run = limiter(LIST_READ_CONCURRENCY);
    const accounts = new Map<string, Promise<AccountRow | null>>();
    const accountOf = (id: string) => {
      let a = accounts.get(id);
      if (!a) accounts.set(id, (a = loadAccount(services.db, id)));
      return a;
    };
    const data = (
      await Promise.all(
        page.map((row) =>
          run(async () => {
            const detail = entry.detail(row.item);
            const account = detail && (await accountOf(row.accountId));
            if (!detail || !account) return null;
            const answer = await freshRead(account, detail.path);
            const item = (answer.body as { data?: unknown })?.data;
            return answer.status === 200 && item ? withAppCallbackId(item, row.callback?.callbackId) : null;
          }),
        ),
      )
    ).filter((x) => x !== null);
    const last = page.at(-1);
    const hasMore = rows.length > limit;
    return c.json({ data, has_more: hasMore, next_token: hasMore && last ? encodeToken(last.item.createdAt, last.item.id) : null });
  }

  // ----- a billable HeyGen operation with no job kind: never passed on (its cost could not be capped) ----------------
  app.post('/v3/video-translations/proofreads/:proofread_id/generate', () => {
    throw new E.V3Error(
      501,
      'not_implemented',
      'Generating a video from a proofread is billed by HeyGen but is not a job kind of this gateway, so no budget could cap it; it is not passed on to HeyGen. Create the translation with POST /v3/video-translations instead.',
    );
  });

  // ----- everything else: never passed on ---------------------------------------------------------------------------
  app.all('/v3/*', (c) => {
    const path = new URL(c.req.url).pathname;
    const known = KNOWN_OPERATIONS.some((op) => op.method === c.req.method && op.pattern.test(path));
    throw known ? E.notImplemented(c.req.method, path) : new E.V3Error(404, 'not_found', `No route for ${c.req.method} ${path}`);
  });

  app.onError(async (error, c) => {
    if (error instanceof E.V3Error) return error.response();
    if (error instanceof HTTPException) return E.validation(null, error.message).response();
    const caller = c.get('caller') as Caller | undefined;
    if (error instanceof DomainError) return (await fromDomainError(services, caller?.actor ?? ANONYMOUS, error)).response();
    if (isDatabaseUnavailable(error)) return E.unavailable('The database is temporarily unavailable; retry (with the same Idempotency-Key for a create)').response();
    if (error instanceof HeygenError) {
      services.logger.warn({ err: error, path: c.req.path }, '/v3: HeyGen read failed');
      return new E.V3Error(502, 'upstream_error', 'HeyGen did not answer; retry later', null, { 'retry-after': '5' }).response();
    }
    services.logger.error({ err: error, path: c.req.path, method: c.req.method, requestId: c.get('requestInfo')?.id }, 'unhandled /v3 error');
    return E.internal().response();
  });
  return app;
}

const ANONYMOUS: Actor = { subject: 'anonymous', role: 'SERVICE', unitId: null, unitPath: [], tokenId: null };
