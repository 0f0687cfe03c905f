// Wires configuration into services: database, secrets, tokens, HeyGen client, workers, HTTP.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from './config.js';
import { openDatabase, runMigrations, type Database, type Db } from './db/client.js';
import { listenForNotifications, type Notifications } from './db/notifications.js';
import { createSecretBox, generateMasterKey, type SecretBox } from './secrets/secret-box.js';
import { createTokenService, REVOCATION_ACK_CHANNEL, REVOCATION_CHANNEL, type TokenService } from './auth/tokens.js';
import { createCompanyTokenVerifier } from './auth/company-tokens.js';
import { createHeygenClient, type HeygenClient } from './heygen/client.js';
import { createLogger, type Logger } from './logging.js';
import type { AdmissionSettings } from './jobs/admission.js';
import type { JobDeps } from './jobs/follow.js';
import { startWorker } from './jobs/worker.js';
import { QUEUE_CHANNEL, startDispatcher, type Dispatcher, type QueueSettings } from './jobs/queue.js';
import { startWalletSync, type WalletSyncDeps } from './billing/wallet.js';
import type { Periodic } from './background/periodic.js';
import { createGatewayMetrics, type GatewayMetrics } from './observability/metrics.js';
import { observeHeygenCalls } from './observability/upstream.js';
import { startOutboxWorker, type OutboxDeps, type OutboxHandler } from './outbox/worker.js';
import { APP_CALLBACK_TOPIC, appCallbackHandler } from './outbox/app-callback.js';
import { withFreshOutputUrl } from './jobs/app-events.js';
import { createLiveHub, LIVE_CHANNEL, parseLiveSignal, type LiveHub } from './live/hub.js';
import { createLivePresence, type LivePresence } from './live/presence.js';
import { notificationHandlers } from './notifications/delivery.js';
import { MONEY_EVENT_CHANNEL, moneyEventSignal } from './notifications/events.js';
import { startPoolRunOutChecks } from './billing/pool-run-out.js';

export interface Services {
  readonly config: Config;
  readonly database: Database;
  readonly db: Db;
  readonly box: SecretBox;
  readonly tokens: TokenService;
  /** LISTEN/NOTIFY on a dedicated connection (PostgreSQL only): revocations reach this process's caches. */
  readonly notifications: Notifications | null;
  /** This process's live-update subscribers (GraphQL subscriptions), fed by the `gateway_live` channel. */
  readonly live: LiveHub;
  /** This process's row in live_listeners while it has streams open (changes are announced only while some process has one). */
  readonly livePresence: LivePresence;
  readonly heygen: HeygenClient;
  readonly logger: Logger;
  readonly admission: AdmissionSettings;
  readonly jobDeps: JobDeps;
  /** The concurrency queue's settings (config.queue), with this process's dispatch counter. */
  readonly queue: QueueSettings;
  readonly walletDeps: WalletSyncDeps;
  /** This process's counters and histograms (admissions, HeyGen calls, HTTP requests, webhooks); /metrics exposes them. */
  readonly metrics: GatewayMetrics;
  /** The outbox delivery loop's dependencies (app callbacks). */
  readonly outboxDeps: OutboxDeps;
  worker: Periodic | null;
  /** The queue's dispatcher (where the workers run), woken by freed slots announced on `gateway_queue`. */
  dispatcher: Dispatcher | null;
  walletSync: Periodic | null;
  outboxWorker: Periodic | null;
  /** The pool run-out forecast checks (pool.run_out_forecast). */
  poolRunOut: Periodic | null;
}

/** With the embedded database, a missing master key is generated into the data folder (with a warning). */
function resolveMasterKey(config: Config, logger: Logger): string {
  if (config.masterKey) return config.masterKey;
  if (config.dataDir === 'memory://') return generateMasterKey();
  const file = join(config.dataDir, 'master.key');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const key = generateMasterKey();
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  logger.warn({ file }, 'GATEWAY_MASTER_KEY is not set: generated one into the data folder. Set it explicitly in production.');
  return key;
}

/** How long a process's live_listeners row stays in force unless renewed (every third of it). */
const LIVE_PRESENCE_TTL_MS = 30_000;
/** The longest a first subscription waits for transactions begun before its process registered. */
const LIVE_PRESENCE_CATCH_UP_MAX_MS = 5_000;

