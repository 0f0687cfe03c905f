/**
 * HeyGen v3 API simulator for tests, benchmarks and the demo; production never uses it.
 * It speaks the shapes documented in docs/heygen.md (v3 `{data}` envelope, `{error:{code,message,param,doc_url}}`),
 * keeps every account (api key) apart, bills completed jobs exactly in micro-credit-seconds, and
 * injects faults deterministically from config.seed. Besides the jobs it serves the free catalog reads (avatars and
 * looks, voices, templates, brand kits and glossaries, translation languages, agent styles; `catalog.ts`) and the
 * video and translation lists, paged as HeyGen pages (`limit`, `token`).
 *
 * v3 endpoints: videos (+ statuses, batches), templates, video translations (+ statuses, batches, proofreads),
 * video agents, lipsyncs (+ statuses, batches), voices/speech (synchronous text to speech), avatars (creation,
 * looks, groups), users/me and webhook endpoints. Every asynchronous generation holds a concurrency slot until it
 * ends; batch items wait `queued` for a free slot instead of being refused. `failNextJobs` / `failJobRate` apply to
 * every job as it starts, batch items included, so a batch can be made to fail in part.
 *
 * Control API (no api key): GET|POST /_sim/config, GET|POST /_sim/accounts, POST /_sim/reset,
 * GET /_sim/stats (with creations per Idempotency-Key), POST /_sim/usage {apiKey, creditSeconds}, GET /_sim/jobs[?api_key=],
 * GET /_sim/jobs/{id}, POST /_sim/jobs/{id}/complete {durationSeconds?},
 * POST /_sim/jobs/{id}/fail {failureCode?, failureMessage?}, GET /_sim/webhooks, GET /_sim/health.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline, Readable } from 'node:stream';
import { z } from 'zod';
import { accountInputSchema, SimAccount, type SimAccountInput } from './accounts.js';
import {
  applyConfigPatch,
  configPatchSchema,
  DEFAULT_CONFIG,
  type RateProduct,
  type SimulatorConfig,
  type SimulatorConfigPatch,
} from './config.js';
import { ApiError, notFound, validationError } from './errors.js';
import { decimalToMicro } from './money.js';
import { SeededRandom } from './prng.js';
import {
  BATCH_KEYS,
  parseWebhookEndpoint,
  planAgent,
  planAvatarCreation,
  planBatchEnvelope,
  planLipsync,
  planProofread,
  planSpeech,
  planTemplate,
  planTranslation,
  planVideo,
  productOf,
  renderedMs,
  type BatchEndpoint,
} from './requests.js';
import * as C from './catalog.js';
import { WebhookDispatcher, type WebhookCounters, type WebhookDeliveryRecord } from './webhooks.js';

export type { SimAccountInput, SimBillingType } from './accounts.js';
export type { MalformedKind, RateProduct, SimulatorConfig, SimulatorConfigPatch } from './config.js';
export { DEFAULT_CONFIG, DEFAULT_RATES, RATE_PRODUCTS } from './config.js';
export type { DeliveryOutcome, WebhookDeliveryRecord } from './webhooks.js';
export { signWebhookBody } from './webhooks.js';
export { agentDurationMs } from './requests.js';

export type SimJobKind = 'video' | 'template' | 'translation' | 'agent' | 'lipsync' | 'proofread' | 'avatar' | 'speech';

/** Per-call products: a completed output costs its rate in credits, whatever its length. */
const PER_CALL: readonly RateProduct[] = ['avatar_creation'];
export type SimJobStatus = 'pending' | 'processing' | 'completed' | 'failed';

/** A read-only view of one billable job (one video, one translation language, one agent video). */
export interface SimJobSnapshot {
  id: string;
  kind: SimJobKind;
  apiKey: string;
  product: RateProduct;
  status: SimJobStatus;
  /** Output length the job has (or will have) once completed. */
  durationSeconds: number;
  /** What the completed job consumed; 0 until completed and for failed jobs. */
  costMicroCreditSeconds: bigint;
  callbackId: string | null;
  callbackUrl: string | null;
  sessionId: string | null;
  outputLanguage: string | null;
  /** The batch the job is an item of, and its item_index there. */
  batchId: string | null;
  batchIndex: number | null;
  createdAt: number;
  completedAt: number | null;
  failureCode: string | null;
  failureMessage: string | null;
}

export interface SimUsage {
  /** Micro-credit-seconds consumed by jobs completed through this simulator. */
  gateway: bigint;
  /** Micro-credit-seconds added with addOutsideUsage / POST /_sim/usage. */
  outside: bigint;
  total: bigint;
}

export interface SimulatorStats {
  /** v3 calls by route, e.g. `POST /v3/videos`; unknown routes count as `unmatched`. */
  requests: Record<string, number>;
  /** v3 answers by HTTP status. */
  statuses: Record<string, number>;
  /** Billable jobs per api key (a translation into N languages counts N). */
  jobsCreated: Record<string, number>;
  /**
   * Job-creating requests answered 2xx per Idempotency-Key (replays not counted): a value above 1 means one
   * logical submission created two upstream jobs (possible only after the key's TTL or after a refused attempt).
   */
  creationsByIdempotencyKey: Record<string, number>;
  jobsCompleted: Record<string, number>;
  jobsFailed: Record<string, number>;
  inFlight: Record<string, number>;
  /** The most generations each api key ever had in flight at once (what a client's concurrency control must bound). */
  maxInFlight: Record<string, number>;
  /** Micro-credit-seconds per api key, as decimal strings. */
  usage: Record<string, { gateway: string; outside: string; total: string }>;
  idempotency: { replays: number; conflicts: number };
  rateLimited: { concurrency: number; requestRate: number; injected: number };
  faults: { fail5xx: number; timeouts: number; malformed: number; oversized: number };
  insufficientCredit: number;
  webhooks: WebhookCounters & { pending: number };
  /** TCP connections accepted (a client that keeps its connections alive opens few). */
  connections: number;
  /** The most v3 reads (GET) being answered at once, over all keys (what a client's read concurrency must bound). */
  maxReadsInFlight: number;
}

export interface Simulator {
  /** e.g. `http://127.0.0.1:41234` */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
  /**
   * An outage of the API, as when HeyGen's front ends are killed: every open connection is cut (requests in
   * flight get no answer, though a job they created exists) and the port refuses connections until
   * `comeBack()`. Accepted jobs keep rendering and every record (jobs, idempotency keys, usage) is kept, as
   * HeyGen's own state survives its outages.
   */
  goDown(): Promise<void>;
  /** Listens again on the same port after `goDown()`. */
  comeBack(): Promise<void>;
  configure(patch: SimulatorConfigPatch): SimulatorConfig;
  config(): SimulatorConfig;
  /** Adds an account, or updates the terms of an existing one (its usage and jobs are kept). */
  addAccount(account: SimAccountInput): void;
  /** Back to the start state: initial config and accounts, no jobs, usage, endpoints or stats. */
  reset(): void;
  stats(): SimulatorStats;
  /** Forces a job (video, translation or agent session id) to `completed`; false if unknown or already final. */
  completeNow(id: string, opts?: { durationSeconds?: number }): boolean;
  failNow(id: string, opts?: { failureCode?: string; failureMessage?: string }): boolean;
  /** Records usage made outside the gateway, in credit-seconds (decimals allowed). */
  addOutsideUsage(apiKey: string, creditSeconds: number | string | bigint): void;
  usage(apiKey: string): SimUsage;
  job(id: string): SimJobSnapshot | undefined;
  jobs(apiKey?: string): SimJobSnapshot[];
  webhookDeliveries(): WebhookDeliveryRecord[];
  /** Resolves when every webhook delivery started so far has finished (delivered, dropped or lost). */
  webhooksIdle(): Promise<void>;
}

export interface StartSimulatorOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  host?: string;
  config?: SimulatorConfigPatch;
  /** Accounts to create; omitted: one usage-based account with key `sim_demo_key`. */
  accounts?: SimAccountInput[];
}

export const DEMO_API_KEY = 'sim_demo_key';

export async function startSimulator(opts: StartSimulatorOptions = {}): Promise<Simulator> {
  const simulator = new HeyGenSimulator(opts.config ?? {}, opts.accounts ?? [{ apiKey: DEMO_API_KEY }]);
  await simulator.listen(opts.port ?? 0, opts.host ?? '127.0.0.1');
  return simulator;
}

const IDEMPOTENCY_KEY = /^[A-Za-z0-9_\-:.]{1,255}$/;
const MAX_BODY_BYTES = 1024 * 1024;
const MAX_BULK_IDS = 100;

interface Reply {
  status: number;
  body: string;
  headers: Record<string, string>;
}

interface Job {
  id: string;
  kind: SimJobKind;
  apiKey: string;
  product: RateProduct;
  rateMicroCredits: bigint;
  status: SimJobStatus;
  durationMs: number;
  callbackId: string | null;
  callbackUrl: string | null;
  title: string | null;
  outputFormat: 'mp4' | 'webm';
  outputLanguage: string | null;
  inputLanguage: string | null;
  translateAudioOnly: boolean;
  sessionId: string | null;
  prompt: string | null;
  /** Avatar creation: the group the new look belongs to, and the kind of avatar. */
  groupId: string | null;
  avatarType: 'photo' | 'digital_twin' | 'prompt' | null;
  batchId: string | null;
  batchIndex: number | null;
  createdAt: number;
  completedAt: number | null;
  /** When the auto-complete timer fires; null in manual mode. */
  finishesAt: number | null;
  failOnFinish: boolean;
  failureCode: string | null;
  failureMessage: string | null;
  costMicroCs: bigint;
  timers: NodeJS.Timeout[];
}

type JobSpec = Pick<
  Job,
  | 'kind'
  | 'product'
  | 'durationMs'
  | 'callbackId'
  | 'callbackUrl'
  | 'title'
  | 'outputFormat'
  | 'outputLanguage'
  | 'inputLanguage'
  | 'translateAudioOnly'
  | 'prompt'
> &
  Partial<Pick<Job, 'avatarType' | 'batchId' | 'batchIndex'>>;

/** One item of a batch: its payload's job spec (null when the payload was refused), its job once started. */
interface BatchItem {
  index: number;
  spec: JobSpec | null;
  job: Job | null;
  error: { code: string; message: string } | null;
}

interface Batch {
  id: string;
  endpoint: BatchEndpoint;
  apiKey: string;
  title: string | null;
  callbackUrl: string | null;
  createdAt: number;
  items: BatchItem[];
  finished: boolean;
}

const BATCH_PAGE_SIZE = 100;

type IdempotencyRecord =
  | { state: 'in_progress' }
  | { state: 'done'; reply: Reply; expiresAt: number };

interface BulkStatusEntry {
  video_id: string | null;
  status: string;
  error: { code: string | null; message: string | null } | null;
  batch_id: string | null;
  item_index: number | null;
}

interface RequestContext {
  account: SimAccount;
  params: string[];
  query: URLSearchParams;
  body: unknown;
}

interface Route {
  method: string;
  name: string;
  pattern: RegExp;
  /** Job-creating calls: the target of 5xx and timeout injection. */
  createsJobs: boolean;
  handler: (ctx: RequestContext) => Reply | Promise<Reply>;
}

interface HeldResponse {
  timer: NodeJS.Timeout;
  release: (deliver: boolean) => void;
}

const emptyStats = (): Omit<SimulatorStats, 'inFlight' | 'maxInFlight' | 'usage' | 'webhooks'> => ({
  requests: {},
  statuses: {},
  jobsCreated: {},
  creationsByIdempotencyKey: {},
  jobsCompleted: {},
  jobsFailed: {},
  idempotency: { replays: 0, conflicts: 0 },
  rateLimited: { concurrency: 0, requestRate: 0, injected: 0 },
  faults: { fail5xx: 0, timeouts: 0, malformed: 0, oversized: 0 },
  insufficientCredit: 0,
  connections: 0,
  maxReadsInFlight: 0,
});

function json(status: number, body: unknown, headers: Record<string, string> = {}): Reply {
  return { status, body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } };
}

const ok = (data: unknown): Reply => json(200, { data });

function found<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw notFound(what);
  return value;
}

function errorReply(error: ApiError): Reply {
  return json(error.status, error.toBody(), error.headers);
}

const bump = (counts: Record<string, number>, key: string, by = 1): void => {
  counts[key] = (counts[key] ?? 0) + by;
};

const unixSeconds = (ms: number): number => Math.floor(ms / 1000);
const ceilDiv = (a: bigint, b: bigint): bigint => (a + b - 1n) / b;
const newId = (): string => randomUUID().replaceAll('-', '');

function bigintReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

function route(method: string, template: string, handler: Route['handler'], createsJobs = false): Route {
  const pattern = new RegExp(`^${template.replace(/\{[^}]+\}/g, '([^/]+)')}$`);
  return { method, name: `${method} ${template}`, pattern, createsJobs, handler };
}

class HeyGenSimulator implements Simulator {
  private readonly server: http.Server;
  private readonly initialConfig: SimulatorConfig;
  private readonly initialAccounts: SimAccountInput[];
  private cfg: SimulatorConfig;
  private random: SeededRandom;
  private readonly accounts = new Map<string, SimAccount>();
  private readonly videos = new Map<string, Job>();
  private readonly translations = new Map<string, Job>();
  private readonly sessions = new Map<string, Job>();
  private readonly lipsyncs = new Map<string, Job>();
  private readonly proofreads = new Map<string, Job>();
  /** Created avatars by look id, and by group id. */
  private readonly avatars = new Map<string, Job>();
  private readonly avatarGroups = new Map<string, Job>();
  private readonly speeches = new Map<string, Job>();
  private readonly batches = new Map<string, Batch>();
  private readonly idempotency = new Map<string, IdempotencyRecord>();
  private readonly held = new Set<HeldResponse>();
  private counters = emptyStats();
  /** v3 reads (GET) being answered now (their latency included). */
  private readsInFlight = 0;
  private readonly webhooks: WebhookDispatcher;
  private readonly routes: Route[];
  private baseUrl = '';
  private listeningPort = 0;
  private listeningHost = '127.0.0.1';
  private down = false;
  private closed = false;
  /** Bumped by reset(), so that a request still in its latency when state is wiped does not write into the new state. */
  private generation = 0;

  constructor(config: SimulatorConfigPatch, accounts: SimAccountInput[]) {
    this.initialConfig = applyConfigPatch(DEFAULT_CONFIG, parseConfigPatch(config));
    this.cfg = this.initialConfig;
    this.random = new SeededRandom(this.cfg.seed);
    this.initialAccounts = accounts.map((a) => accountInputSchema.parse(a));
    for (const account of this.initialAccounts) this.addAccount(account);
    this.webhooks = new WebhookDispatcher(() => ({
      signatureHeader: this.cfg.signatureHeader,
      maxAttempts: this.cfg.webhookMaxAttempts,
      retryBaseMs: this.cfg.webhookRetryBaseMs,
      timeoutMs: this.cfg.webhookTimeoutMs,
    }));
    this.routes = [
      // The free catalog reads (specific paths before parameterised ones).
      route('GET', '/v3/avatars', (c) => json(200, C.page(C.avatarGroups(this.publicBase), c.query))),
      route('GET', '/v3/avatars/looks', (c) => json(200, C.page(C.avatarLooks(this.publicBase).filter((l) => !c.query.get('group_id') || l.group_id === c.query.get('group_id')), c.query))),
      // An avatar the account created (POST /v3/avatars) reads with its training status; else the public catalog's.
      route('GET', '/v3/avatars/looks/{look_id}', (c) =>
        ok(this.createdAvatar(this.avatars, c) ? this.avatarItemObject(this.createdAvatar(this.avatars, c)!) : found(C.avatarLooks(this.publicBase).find((l) => l.id === c.params[0]), 'Avatar look')),
      ),
      route('GET', '/v3/avatars/{group_id}', (c) =>
        ok(this.createdAvatar(this.avatarGroups, c) ? this.avatarGroupObject(this.createdAvatar(this.avatarGroups, c)!) : found(C.avatarGroups(this.publicBase).find((g) => g.id === c.params[0]), 'Avatar group')),
      ),
      route('GET', '/v3/voices', (c) => json(200, C.page(C.voices(this.publicBase), c.query))),
      route('GET', '/v3/voices/{voice_id}', (c) => ok(this.voiceDetail(c.params[0] ?? ''))),
      route('GET', '/v3/templates', (c) => json(200, C.page(C.templates(this.publicBase), c.query))),
      route('GET', '/v3/templates/{template_id}', (c) => ok(C.templateDetail(this.publicBase, c.params[0] ?? ''))),
      route('GET', '/v3/brand-kits', (c) => json(200, C.page(C.brandKits(this.publicBase), c.query))),
      route('GET', '/v3/brand-glossaries', (c) => json(200, C.page(C.brandGlossaries(), c.query))),
      route('GET', '/v3/video-translations/languages', () => ok({ languages: C.TRANSLATION_LANGUAGES })),
      route('GET', '/v3/video-agents/styles', (c) => json(200, C.page(C.agentStyles(this.publicBase), c.query))),
      route('GET', '/v3/videos', (c) => json(200, C.page(this.ownJobs(c, this.videos).map((j) => this.videoObject(j)), c.query))),
      route('GET', '/v3/video-translations', (c) => json(200, C.page(this.ownJobs(c, this.translations).map((j) => this.translationObject(j)), c.query))),
      route('POST', '/v3/videos', (c) => this.createVideo(c), true),
      route('POST', '/v3/videos/batches', (c) => this.createBatch(c, 'video_batch'), true),
      route('GET', '/v3/videos/batches/{batch_id}', (c) => this.getBatch(c, 'video_batch')),
      route('GET', '/v3/videos/statuses', (c) => this.videoStatuses(c)),
      route('GET', '/v3/videos/{video_id}', (c) => this.getVideo(c)),
      route('POST', '/v3/templates/{template_id}', (c) => this.generateTemplate(c), true),
      route('POST', '/v3/video-translations', (c) => this.createTranslation(c), true),
      route('POST', '/v3/video-translations/batches', (c) => this.createBatch(c, 'translation_batch'), true),
      route('GET', '/v3/video-translations/batches/{batch_id}', (c) => this.getBatch(c, 'translation_batch')),
      route('POST', '/v3/video-translations/proofreads', (c) => this.createProofread(c), true),
      route('GET', '/v3/video-translations/proofreads/{proofread_id}', (c) => ok(this.proofreadObject(this.owned(this.proofreads, c, 'Proofread')))),
      route('POST', '/v3/lipsyncs', (c) => this.createLipsync(c), true),
      route('POST', '/v3/lipsyncs/batches', (c) => this.createBatch(c, 'lipsync_batch'), true),
      route('GET', '/v3/lipsyncs/batches/{batch_id}', (c) => this.getBatch(c, 'lipsync_batch')),
      route('GET', '/v3/lipsyncs/statuses', (c) => this.bulkStatuses(c, this.lipsyncs, 'lipsync_ids', 'lipsync_batch')),
      route('GET', '/v3/lipsyncs/{lipsync_id}', (c) => ok(this.lipsyncObject(this.owned(this.lipsyncs, c, 'Lipsync')))),
      route('POST', '/v3/voices/speech', (c) => this.createSpeech(c), true),
      route('POST', '/v3/avatars', (c) => this.createAvatar(c), true),
      route('GET', '/v3/video-translations/statuses', (c) => this.translationStatuses(c)),
      route('GET', '/v3/video-translations/{video_translation_id}', (c) => this.getTranslation(c)),
      route('POST', '/v3/video-agents', (c) => this.createAgent(c), true),
      route('GET', '/v3/video-agents/{session_id}', (c) => this.getAgent(c)),
      route('GET', '/v3/users/me', (c) => ok(c.account.userMe(this.cfg.creditUnitSeconds))),
      route('POST', '/v3/webhooks/endpoints', (c) => this.createEndpoint(c)),
      route('GET', '/v3/webhooks/endpoints', (c) => this.listEndpoints(c)),
      route('DELETE', '/v3/webhooks/endpoints/{endpoint_id}', (c) => this.deleteEndpoint(c)),
      route('POST', '/v3/webhooks/endpoints/{endpoint_id}/rotate-secret', (c) => this.rotateSecret(c)),
    ];
    this.server = http.createServer((req, res) => {
      this.dispatch(req, res).catch((error: unknown) => {
        const message = error instanceof Error ? error.message : String(error);
        this.write(res, json(500, { error: { code: 'internal_error', message, param: null, doc_url: null } }));
      });
    });
    this.server.on('connection', () => {
      this.counters.connections += 1;
    });
  }