export async function createServices(config: Config, overrides: { logger?: Logger; heygen?: HeygenClient } = {}): Promise<Services> {
  const logger = overrides.logger ?? createLogger(config.logLevel);
  // A configured master key is checked before the database is touched: a wrong setting migrates nothing.
  if (config.masterKey) createSecretBox(config.masterKey, config.previousMasterKeys);
  const database = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    poolSize: config.dbPoolSize,
    connectTimeoutMs: config.dbConnectTimeoutMs,
    // The statement in flight on the connection fails by itself (and is answered UNAVAILABLE); this is the log line.
    onConnectionError: (error) => logger.warn({ err: { message: error.message, code: (error as { code?: unknown }).code } }, 'database connection lost; the pool reconnects'),
  });
  let notifications: Notifications | null = null;
  try {
    await runMigrations({ databaseUrl: config.databaseUrl, database });
    const box = createSecretBox(resolveMasterKey(config, logger), config.previousMasterKeys);
    const company = config.companyTokens
      ? { verifier: createCompanyTokenVerifier(config.companyTokens), configMappings: config.roleMappings }
      : null;
    // Live signals are sent only while some process has a stream open (src/live/presence.ts); this one registers with
    // its first stream and has its subscribers re-read what they follow once registered.
    const presence = createLivePresence(database.db, {
      ttlMs: LIVE_PRESENCE_TTL_MS,
      catchUpMaxMs: LIVE_PRESENCE_CATCH_UP_MAX_MS,
      logger,
      onCaughtUp: () => live.resync(),
    });
    const live: LiveHub = createLiveHub({ maxPerOwner: config.graphql.maxSubscriptionsPerCaller, presence });
    notifications = config.databaseUrl
      ? listenForNotifications({
          databaseUrl: config.databaseUrl,
          channels: [REVOCATION_CHANNEL, REVOCATION_ACK_CHANNEL, LIVE_CHANNEL, MONEY_EVENT_CHANNEL, QUEUE_CHANNEL],
          heartbeatMs: config.notifyHeartbeatMs,
          // Changes announced while the listener was away are lost: every subscriber re-reads its entity.
          onLive: () => live.resync(),
          onLost: (error) => logger.warn({ err: error ? { message: error.message } : undefined }, 'revocation listener lost; tokens are read from the database until it reconnects'),
          onHandlerError: (error) => logger.error({ err: { message: (error as Error).message } }, 'notification handler failed'),
        })
      : null;
    const onLiveSignal = (payload: string) => {
      // Every job's changes are announced: with no stream open in this process there is no one to hand them to.
      if (live.count() === 0) return;
      const signal = parseLiveSignal(payload);
      if (signal) live.dispatch(signal);
    };
    // A money event is read (its unit's path) only while someone here subscribes to money events; one read after
    // the other, so that subscribers get events in commit order.
    let moneyEventReads = Promise.resolve();
    const onMoneyEvent = (id: string) => {
      if (!live.wants('money')) return;
      moneyEventReads = moneyEventReads.then(() =>
        moneyEventSignal(database.db, id).then(
          (signal) => {
            if (signal) live.dispatch(signal);
          },
          (error: Error) => logger.warn({ err: { message: error.message }, eventId: id }, 'money event not read for live subscribers'),
        ),
      );
    };
    if (notifications) {
      notifications.on(LIVE_CHANNEL, onLiveSignal);
      notifications.on(MONEY_EVENT_CHANNEL, onMoneyEvent);
      // A revoked service token's open streams end at once, on every process.
      notifications.on(REVOCATION_CHANNEL, (tokenId) => live.revoke(tokenId));
    } else {
      await database.listen?.(LIVE_CHANNEL, onLiveSignal);
      await database.listen?.(MONEY_EVENT_CHANNEL, onMoneyEvent);
    }
    const tokens = await createTokenService(database.db, box, {
      issuer: config.jwt.issuer,
      audience: config.jwt.audience,
      company,
      revocations: notifications,
      recheckMs: config.authRecheckMs,
    });
    const metrics = createGatewayMetrics();
    const heygen =
      overrides.heygen ??
      createHeygenClient({
        timeoutMs: config.heygen.timeoutMs,
        maxAttempts: config.heygen.maxAttempts,
        userMePath: config.heygen.userMePath,
        maxResponseBytes: config.heygen.maxResponseBytes,
        logger,
        observe: observeHeygenCalls(metrics.heygenRequestDuration),
      });
    const admission: AdmissionSettings = {
      holdTtlHours: config.holdTtlHours,
      forwardLeaseMs: config.workers.leaseMs,
      queue: config.queue,
      onOutcome: (outcome) => {
        metrics.admissions.inc({ outcome: outcome.outcome, reason: outcome.reason });
        if (outcome.outcome === 'refused') {
          const { refusal, projectId } = outcome;
          metrics.admissionRefusals.inc({ project: projectId, unit: 'orgUnitId' in refusal ? refusal.orgUnitId : projectId, reason: outcome.reason });
        }
      },
      media: config.mediaProbe,
      maxRequestBytes: config.jobRequestMaxBytes,
      maxTags: config.jobMaxTags,
      maxJsonDepth: config.graphql.maxJsonDepth,
      callbacks: { allowHttp: config.callbacks.allowHttp, allowPrivate: config.callbacks.allowPrivate },
      groupCommitMax: config.admissionGroupCommitMax,
    };
    const jobDeps: JobDeps = {
      db: database.db,
      box,
      heygen,
      logger,
      follow: {
        publicUrl: config.publicUrl ?? null,
        pollMinIntervalMs: config.workers.pollMinIntervalMs,
        pollMaxIntervalMs: config.workers.pollMaxIntervalMs,
        statusReadMinIntervalMs: config.workers.statusReadMinIntervalMs,
        statusReadConcurrency: config.workers.statusReadConcurrency,
        leaseMs: config.workers.leaseMs,
        submitGiveUpMs: 23 * 3600_000,
        groupCommitMax: config.workers.groupCommitMax,
      },
      appEvents: { maxAttempts: config.callbacks.maxAttempts },
    };
    const handlers = new Map<string, OutboxHandler>([
      [
        APP_CALLBACK_TOPIC,
        appCallbackHandler({
          db: database.db,
          box,
          settings: { timeoutMs: config.callbacks.timeoutMs, maxResponseBytes: config.callbacks.maxResponseBytes, allowPrivate: config.callbacks.allowPrivate },
          bodyOf: (event) => withFreshOutputUrl({ db: database.db, box, heygen, logger }, event),
        }),
      ],
      ...notificationHandlers({
        db: database.db,
        box,
        settings: {
          timeoutMs: config.callbacks.timeoutMs,
          maxResponseBytes: config.callbacks.maxResponseBytes,
          allowPrivate: config.callbacks.allowPrivate,
          maxAttempts: config.notifications.maxAttempts,
        },
      }),
    ]);
    const outboxDeps: OutboxDeps = {
      db: database.db,
      logger,
      handlers,
      settings: {
        batchSize: config.outbox.batchSize,
        concurrency: config.outbox.concurrency,
        // A claim outlasts a whole pass (a batch, `concurrency` attempts at a time, each a fresh output URL read from
        // HeyGen and a POST, each within its time limit) by a margin, so two processes never deliver one event at once.
        leaseMs:
          (config.callbacks.timeoutMs + config.heygen.timeoutMs * config.heygen.maxAttempts) * Math.ceil(config.outbox.batchSize / config.outbox.concurrency) +
          30_000,
        retryBaseMs: config.callbacks.retryBaseMs,
        retryMaxMs: config.callbacks.retryMaxMs,
      },
      onAttempt: (event, outcome) => metrics.outboxDeliveries.inc({ topic: event.topic, outcome }),
    };
    const walletDeps: WalletSyncDeps = {
      db: database.db,
      box,
      heygen,
      logger,
      settings: { intervalMs: config.walletSync.intervalMs, driftThresholdMicroCs: config.walletSync.driftThresholdMicroCs },
    };
    return {
      config,
      database,
      db: database.db,
      box,
      tokens,
      notifications,
      live,
      livePresence: presence,
      heygen,
      logger,
      admission,
      metrics,
      jobDeps,
      queue: { ...config.queue, onDispatched: (account) => metrics.queueDispatches.inc({ account }) },
      walletDeps,
      outboxDeps,
      worker: null,
      dispatcher: null,
      walletSync: null,
      outboxWorker: null,
      poolRunOut: null,
    };
  } catch (error) {
    await notifications?.close();
    await database.close();
    throw error;
  }
}