  get url(): string {
    return this.baseUrl;
  }

  get port(): number {
    return this.listeningPort;
  }

  listen(port: number, host: string): Promise<void> {
    this.listeningHost = host;
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const address = this.server.address() as AddressInfo;
        this.listeningPort = address.port;
        const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
        this.baseUrl = `http://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : shownHost}:${address.port}`;
        resolve();
      });
    });
  }

  async goDown(): Promise<void> {
    if (this.closed || this.down) return;
    this.down = true;
    this.releaseHeld(false);
    const closing = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closing;
  }

  async comeBack(): Promise<void> {
    if (this.closed || !this.down) return;
    await this.listen(this.listeningPort, this.listeningHost);
    this.down = false;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.releaseHeld(false);
    this.clearJobTimers();
    const closing = this.down ? Promise.resolve() : new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await Promise.all([closing, this.webhooks.close()]);
  }

  configure(patch: SimulatorConfigPatch): SimulatorConfig {
    const parsed = parseConfigPatch(patch);
    this.cfg = applyConfigPatch(this.cfg, parsed);
    if (parsed.seed !== undefined) this.random = new SeededRandom(parsed.seed);
    return this.config();
  }

  config(): SimulatorConfig {
    return { ...this.cfg, rates: { ...this.cfg.rates } };
  }

  addAccount(input: SimAccountInput): void {
    const parsed = accountInputSchema.parse(input);
    const existing = this.accounts.get(parsed.apiKey);
    if (existing) existing.update(parsed);
    else this.accounts.set(parsed.apiKey, new SimAccount(parsed, this.cfg.defaultConcurrencyLimit));
  }

  reset(): void {
    this.releaseHeld(false);
    this.clearJobTimers();
    this.videos.clear();
    this.translations.clear();
    this.sessions.clear();
    for (const map of [this.lipsyncs, this.proofreads, this.avatars, this.avatarGroups, this.speeches]) map.clear();
    this.batches.clear();
    this.idempotency.clear();
    this.webhooks.reset();
    this.counters = emptyStats();
    this.generation += 1;
    this.cfg = this.initialConfig;
    this.random = new SeededRandom(this.cfg.seed);
    this.accounts.clear();
    for (const account of this.initialAccounts) this.addAccount(account);
  }

  stats(): SimulatorStats {
    const inFlight: Record<string, number> = {};
    const maxInFlight: Record<string, number> = {};
    const usage: SimulatorStats['usage'] = {};
    for (const account of this.accounts.values()) {
      inFlight[account.apiKey] = account.inFlight;
      maxInFlight[account.apiKey] = account.maxInFlight;
      usage[account.apiKey] = {
        gateway: account.usedMicroCs.toString(),
        outside: account.outsideMicroCs.toString(),
        total: account.totalMicroCs.toString(),
      };
    }
    return structuredClone({ ...this.counters, inFlight, maxInFlight, usage, webhooks: this.webhooks.stats() });
  }

  completeNow(id: string, opts: { durationSeconds?: number } = {}): boolean {
    const job = this.findJob(id);
    if (!job) return false;
    const durationMs = opts.durationSeconds === undefined ? undefined : Math.round(opts.durationSeconds * 1000);
    return this.finishJob(job, { fail: false, durationMs });
  }

  failNow(id: string, opts: { failureCode?: string; failureMessage?: string } = {}): boolean {
    const job = this.findJob(id);
    if (!job) return false;
    return this.finishJob(job, { fail: true, ...opts });
  }

  addOutsideUsage(apiKey: string, creditSeconds: number | string | bigint): void {
    const account = this.accounts.get(apiKey);
    if (!account) throw new Error('unknown api key');
    account.outsideMicroCs += decimalToMicro(creditSeconds);
  }

  usage(apiKey: string): SimUsage {
    const account = this.accounts.get(apiKey);
    if (!account) throw new Error('unknown api key');
    return { gateway: account.usedMicroCs, outside: account.outsideMicroCs, total: account.totalMicroCs };
  }

  job(id: string): SimJobSnapshot | undefined {
    const job = this.findJob(id);
    return job && snapshot(job);
  }

  jobs(apiKey?: string): SimJobSnapshot[] {
    return this.allJobs()
      .filter((job) => apiKey === undefined || job.apiKey === apiKey)
      .sort((a, b) => a.createdAt - b.createdAt)
      .map(snapshot);
  }

  webhookDeliveries(): WebhookDeliveryRecord[] {
    return this.webhooks.history();
  }

  webhooksIdle(): Promise<void> {
    return this.webhooks.idle();
  }

  // ---------------------------------------------------------------- request pipeline

  private async dispatch(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://simulator');
    const method = req.method ?? 'GET';
    const rawBody = await readBody(req);
    if (rawBody === null) {
      this.write(res, errorReply(new ApiError(413, 'payload_too_large', 'Request body exceeds 1 MB')));
      return;
    }
    if (url.pathname.startsWith('/_sim/')) {
      this.write(res, this.control(method, url, rawBody));
      return;
    }

    let params: string[] = [];
    const matched = this.routes.find((r) => {
      if (r.method !== method) return false;
      const m = r.pattern.exec(url.pathname);
      if (m) params = m.slice(1).map(safeDecode);
      return m !== null;
    });
    bump(this.counters.requests, matched?.name ?? 'unmatched');
    if (!matched) {
      this.respond(res, errorReply(new ApiError(404, 'not_found', `No route for ${method} ${url.pathname}`)));
      return;
    }

    const apiKey = headerValue(req.headers['x-api-key']);
    const account = apiKey === undefined ? undefined : this.accounts.get(apiKey);
    if (!account) {
      this.respond(res, errorReply(new ApiError(401, 'unauthorized', 'Missing or invalid X-Api-Key')));
      return;
    }
    const limited = this.frontDoorLimit(account);
    if (limited) {
      this.respond(res, limited);
      return;
    }

    if (method !== 'POST') {
      const read = method === 'GET';
      if (read) {
        this.readsInFlight += 1;
        this.counters.maxReadsInFlight = Math.max(this.counters.maxReadsInFlight, this.readsInFlight);
      }
      try {
        await this.delay(this.cfg.latencyMs);
        this.respond(res, await this.run(matched, account, params, url.searchParams, undefined), { mayMalform: true });
      } finally {
        if (read) this.readsInFlight -= 1;
      }
      return;
    }
    await this.handlePost(req, res, matched, account, params, url.searchParams, rawBody);
  }

  /** Injected 429s and the optional per-key request rate, ahead of any processing. */
  private frontDoorLimit(account: SimAccount): Reply | null {
    if (this.cfg.rateLimitNext > 0) {
      this.cfg = { ...this.cfg, rateLimitNext: this.cfg.rateLimitNext - 1 };
      this.counters.rateLimited.injected += 1;
      return this.rateLimitReply('Too many requests', this.cfg.retryAfterSeconds);
    }
    if (this.cfg.requestsPerSecond !== null) {
      const second = Math.floor(Date.now() / 1000);
      if (account.requestWindow.second !== second) account.requestWindow = { second, count: 0 };
      account.requestWindow.count += 1;
      if (account.requestWindow.count > this.cfg.requestsPerSecond) {
        this.counters.rateLimited.requestRate += 1;
        return this.rateLimitReply('Too many requests', 1);
      }
    }
    return null;
  }

  private rateLimitReply(message: string, retryAfterSeconds: number): Reply {
    return errorReply(
      new ApiError(429, 'rate_limit_exceeded', message, null, { 'retry-after': String(retryAfterSeconds) }),
    );
  }

  /**
   * POST with optional Idempotency-Key. The key is claimed before the configured latency, so a
   * duplicate that arrives meanwhile sees 409 request_in_progress, as HeyGen documents.
   * Only 2xx results are stored for replay: a 4xx/5xx leaves the key free for a corrected retry.
   */
  private async handlePost(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    matched: Route,
    account: SimAccount,
    params: string[],
    query: URLSearchParams,
    rawBody: string,
  ): Promise<void> {
    const header = headerValue(req.headers['idempotency-key']);
    if (header !== undefined && !IDEMPOTENCY_KEY.test(header)) {
      this.respond(res, errorReply(validationError('Idempotency-Key', 'Idempotency-Key must match ^[A-Za-z0-9_\\-:.]{1,255}$')));
      return;
    }
    const fault = matched.createsJobs ? this.decide5xx() : null;
    const key = header === undefined ? null : `${account.apiKey}\n${header}`;

    if (key !== null) {
      const existing = this.lookupIdempotency(key);
      if (existing) {
        if (fault !== null) return this.respond(res, fault);
        if (existing.state === 'in_progress') {
          this.counters.idempotency.conflicts += 1;
          const conflict = new ApiError(409, 'request_in_progress', 'A request with this Idempotency-Key is still in progress', null, {
            'retry-after': '1',
          });
          return this.respond(res, errorReply(conflict));
        }
        this.counters.idempotency.replays += 1;
        const replay = { ...existing.reply, headers: { ...existing.reply.headers, 'idempotent-replayed': 'true' } };
        return this.respond(res, replay, { mayMalform: true });
      }
      this.idempotency.set(key, { state: 'in_progress' });
    }
    const generation = this.generation;

    const settleKey = (reply: Reply): void => {
      if (key === null) return;
      if (reply.status >= 200 && reply.status < 300) {
        this.idempotency.set(key, { state: 'done', reply, expiresAt: Date.now() + this.cfg.idempotencyTtlMs });
      } else {
        this.idempotency.delete(key);
      }
    };

    await this.delay(this.cfg.latencyMs);
    if (this.closed) return;
    if (generation !== this.generation) {
      res.destroy();
      return;
    }
    if (fault !== null && !this.cfg.fail5xxAfterCreate) {
      settleKey(fault);
      return this.respond(res, fault);
    }

    let body: unknown;
    try {
      body = rawBody.trim() === '' ? undefined : JSON.parse(rawBody);
    } catch {
      const invalid = errorReply(validationError(null, 'Request body is not valid JSON'));
      settleKey(invalid);
      return this.respond(res, fault ?? invalid);
    }

    const timeout = matched.createsJobs && fault === null && this.cfg.timeoutNext > 0;
    if (timeout) this.cfg = { ...this.cfg, timeoutNext: this.cfg.timeoutNext - 1 };
    const reply = await this.run(matched, account, params, query, body);
    if (matched.createsJobs && header !== undefined && reply.status >= 200 && reply.status < 300) {
      bump(this.counters.creationsByIdempotencyKey, header);
    }

    if (fault !== null) {
      settleKey(reply);
      return this.respond(res, fault);
    }
    if (timeout) {
      this.counters.faults.timeouts += 1;
      this.hold(res, reply, settleKey);
      return;
    }
    settleKey(reply);
    this.respond(res, reply, { mayMalform: true });
  }

  /** The job exists and its answer is ready, but the client gets nothing until the hold ends. */
  private hold(res: http.ServerResponse, reply: Reply, settleKey: (reply: Reply) => void): void {
    const held: HeldResponse = {
      timer: setTimeout(() => held.release(true), this.cfg.timeoutHoldMs),
      release: (deliver) => {
        clearTimeout(held.timer);
        this.held.delete(held);
        settleKey(reply);
        if (deliver) this.respond(res, reply);
        else res.destroy();
      },
    };
    held.timer.unref();
    this.held.add(held);
  }

  private releaseHeld(deliver: boolean): void {
    for (const held of [...this.held]) held.release(deliver);
  }

  private lookupIdempotency(key: string): IdempotencyRecord | undefined {
    const record = this.idempotency.get(key);
    if (record?.state === 'done' && record.expiresAt <= Date.now()) {
      this.idempotency.delete(key);
      return undefined;
    }
    return record;
  }

  private decide5xx(): Reply | null {
    let fire = false;
    if (this.cfg.fail5xxNext > 0) {
      this.cfg = { ...this.cfg, fail5xxNext: this.cfg.fail5xxNext - 1 };
      fire = true;
    } else {
      fire = this.random.chance(this.cfg.fail5xxRate);
    }
    if (!fire) return null;
    this.counters.faults.fail5xx += 1;
    const status = this.random.pick([500, 502, 503] as const);
    if (status === 500) {
      return json(500, { error: { code: 'internal_error', message: 'Internal server error', param: null, doc_url: null } });
    }
    // Gateways in front of an API answer with HTML, which clients must survive too.
    const text = status === 502 ? 'Bad Gateway' : 'Service Unavailable';
    return {
      status,
      body: `<html><head><title>${status} ${text}</title></head><body><h1>${status} ${text}</h1></body></html>`,
      headers: { 'content-type': 'text/html' },
    };
  }

  private async run(
    matched: Route,
    account: SimAccount,
    params: string[],
    query: URLSearchParams,
    body: unknown,
  ): Promise<Reply> {
    try {
      return await matched.handler({ account, params, query, body });
    } catch (error) {
      if (error instanceof ApiError) return errorReply(error);
      throw error;
    }
  }

  /** Writes a v3 answer, counting it, and substitutes an oversized or malformed body when one is due. */
  private respond(res: http.ServerResponse, reply: Reply, opts: { mayMalform?: boolean } = {}): void {
    if (opts.mayMalform && reply.status >= 200 && reply.status < 300 && this.cfg.oversizedNext > 0) {
      this.cfg = { ...this.cfg, oversizedNext: this.cfg.oversizedNext - 1 };
      this.counters.faults.oversized += 1;
      bump(this.counters.statuses, String(reply.status));
      this.writeOversized(res, reply.status);
      return;
    }
    let sent = reply;
    if (opts.mayMalform && reply.status >= 200 && reply.status < 300 && this.cfg.malformedNext > 0) {
      this.cfg = { ...this.cfg, malformedNext: this.cfg.malformedNext - 1 };
      this.counters.faults.malformed += 1;
      sent = this.malformed(reply);
    }
    bump(this.counters.statuses, String(sent.status));
    this.write(res, sent);
  }

  private malformed(reply: Reply): Reply {
    const kind =
      this.cfg.malformedKind === 'random'
        ? this.random.pick(['invalid_json', 'missing_data'] as const)
        : this.cfg.malformedKind;
    // Any proper prefix of a JSON object is invalid JSON.
    const body =
      kind === 'invalid_json'
        ? reply.body.slice(0, Math.max(1, Math.floor(reply.body.length / 2)))
        : JSON.stringify({ message: 'Success', request_id: newId() });
    return { status: 200, body, headers: { 'content-type': 'application/json' } };
  }

  /** Streams `oversizedBytes` with backpressure; a client that hangs up ends the stream. */
  private writeOversized(res: http.ServerResponse, status: number): void {
    if (res.headersSent || res.destroyed) return;
    const total = this.cfg.oversizedBytes;
    res.writeHead(status, {
      'content-type': 'application/json',
      ...(this.cfg.oversizedDeclareLength ? { 'content-length': String(total) } : {}),
    });
    pipeline(garbage(total), res, () => undefined);
  }

  private write(res: http.ServerResponse, reply: Reply): void {
    if (res.headersSent || res.destroyed) return;
    res.writeHead(reply.status, { ...reply.headers, 'content-length': Buffer.byteLength(reply.body) });
    res.end(reply.body);
  }

  private delay(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => setTimeout(resolve, ms).unref());
  }

  // ---------------------------------------------------------------- v3 handlers

  private async createVideo(ctx: RequestContext): Promise<Reply> {
    const { pricing, ...plan } = planVideo(ctx.body, this.cfg);
    const durationMs = await renderedMs(pricing, this.cfg);
    const [job] = this.createJobs(ctx.account, [
      { ...plan, product: productOf(pricing, this.cfg), durationMs, kind: 'video', outputLanguage: null, inputLanguage: null, translateAudioOnly: false, prompt: null },
    ]);
    if (!job) throw new Error('no job created');
    return ok({ video_id: job.id, status: 'pending', output_format: job.outputFormat });
  }

  private async generateTemplate(ctx: RequestContext): Promise<Reply> {
    const { pricing, ...plan } = planTemplate(ctx.body, this.cfg);
    const durationMs = await renderedMs(pricing, this.cfg);
    const [job] = this.createJobs(ctx.account, [
      { ...plan, product: productOf(pricing, this.cfg), durationMs, kind: 'template', outputLanguage: null, inputLanguage: null, translateAudioOnly: false, prompt: null },
    ]);
    if (!job) throw new Error('no job created');
    return ok(this.videoObject(job));
  }

  private async createTranslation(ctx: RequestContext): Promise<Reply> {
    const plan = planTranslation(ctx.body, this.cfg);
    const product = productOf(plan.pricing, this.cfg);
    const durationMs = await renderedMs(plan.pricing, this.cfg);
    const jobs = this.createJobs(
      ctx.account,
      plan.languages.map((language) => ({
        kind: 'translation',
        product,
        durationMs,
        callbackId: plan.callbackId,
        callbackUrl: plan.callbackUrl,
        title: plan.title,
        outputFormat: 'mp4',
        outputLanguage: language,
        inputLanguage: plan.inputLanguage,
        translateAudioOnly: plan.translateAudioOnly,
        prompt: null,
      })),
    );
    return ok({ video_translation_ids: jobs.map((job) => job.id) });
  }

  private async createAgent(ctx: RequestContext): Promise<Reply> {
    const plan = planAgent(ctx.body, this.cfg);
    const durationMs = await renderedMs(plan.pricing, this.cfg);
    const [job] = this.createJobs(ctx.account, [
      {
        kind: 'agent',
        product: productOf(plan.pricing, this.cfg),
        durationMs,
        callbackId: plan.callbackId,
        callbackUrl: plan.callbackUrl,
        title: null,
        outputFormat: 'mp4',
        outputLanguage: null,
        inputLanguage: null,
        translateAudioOnly: false,
        prompt: plan.prompt,
      },
    ]);
    if (!job?.sessionId) throw new Error('no session created');
    return ok({
      session_id: job.sessionId,
      status: 'generating',
      video_id: job.id,
      created_at: unixSeconds(job.createdAt),
    });
  }

  private async createLipsync(ctx: RequestContext): Promise<Reply> {
    const plan = planLipsync(ctx.body, this.cfg);
    const [job] = this.createJobs(ctx.account, [
      {
        kind: 'lipsync',
        product: productOf(plan.pricing, this.cfg),
        durationMs: await renderedMs(plan.pricing, this.cfg),
        callbackId: plan.callbackId,
        callbackUrl: plan.callbackUrl,
        title: plan.title,
        outputFormat: 'mp4',
        outputLanguage: null,
        inputLanguage: null,
        translateAudioOnly: false,
        prompt: null,
      },
    ]);
    if (!job) throw new Error('no job created');
    return ok({ lipsync_id: job.id });
  }

  /** Synchronous: the audio exists (and is billed) when the answer is sent. */
  private async createSpeech(ctx: RequestContext): Promise<Reply> {
    const plan = planSpeech(ctx.body, this.cfg);
    const [job] = this.createJobs(
      ctx.account,
      [
        {
          kind: 'speech',
          product: productOf(plan.pricing, this.cfg),
          durationMs: await renderedMs(plan.pricing, this.cfg),
          callbackId: null,
          callbackUrl: null,
          title: null,
          outputFormat: 'mp4',
          outputLanguage: null,
          inputLanguage: null,
          translateAudioOnly: false,
          prompt: null,
        },
      ],
    );
    if (!job) throw new Error('no job created');
    if (job.status === 'failed') throw new ApiError(500, 'internal_error', job.failureMessage ?? 'Speech synthesis failed');
    const base = this.cfg.publicUrl ?? this.baseUrl;
    return ok({ audio_url: `${base}/_sim/media/${job.id}.mp3`, duration: job.durationMs / 1000, request_id: job.id, word_timestamps: null });
  }

  private async createProofread(ctx: RequestContext): Promise<Reply> {
    const plan = planProofread(ctx.body, this.cfg);
    const product = productOf(plan.pricing, this.cfg);
    const durationMs = await renderedMs(plan.pricing, this.cfg);
    const jobs = this.createJobs(
      ctx.account,
      plan.languages.map((language) => ({
        kind: 'proofread' as const,
        product,
        durationMs,
        callbackId: null,
        callbackUrl: null,
        title: plan.title,
        outputFormat: 'mp4' as const,
        outputLanguage: language,
        inputLanguage: null,
        translateAudioOnly: false,
        prompt: null,
      })),
    );
    return ok({ proofread_ids: jobs.map((job) => job.id), status: 'processing' });
  }

  private createAvatar(ctx: RequestContext): Reply {
    const plan = planAvatarCreation(ctx.body, this.cfg);
    const [job] = this.createJobs(ctx.account, [
      {
        kind: 'avatar',
        product: productOf(plan.pricing, this.cfg),
        durationMs: 0,
        callbackId: null,
        callbackUrl: null,
        title: plan.name,
        outputFormat: 'mp4',
        outputLanguage: null,
        inputLanguage: null,
        translateAudioOnly: false,
        prompt: null,
        avatarType: plan.type,
      },
    ]);
    if (!job) throw new Error('no job created');
    return ok({ avatar_group: this.avatarGroupObject(job), avatar_item: this.avatarItemObject(job) });
  }

  private get publicBase(): string {
    return this.cfg.publicUrl ?? this.baseUrl;
  }

  /** The account's own jobs of a kind, newest first (HeyGen's lists). */
  private ownJobs(ctx: RequestContext, jobs: Map<string, Job>): Job[] {
    return [...jobs.values()].filter((j) => j.apiKey === ctx.account.apiKey).sort((a, b) => b.createdAt - a.createdAt);
  }

  private voiceDetail(id: string): Record<string, unknown> {
    const voice = found(C.voices(this.publicBase).find((v) => v.voice_id === id), 'Voice');
    return {
      voice_id: voice.voice_id,
      name: voice.name,
      gender: voice.gender,
      language: voice.language,
      preview_audio_url: voice.preview_audio_url,
      support_pause: voice.support_pause,
      support_interactive_avatar: false,
      status: null,
      created_at: null,
      failure_message: null,
    };
  }

  private getVideo(ctx: RequestContext): Reply {
    return ok(this.videoObject(this.owned(this.videos, ctx, 'Video')));
  }

  private getTranslation(ctx: RequestContext): Reply {
    return ok(this.translationObject(this.owned(this.translations, ctx, 'Video translation')));
  }

  private getAgent(ctx: RequestContext): Reply {
    const job = this.owned(this.sessions, ctx, 'Video agent session');
    return ok(this.sessionObject(job));
  }

  private videoStatuses(ctx: RequestContext): Reply {
    return this.bulkStatuses(ctx, this.videos, 'video_ids', 'video_batch');
  }

  private translationStatuses(ctx: RequestContext): Reply {
    return this.bulkStatuses(ctx, this.translations, 'video_translation_ids', 'translation_batch');
  }

  /** Bulk status (no duration, per the spec): unknown or unowned ids answer `not_found`; a batch id expands to its items. */
  private bulkStatuses(ctx: RequestContext, jobs: Map<string, Job>, param: string, batchEndpoint: BatchEndpoint): Reply {
    const ids = ctx.query
      .getAll(param)
      .flatMap((value) => value.split(','))
      .map((id) => id.trim())
      .filter((id) => id.length > 0);
    const batchIds = ctx.query
      .getAll('batch_ids')
      .flatMap((value) => value.split(','))
      .map((id) => id.trim())
      .filter((id) => id.length > 0);
    if (ids.length + batchIds.length === 0) throw validationError(param, `${param} is required`);
    if (ids.length + batchIds.length > MAX_BULK_IDS) {
      throw validationError(param, `At most ${MAX_BULK_IDS} ids per request`);
    }
    const entries: BulkStatusEntry[] = ids.map((id) => {
      const job = jobs.get(id);
      if (!job || job.apiKey !== ctx.account.apiKey) {
        return { video_id: id, status: 'not_found', error: null, batch_id: null, item_index: null };
      }
      const status =
        job.status === 'pending' ? this.cfg.bulkPendingStatus : job.status === 'processing' ? 'processing' : job.status;
      const error = job.status === 'failed' ? { code: job.failureCode, message: job.failureMessage } : null;
      return { video_id: job.id, status, error, batch_id: null, item_index: null };
    });
    for (const batchId of batchIds) {
      const batch = this.batches.get(batchId);
      if (!batch || batch.apiKey !== ctx.account.apiKey || batch.endpoint !== batchEndpoint) {
        entries.push({ video_id: null, status: 'not_found', error: null, batch_id: batchId, item_index: null });
        continue;
      }
      for (const item of batch.items) {
        const view = this.batchItemObject(item);
        entries.push({ video_id: view.video_id, status: view.status, error: view.error, batch_id: batchId, item_index: item.index });
      }
    }
    return json(200, { data: entries, has_more: false, next_token: null });
  }

  private createEndpoint(ctx: RequestContext): Reply {
    const input = parseWebhookEndpoint(ctx.body);
    const endpoint = {
      endpointId: newId(),
      url: input.url,
      events: input.events,
      status: 'enabled' as const,
      createdAt: new Date().toISOString(),
      secret: newSecret(),
    };
    ctx.account.endpoints.set(endpoint.endpointId, endpoint);
    return ok({
      endpoint_id: endpoint.endpointId,
      url: endpoint.url,
      events: endpoint.events,
      status: endpoint.status,
      created_at: endpoint.createdAt,
      secret: endpoint.secret,
    });
  }

  private listEndpoints(ctx: RequestContext): Reply {
    const data = [...ctx.account.endpoints.values()].map((e) => ({
      endpoint_id: e.endpointId,
      url: e.url,
      events: e.events,
      status: e.status,
      created_at: e.createdAt,
      secret: null,
    }));
    return json(200, { data, has_more: false, next_token: null });
  }

  private deleteEndpoint(ctx: RequestContext): Reply {
    const id = ctx.params[0] ?? '';
    if (!ctx.account.endpoints.delete(id)) throw notFound('Webhook endpoint');
    return ok({});
  }

  private rotateSecret(ctx: RequestContext): Reply {
    const endpoint = ctx.account.endpoints.get(ctx.params[0] ?? '');
    if (!endpoint) throw notFound('Webhook endpoint');
    endpoint.secret = newSecret();
    return ok({ endpoint_id: endpoint.endpointId, secret: endpoint.secret });
  }

  /** An avatar this account created, by look or group id (another account's reads like the catalog's unknown ids). */
  private createdAvatar(jobs: Map<string, Job>, ctx: RequestContext): Job | undefined {
    const job = jobs.get(ctx.params[0] ?? '');
    return job && job.apiKey === ctx.account.apiKey ? job : undefined;
  }

  private owned(jobs: Map<string, Job>, ctx: RequestContext, what: string): Job {
    const job = jobs.get(ctx.params[0] ?? '');
    // Another account's job reads exactly like a missing one.
    if (!job || job.apiKey !== ctx.account.apiKey) throw notFound(what);
    return job;
  }

  // ---------------------------------------------------------------- jobs

  /** Admits all jobs of one request or none: concurrency and balance are checked for the whole set. */
  private createJobs(account: SimAccount, specs: JobSpec[]): Job[] {
    if (this.cfg.enforceBalance) {
      const reason = account.insufficientCredit(this.cfg.creditUnitSeconds);
      if (reason !== null) {
        this.counters.insufficientCredit += 1;
        throw new ApiError(402, 'insufficient_credit', reason);
      }
    }
    const slots = specs.filter((spec) => spec.kind !== 'speech').length;
    if (slots > 0 && account.inFlight + slots > account.concurrencyLimit) {
      this.counters.rateLimited.concurrency += 1;
      throw new ApiError(
        429,
        'rate_limit_exceeded',
        `Concurrent job limit reached: ${account.inFlight} in progress, limit ${account.concurrencyLimit}, requested ${specs.length}`,
        null,
        { 'retry-after': String(this.concurrencyRetryAfter(account)) },
      );
    }
    return specs.map((spec) => this.spawn(account, spec));
  }

  /** One job, started now: it takes a concurrency slot (unless synchronous) and renders on its timer. */
  private spawn(account: SimAccount, spec: JobSpec): Job {
    const now = Date.now();
    {
      const job: Job = {
        ...spec,
        groupId: spec.kind === 'avatar' ? newId() : null,
        avatarType: spec.avatarType ?? null,
        batchId: spec.batchId ?? null,
        batchIndex: spec.batchIndex ?? null,
        id: newId(),
        apiKey: account.apiKey,
        durationMs:
          this.cfg.fixedDurationSeconds === null ? spec.durationMs : Math.round(this.cfg.fixedDurationSeconds * 1000),
        rateMicroCredits: decimalToMicro(this.cfg.rates[spec.product]),
        status: 'pending',
        sessionId: spec.kind === 'agent' ? newId() : null,
        createdAt: now,
        completedAt: null,
        finishesAt: null,
        failOnFinish: this.decideJobFailure(),
        failureCode: null,
        failureMessage: null,
        costMicroCs: 0n,
        timers: [],
      };
      this.mapOf(job.kind).set(job.id, job);
      if (job.sessionId !== null) this.sessions.set(job.sessionId, job);
      if (job.groupId !== null) this.avatarGroups.set(job.groupId, job);
      bump(this.counters.jobsCreated, account.apiKey);
      // Text to speech is synchronous: it is answered complete and never holds a concurrency slot.
      if (job.kind === 'speech') {
        this.finishJob(job, { fail: job.failOnFinish });
        return job;
      }
      account.inFlight += 1;
      account.maxInFlight = Math.max(account.maxInFlight, account.inFlight);
      this.scheduleJob(job);
      return job;
    }
  }

  private mapOf(kind: SimJobKind): Map<string, Job> {
    switch (kind) {
      case 'translation':
        return this.translations;
      case 'lipsync':
        return this.lipsyncs;
      case 'proofread':
        return this.proofreads;
      case 'avatar':
        return this.avatars;
      case 'speech':
        return this.speeches;
      default:
        return this.videos;
    }
  }

  private allJobs(): Job[] {
    return [this.videos, this.translations, this.lipsyncs, this.proofreads, this.avatars, this.speeches].flatMap((m) => [...m.values()]);
  }

  private decideJobFailure(): boolean {
    if (this.cfg.failNextJobs > 0) {
      this.cfg = { ...this.cfg, failNextJobs: this.cfg.failNextJobs - 1 };
      return true;
    }
    return this.random.chance(this.cfg.failJobRate);
  }

  private concurrencyRetryAfter(account: SimAccount): number {
    let soonest = Infinity;
    for (const job of this.inFlightJobs(account.apiKey)) {
      if (job.finishesAt !== null) soonest = Math.min(soonest, job.finishesAt);
    }
    if (soonest === Infinity) return this.cfg.retryAfterSeconds;
    return Math.max(1, Math.ceil((soonest - Date.now()) / 1000));
  }

  private *inFlightJobs(apiKey: string): Generator<Job> {
    // Concurrent jobs are every asynchronous generation in progress (text to speech is synchronous).
    for (const job of this.allJobs()) {
      if (job.apiKey === apiKey && job.kind !== 'speech' && (job.status === 'pending' || job.status === 'processing')) yield job;
    }
  }

  private scheduleJob(job: Job): void {
    const renderMs = this.cfg.renderMs;
    const later = (fn: () => void, ms: number): void => {
      const timer = setTimeout(fn, ms);
      timer.unref();
      job.timers.push(timer);
    };
    later(() => {
      if (job.status === 'pending') job.status = 'processing';
    }, Math.floor(renderMs / 2));
    if (this.cfg.autoComplete) {
      job.finishesAt = job.createdAt + renderMs;
      later(() => this.finishJob(job, {}), renderMs);
    }
  }

  private finishJob(
    job: Job,
    opts: { fail?: boolean; durationMs?: number | undefined; failureCode?: string; failureMessage?: string },
  ): boolean {
    if (job.status === 'completed' || job.status === 'failed') return false;
    for (const timer of job.timers) clearTimeout(timer);
    job.timers = [];
    job.finishesAt = null;
    job.completedAt = Date.now();
    const account = this.accounts.get(job.apiKey);
    if (account && job.kind !== 'speech') account.inFlight -= 1;

    if (opts.fail ?? job.failOnFinish) {
      job.status = 'failed';
      job.failureCode = opts.failureCode ?? this.cfg.failureCode;
      job.failureMessage = opts.failureMessage ?? this.cfg.failureMessage;
      bump(this.counters.jobsFailed, job.apiKey);
    } else {
      if (opts.durationMs !== undefined) job.durationMs = opts.durationMs;
      job.status = 'completed';
      // micro-credit-seconds = ms/1000 × (micro-credits per s) × credit-seconds per credit, a part of a micro-credit-
      // second rounded up (as the gateway rounds); a per-call product costs its rate whatever the length.
      job.costMicroCs = PER_CALL.includes(job.product)
        ? job.rateMicroCredits * BigInt(this.cfg.creditUnitSeconds)
        : ceilDiv(BigInt(job.durationMs) * job.rateMicroCredits * BigInt(this.cfg.creditUnitSeconds), 1000n);
      if (account) account.usedMicroCs += job.costMicroCs;
      bump(this.counters.jobsCompleted, job.apiKey);
    }
    if (account) this.emitWebhooks(account, job);
    if (account && job.batchId !== null) {
      const batch = this.batches.get(job.batchId);
      if (batch) this.checkBatchFinished(account, batch);
    }
    // A slot freed: queued batch items start in the order they were submitted.
    if (account && job.kind !== 'speech') this.startQueued(account);
    return true;
  }

  private findJob(id: string): Job | undefined {
    return (
      this.videos.get(id) ??
      this.translations.get(id) ??
      this.sessions.get(id) ??
      this.lipsyncs.get(id) ??
      this.proofreads.get(id) ??
      this.avatars.get(id) ??
      this.avatarGroups.get(id) ??
      this.speeches.get(id)
    );
  }

  private clearJobTimers(): void {
    for (const job of this.allJobs()) {
      for (const timer of job.timers) clearTimeout(timer);
      job.timers = [];
    }
  }

  // ---------------------------------------------------------------- batches

  /** Starts queued batch items of the account while it has free concurrency slots. */
  private startQueued(account: SimAccount): void {
    for (const batch of this.batches.values()) {
      if (batch.apiKey !== account.apiKey || batch.finished) continue;
      for (const item of batch.items) {
        if (item.spec === null || item.job !== null) continue;
        if (account.inFlight >= account.concurrencyLimit) return;
        item.job = this.spawn(account, item.spec);
      }
    }
  }

  private checkBatchFinished(account: SimAccount, batch: Batch): void {
    if (batch.finished) return;
    const done = batch.items.every((i) => i.spec === null || (i.job !== null && (i.job.status === 'completed' || i.job.status === 'failed')));
    if (!done) return;
    batch.finished = true;
    const view = this.batchObject(batch, 0);
    this.dispatchEvent(account, 'batch.finished', { batch_id: batch.id, status: view.status, total_items: view.total_items, counts_by_status: view.counts_by_status }, batch.id, batch.callbackUrl);
  }

  private batchItemObject(item: BatchItem): { item_index: number; status: string; video_id: string | null; error: { code: string | null; message: string | null } | null } {
    const job = item.job;
    const status = item.spec === null ? 'failed' : job === null ? 'queued' : job.status === 'pending' || job.status === 'processing' ? 'processing' : job.status;
    const error = item.error ?? (job?.status === 'failed' ? { code: job.failureCode, message: job.failureMessage } : null);
    return { item_index: item.index, status, video_id: job?.id ?? null, error };
  }

  private batchObject(batch: Batch, offset: number): {
    batch_id: string;
    title: string | null;
    status: string;
    total_items: number;
    counts_by_status: Record<string, number>;
    created_at: number;
    items: ReturnType<HeyGenSimulator['batchItemObject']>[];
    has_more: boolean;
    next_token: string | null;
  } {
    const all = batch.items.map((i) => this.batchItemObject(i));
    const counts: Record<string, number> = { queued: 0, processing: 0, completed: 0, failed: 0 };
    for (const item of all) bump(counts, item.status);
    const terminal = counts['queued'] === 0 && counts['processing'] === 0;
    const end = offset + BATCH_PAGE_SIZE;
    return {
      batch_id: batch.id,
      title: batch.title,
      status: !terminal ? 'processing' : (counts['completed'] ?? 0) > 0 ? 'completed' : 'failed',
      total_items: all.length,
      counts_by_status: counts,
      created_at: unixSeconds(batch.createdAt),
      items: all.slice(offset, end),
      has_more: end < all.length,
      next_token: end < all.length ? String(end) : null,
    };
  }

  private getBatch(ctx: RequestContext, endpoint: BatchEndpoint): Reply {
    const batch = this.batches.get(ctx.params[0] ?? '');
    if (!batch || batch.apiKey !== ctx.account.apiKey || batch.endpoint !== endpoint) throw notFound('Batch');
    const token = ctx.query.get('token');
    const offset = token !== null && /^\d{1,6}$/.test(token) ? Number(token) : 0;
    return ok(this.batchObject(batch, offset));
  }

  /**
   * A batch: the envelope is checked whole (and the balance), then each payload on its own: a bad one becomes a
   * failed item, the rest are created as concurrency slots free up (queued until then). A translation payload
   * expands to one item per language, in order.
   */
  private async createBatch(ctx: RequestContext, endpoint: BatchEndpoint): Promise<Reply> {
    const envelope = planBatchEnvelope(endpoint, ctx.body);
    if (this.cfg.enforceBalance) {
      const reason = ctx.account.insufficientCredit(this.cfg.creditUnitSeconds);
      if (reason !== null) {
        this.counters.insufficientCredit += 1;
        throw new ApiError(402, 'insufficient_credit', reason);
      }
    }
    const batch: Batch = {
      id: newId(),
      endpoint,
      apiKey: ctx.account.apiKey,
      title: envelope.title,
      callbackUrl: envelope.callbackUrl,
      createdAt: Date.now(),
      items: [],
      finished: false,
    };
    for (const [position, payload] of envelope.payloads.entries()) {
      let specs: JobSpec[];
      try {
        specs = await this.batchSpecs(endpoint, payload);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        const param = error.param ? `${BATCH_KEYS[endpoint]}.${position}.${error.param}` : null;
        batch.items.push({ index: batch.items.length, spec: null, job: null, error: { code: error.code, message: param ? `${param}: ${error.message}` : error.message } });
        continue;
      }
      for (const spec of specs) {
        const index = batch.items.length;
        batch.items.push({ index, spec: { ...spec, batchId: batch.id, batchIndex: index }, job: null, error: null });
      }
    }
    this.batches.set(batch.id, batch);
    this.startQueued(ctx.account);
    this.checkBatchFinished(ctx.account, batch);
    const view = this.batchObject(batch, 0);
    return json(202, { data: { batch_id: batch.id, status: view.status, total_items: view.total_items, created_at: view.created_at } });
  }

  private async batchSpecs(endpoint: BatchEndpoint, payload: unknown): Promise<JobSpec[]> {
    const none = { inputLanguage: null, outputLanguage: null, translateAudioOnly: false, prompt: null };
    if (endpoint === 'video_batch') {
      const { pricing, ...plan } = planVideo(payload, this.cfg);
      return [{ ...plan, ...none, product: productOf(pricing, this.cfg), durationMs: await renderedMs(pricing, this.cfg), kind: 'video' }];
    }
    if (endpoint === 'lipsync_batch') {
      const plan = planLipsync(payload, this.cfg);
      return [{ ...none, kind: 'lipsync', product: productOf(plan.pricing, this.cfg), durationMs: await renderedMs(plan.pricing, this.cfg), callbackId: plan.callbackId, callbackUrl: plan.callbackUrl, title: plan.title, outputFormat: 'mp4' }];
    }
    const plan = planTranslation(payload, this.cfg);
    const product = productOf(plan.pricing, this.cfg);
    const durationMs = await renderedMs(plan.pricing, this.cfg);
    return plan.languages.map((language) => ({
      kind: 'translation' as const,
      product,
      durationMs,
      callbackId: plan.callbackId,
      callbackUrl: plan.callbackUrl,
      title: plan.title,
      outputFormat: 'mp4' as const,
      outputLanguage: language,
      inputLanguage: plan.inputLanguage,
      translateAudioOnly: plan.translateAudioOnly,
      prompt: null,
    }));
  }

  // ---------------------------------------------------------------- webhooks

  private emitWebhooks(account: SimAccount, job: Job): void {
    const event = this.webhookEvent(job);
    // HeyGen lists no webhook event for lipsyncs or text to speech.
    if (event === null) return;
    this.dispatchEvent(account, event.eventType, event.eventData, job.id, job.callbackUrl);
  }

  private dispatchEvent(account: SimAccount, eventType: string, eventData: Record<string, unknown>, jobId: string, callbackUrl: string | null): void {
    const eventId = randomUUID();
    const body = JSON.stringify({
      event_type: eventType,
      event_id: eventId,
      created_at: new Date().toISOString(),
      event_data: eventData,
    });
    const base = { eventId, eventType, jobId, body };
    for (const endpoint of account.endpoints.values()) {
      if (endpoint.status !== 'enabled') continue;
      if (endpoint.events !== null && !endpoint.events.includes(eventType)) continue;
      this.webhooks.dispatch({
        ...base,
        url: endpoint.url,
        target: 'endpoint',
        endpointId: endpoint.endpointId,
        secret: endpoint.secret,
        lost: this.decideWebhookLoss(),
      });
    }
    if (callbackUrl !== null) {
      this.webhooks.dispatch({
        ...base,
        url: callbackUrl,
        target: 'callback_url',
        endpointId: null,
        secret: null,
        lost: this.decideWebhookLoss(),
      });
    }
  }

  private decideWebhookLoss(): boolean {
    return this.cfg.loseWebhooks || this.random.chance(this.cfg.webhookLossRate);
  }

  private webhookEvent(job: Job): { eventType: string; eventData: Record<string, unknown> } | null {
    const succeeded = job.status === 'completed';
    const url = succeeded ? this.mediaUrl(job) : null;
    switch (job.kind) {
      case 'translation':
        return succeeded
          ? {
              eventType: 'video_translate.success',
              eventData: { video_translate_id: job.id, url, output_language: job.outputLanguage, callback_id: job.callbackId },
            }
          : {
              eventType: 'video_translate.fail',
              eventData: { video_translate_id: job.id, message: job.failureMessage, callback_id: job.callbackId },
            };
      case 'agent':
        return succeeded
          ? {
              eventType: 'video_agent.success',
              eventData: { video_id: job.id, session_id: job.sessionId, video_url: url, callback_id: job.callbackId },
            }
          : {
              eventType: 'video_agent.fail',
              eventData: { video_id: job.id, session_id: job.sessionId, message: job.failureMessage, callback_id: job.callbackId },
            };
      case 'video':
      case 'template':
        return succeeded
          ? { eventType: 'avatar_video.success', eventData: { video_id: job.id, url, callback_id: job.callbackId } }
          : { eventType: 'avatar_video.fail', eventData: { video_id: job.id, msg: job.failureMessage, callback_id: job.callbackId } };
      case 'proofread':
        return {
          eventType: succeeded ? 'proofread_creation.success' : 'proofread_creation.fail',
          eventData: { proofread_id: job.id, output_language: job.outputLanguage, ...(succeeded ? {} : { message: job.failureMessage }) },
        };
      case 'avatar': {
        // The simulator's reading of HeyGen's event list: photo avatars train as photo_avatar_train, digital twins as instant_avatar.
        const prefix = job.avatarType === 'digital_twin' ? 'instant_avatar' : 'photo_avatar_train';
        return {
          eventType: `${prefix}.${succeeded ? 'success' : 'fail'}`,
          eventData: { avatar_id: job.id, avatar_group_id: job.groupId, ...(succeeded ? {} : { message: job.failureMessage }) },
        };
      }
      case 'lipsync':
      case 'speech':
        return null;
    }
  }

  // ---------------------------------------------------------------- resource shapes

  private mediaUrl(job: Job): string {
    return `${this.cfg.publicUrl ?? this.baseUrl}/_sim/media/${job.id}.${job.outputFormat}`;
  }

  private failureFields(job: Job): Record<string, unknown> {
    return job.status === 'failed' ? { failure_code: job.failureCode, failure_message: job.failureMessage } : {};
  }

  private videoObject(job: Job): Record<string, unknown> {
    const completed = job.status === 'completed';
    const base = this.cfg.publicUrl ?? this.baseUrl;
    return {
      id: job.id,
      title: job.title,
      status: job.status,
      created_at: unixSeconds(job.createdAt),
      completed_at: job.completedAt === null ? null : unixSeconds(job.completedAt),
      duration: completed ? job.durationMs / 1000 : null,
      video_url: completed ? this.mediaUrl(job) : null,
      thumbnail_url: completed ? `${base}/_sim/media/${job.id}.jpg` : null,
      gif_url: null,
      captioned_video_url: null,
      subtitle_url: null,
      video_page_url: null,
      folder_id: null,
      output_language: null,
      callback_id: job.callbackId,
      ...this.failureFields(job),
    };
  }

  private translationObject(job: Job): Record<string, unknown> {
    const completed = job.status === 'completed';
    const base = this.cfg.publicUrl ?? this.baseUrl;
    return {
      id: job.id,
      title: job.title,
      status: job.status === 'processing' ? 'running' : job.status,
      created_at: unixSeconds(job.createdAt),
      input_language: job.inputLanguage,
      output_language: job.outputLanguage,
      translate_audio_only: job.translateAudioOnly,
      duration: completed ? job.durationMs / 1000 : null,
      video_url: completed ? this.mediaUrl(job) : null,
      audio_url: completed ? `${base}/_sim/media/${job.id}.mp3` : null,
      srt_caption_url: null,
      vtt_caption_url: null,
      callback_id: job.callbackId,
      ...this.failureFields(job),
    };
  }

  private lipsyncObject(job: Job): Record<string, unknown> {
    const completed = job.status === 'completed';
    return {
      id: job.id,
      title: job.title,
      status: job.status === 'processing' ? 'running' : job.status,
      created_at: unixSeconds(job.createdAt),
      duration: completed ? job.durationMs / 1000 : null,
      video_url: completed ? this.mediaUrl(job) : null,
      caption_url: null,
      callback_id: job.callbackId,
      ...(job.status === 'failed' ? { failure_message: job.failureMessage } : {}),
    };
  }

  /** A proofread session: HeyGen's read has no duration. */
  private proofreadObject(job: Job): Record<string, unknown> {
    return {
      id: job.id,
      title: job.title,
      status: job.status === 'pending' ? 'processing' : job.status,
      created_at: unixSeconds(job.createdAt),
      input_language: null,
      output_language: job.outputLanguage,
      submitted_for_review: false,
      ...(job.status === 'failed' ? { failure_message: job.failureMessage } : {}),
    };
  }

  private avatarStatus(job: Job): { status: string; error: { code: string; message: string } | null } {
    const status = job.status === 'pending' ? 'processing' : job.status;
    return { status, error: job.status === 'failed' ? { code: job.failureCode ?? 'failed', message: job.failureMessage ?? 'failed' } : null };
  }

  private avatarItemObject(job: Job): Record<string, unknown> {
    const base = this.cfg.publicUrl ?? this.baseUrl;
    return {
      id: job.id,
      name: job.title,
      avatar_type: job.avatarType === 'digital_twin' ? 'digital_twin' : 'photo_avatar',
      group_id: job.groupId,
      ...this.avatarStatus(job),
      gender: null,
      default_voice_id: null,
      preview_image_url: job.status === 'completed' ? `${base}/_sim/media/${job.id}.jpg` : null,
      preview_video_url: null,
      image_width: null,
      image_height: null,
      preferred_orientation: null,
      supported_api_engines: ['avatar_iv', 'avatar_iii'],
      tags: [],
    };
  }

  private avatarGroupObject(job: Job): Record<string, unknown> {
    return {
      id: job.groupId,
      name: job.title,
      created_at: unixSeconds(job.createdAt),
      looks_count: 1,
      ...this.avatarStatus(job),
      consent_status: null,
      default_voice_id: null,
      gender: null,
      preview_image_url: null,
      preview_video_url: null,
    };
  }

  private sessionObject(job: Job): Record<string, unknown> {
    const status = job.status === 'completed' || job.status === 'failed' ? job.status : 'generating';
    const progress = { pending: 0, processing: 50, completed: 100, failed: 100 }[job.status];
    return {
      session_id: job.sessionId,
      status,
      progress,
      title: null,
      video_id: job.id,
      created_at: unixSeconds(job.createdAt),
      messages: [
        { role: 'user', type: 'text', content: job.prompt ?? '', created_at: unixSeconds(job.createdAt), resource_ids: null },
      ],
    };
  }

  // ---------------------------------------------------------------- control API (no api key)

  private control(method: string, url: URL, rawBody: string): Reply {
    try {
      return this.controlRoute(method, url, rawBody);
    } catch (error) {
      if (error instanceof ApiError) return errorReply(error);
      if (error instanceof z.ZodError) {
        const issue = error.issues[0];
        return errorReply(validationError(issue?.path.map(String).join('.') || null, issue?.message ?? 'Invalid input'));
      }
      throw error;
    }
  }

  private controlRoute(method: string, url: URL, rawBody: string): Reply {
    const path = url.pathname;
    const body = (): unknown => {
      if (rawBody.trim() === '') return {};
      try {
        return JSON.parse(rawBody);
      } catch {
        throw validationError(null, 'Request body is not valid JSON');
      }
    };
    const data = (value: unknown): Reply => ({
      status: 200,
      body: JSON.stringify({ data: value }, bigintReplacer),
      headers: { 'content-type': 'application/json' },
    });

    if (method === 'GET' && path === '/_sim/health') return data({ ok: true });
    if (path === '/_sim/config') {
      if (method === 'GET') return data(this.config());
      if (method === 'POST') return data(this.configure(body() as SimulatorConfigPatch));
    }
    if (path === '/_sim/accounts') {
      if (method === 'POST') {
        const input = accountInputSchema.parse(body());
        this.addAccount(input);
        return data(this.accountSummary(input.apiKey));
      }
      if (method === 'GET') return data([...this.accounts.keys()].map((key) => this.accountSummary(key)));
    }
    if (method === 'POST' && path === '/_sim/reset') {
      this.reset();
      return data({ reset: true });
    }
    if (method === 'GET' && path === '/_sim/stats') return data(this.stats());
    if (method === 'POST' && path === '/_sim/usage') {
      const input = usageInputSchema.parse(body());
      if (!this.accounts.has(input.apiKey)) throw notFound('Account');
      this.addOutsideUsage(input.apiKey, input.creditSeconds);
      return data(this.accountSummary(input.apiKey));
    }
    if (method === 'GET' && path === '/_sim/jobs') return data(this.jobs(url.searchParams.get('api_key') ?? undefined));
    if (method === 'GET' && path === '/_sim/webhooks') return data(this.webhookDeliveries());

    const jobMatch = /^\/_sim\/jobs\/([^/]+)(?:\/(complete|fail))?$/.exec(path);
    if (jobMatch) {
      const id = decodeURIComponent(jobMatch[1] ?? '');
      const action = jobMatch[2];
      if (!this.findJob(id)) throw notFound('Job');
      if (method === 'GET' && action === undefined) return data(this.job(id));
      if (method === 'POST' && action === 'complete') {
        const input = completeInputSchema.parse(body());
        return data({ changed: this.completeNow(id, input), job: this.job(id) });
      }
      if (method === 'POST' && action === 'fail') {
        const input = failInputSchema.parse(body());
        return data({ changed: this.failNow(id, input), job: this.job(id) });
      }
    }

    const media = /^\/_sim\/media\/([^/]+)$/.exec(path);
    if (method === 'GET' && media) {
      return { status: 200, body: 'SIMULATED MEDIA', headers: { 'content-type': 'application/octet-stream' } };
    }
    throw new ApiError(404, 'not_found', `No control route for ${method} ${path}`);
  }

  private accountSummary(apiKey: string): Record<string, unknown> {
    const account = this.accounts.get(apiKey);
    if (!account) throw notFound('Account');
    return {
      apiKey: account.apiKey,
      billingType: account.billingType,
      concurrencyLimit: account.concurrencyLimit,
      inFlight: account.inFlight,
      usage: this.usage(apiKey),
      user: account.userMe(this.cfg.creditUnitSeconds),
    };
  }
}

const usageInputSchema = z.strictObject({
  apiKey: z.string().min(1),
  creditSeconds: z.union([z.number(), z.string().regex(/^-?\d+(\.\d+)?$/)]),
});
const completeInputSchema = z.strictObject({ durationSeconds: z.number().positive().optional() });
const failInputSchema = z.strictObject({
  failureCode: z.string().min(1).optional(),
  failureMessage: z.string().min(1).optional(),
});

function parseConfigPatch(patch: SimulatorConfigPatch): SimulatorConfigPatch {
  return configPatchSchema.parse(patch) as SimulatorConfigPatch;
}

function snapshot(job: Job): SimJobSnapshot {
  return {
    id: job.id,
    kind: job.kind,
    apiKey: job.apiKey,
    product: job.product,
    status: job.status,
    durationSeconds: job.durationMs / 1000,
    costMicroCreditSeconds: job.costMicroCs,
    callbackId: job.callbackId,
    callbackUrl: job.callbackUrl,
    sessionId: job.sessionId,
    outputLanguage: job.outputLanguage,
    batchId: job.batchId,
    batchIndex: job.batchIndex,
    createdAt: job.createdAt,
    completedAt: job.completedAt,
    failureCode: job.failureCode,
    failureMessage: job.failureMessage,
  };
}

/** `total` bytes of ASCII zeros, produced as they are read (64 KiB at a time). */
function garbage(total: number): Readable {
  const block = Buffer.alloc(64 * 1024, 0x30);
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= total) {
        this.push(null);
        return;
      }
      const n = Math.min(block.length, total - sent);
      sent += n;
      this.push(n === block.length ? block : block.subarray(0, n));
    },
  });
}

function newSecret(): string {
  return `whsec_${randomBytes(24).toString('base64url')}`;
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The raw body, or null past MAX_BODY_BYTES. */
function readBody(req: http.IncomingMessage): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(tooLarge ? null : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