export function startBackgroundWork(services: Services): void {
  if (services.config.workers.enabled && !services.worker) {
    services.worker = startWorker(services.jobDeps, services.config.workers.intervalMs, services.config.workers.backoffMaxMs);
  }
  if (services.config.workers.enabled && !services.dispatcher) {
    const dispatcher = startDispatcher(services.jobDeps, services.queue, services.config.workers.backoffMaxMs);
    services.dispatcher = dispatcher;
    if (services.notifications) services.notifications.on(QUEUE_CHANNEL, (accountId) => dispatcher.wake(accountId));
    else void services.database.listen?.(QUEUE_CHANNEL, (accountId) => dispatcher.wake(accountId));
  }
  if (services.config.workers.enabled && !services.outboxWorker) {
    services.outboxWorker = startOutboxWorker(services.outboxDeps, services.config.outbox.intervalMs, services.config.workers.backoffMaxMs);
  }
  if (services.config.workers.enabled && services.config.walletSync.enabled && !services.walletSync) {
    services.walletSync = startWalletSync(services.walletDeps, { backoffMaxMs: services.config.workers.backoffMaxMs });
  }
  if (services.config.workers.enabled && services.config.forecastAlertIntervalMs > 0 && !services.poolRunOut) {
    services.poolRunOut = startPoolRunOutChecks(services.db, services.config.forecastAlertIntervalMs, services.logger, services.config.workers.backoffMaxMs);
  }
}

export async function stopServices(services: Services): Promise<void> {
  services.live.close();
  await services.livePresence.close();
  await services.worker?.stop();
  services.worker = null;
  await services.dispatcher?.stop();
  services.dispatcher = null;
  await services.walletSync?.stop();
  services.walletSync = null;
  await services.outboxWorker?.stop();
  services.outboxWorker = null;
  await services.poolRunOut?.stop();
  services.poolRunOut = null;
  services.tokens.close();
  await services.notifications?.close();
  await services.database.close();
}
