// Jobs: submit (admission + forwarding), cancel, and read.
import { and, desc, asc, eq, getTableColumns, inArray, or, lt, gt } from 'drizzle-orm';
import { builder } from './builder.js';
import { MUTATION_ERRORS, SUBMIT_ERRORS } from './errors.js';
import { decodeId, tryDecodeId } from './ids.js';
import { OrgUnitRef } from './org.js';
import { AccountRef } from './accounts.js';
import { visibleAccount, visibleJob, visibleJobsFilter } from './visibility.js';
import { JOB_KINDS, JOB_STATUSES, jobsTable } from '../db/schema.js';
import { personOf, type JobRow } from '../jobs/admission.js';
import { submitJob, type JobItemRow } from '../jobs/submit.js';
import { createOutputReader, type ItemOutput } from '../jobs/outputs.js';
import type { GraphQLContext } from './context.js';
import { settleJob } from '../jobs/settlement.js';
import { NotFoundError, ValidationError } from '../errors.js';
import { isUuid } from '../org/units.js';
import { isStorableInstant } from '../validation.js';
import { cursorPage } from './pagination.js';



export const JobKindEnum = builder.enumType('JobKind', { description: 'The HeyGen product a job uses.', values: JOB_KINDS });
const JobStatusEnum = builder.enumType('JobStatus', {
  description:
    '(QUEUED →) RESERVED → SUBMITTED → PROCESSING → SUCCEEDED | FAILED | CANCELLED; QUEUED while admitted (its hold taken) but waiting for a concurrency slot (see Job.queue; it expires after QUEUE_TTL_SECONDS, and goes back to it when HeyGen answers 429); SUBMIT_UNKNOWN while a submission outcome is unclear (retried with the same Idempotency-Key); REJECTED at admission; EXPIRED when the hold outlived HOLD_TTL_HOURS (or the submission stayed unresolved past HeyGen\'s 24 h idempotency window): completed outputs debited, the rest released, and a drift note written when HeyGen may still bill it.',
  values: JOB_STATUSES,
});

const JobTagRef = builder.objectRef<{ key: string; value: string }>('JobTag').implement({
  description: 'One key/value tag of a job.',
  fields: (t) => ({
    key: t.exposeString('key', { description: "The key (from the organization's allowlist)." }),
    value: t.exposeString('value', { description: 'The value.' }),
  }),
});

const JobTagInput = builder.inputType('JobTagInput', {
  description: "One key/value tag: the key from the organization's allowlist (setTagKeys).",
  fields: (f) => ({
    key: f.string({ required: true, description: 'The key: a lower-case letter, then up to 63 of a-z 0-9 _ - . :' }),
    value: f.string({ required: true, description: '1 to 256 characters.' }),
  }),
});

/** A list of tags as the map jobs store; a key given twice is refused. */
function tagsOf(list: readonly { key: string; value: string }[] | null | undefined): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const { key, value } of list ?? []) {
    if (Object.hasOwn(tags, key)) throw new ValidationError('tags', `tag key "${key.slice(0, 64)}" is given twice`);
    tags[key] = value;
  }
  return tags;
}

const JobOutputRef = builder.objectRef<ItemOutput>('JobOutput').implement({
  description:
    "What HeyGen produced for one upstream item, read from HeyGen when asked (its URLs are presigned and expire: read them again rather than storing them). At most 50 outputs are read per request, 4 at a time; more is a VALIDATION_FAILED error on the field: ask for outputs on a smaller page.",
  fields: (t) => ({
    upstreamId: t.exposeString('upstreamId', { description: "HeyGen's id of the item." }),
    status: t.exposeString('status', { description: "HeyGen's status as it answered now (pending, processing/running, completed, failed, or a session status)." }),
    videoUrl: t.exposeString('videoUrl', { nullable: true, description: 'Download URL of the video (completed only; expires).' }),
    thumbnailUrl: t.exposeString('thumbnailUrl', { nullable: true, description: 'Thumbnail image URL.' }),
    captionUrl: t.exposeString('captionUrl', { nullable: true, description: 'Caption file URL (SRT subtitle, else VTT), when HeyGen made one.' }),
    audioUrl: t.exposeString('audioUrl', { nullable: true, description: 'Translated audio URL (translations).' }),
    durationSeconds: t.exposeString('durationSeconds', { nullable: true, description: 'Output duration in seconds, as HeyGen reports it now.' }),
    language: t.exposeString('language', { nullable: true, description: 'Output language (translations).' }),
    failureMessage: t.exposeString('failureMessage', { nullable: true, description: "HeyGen's failure message (failed only)." }),
  }),
});

// One reader per request (per loaders: a subscription gets new ones per event): each item read once, the
// request's reads bounded (src/jobs/outputs.ts).
const outputReaders = new WeakMap<object, ReturnType<typeof createOutputReader>>();
function outputReader(ctx: GraphQLContext) {
  let reader = outputReaders.get(ctx.loaders);
  if (!reader) {
    const loaders = ctx.loaders;
    reader = createOutputReader(ctx.services, (id) => loaders.accountById.load(id));
    outputReaders.set(ctx.loaders, reader);
  }
  return reader;
}

type ItemView = JobItemRow & { accountId: string };

const UpstreamItemRef = builder.objectRef<ItemView>('UpstreamItem').implement({
  description: 'One billable output HeyGen created for the job (a translation has one per language).',
  fields: (t) => ({
    output: t.field({
      type: JobOutputRef,
      nullable: true,
      description: 'What HeyGen produced, read fresh from HeyGen (null when HeyGen no longer knows the id).',
      resolve: (i, _a, ctx) => outputReader(ctx)(i, i.accountId),
    }),
    upstreamId: t.exposeString('upstreamId', {
      description: "HeyGen's id (video_id, video_translation_id, session_id, lipsync_id, proofread_id, avatar look or group id, TTS request_id), or `{batch_id}#{item_index}` for a batch item.",
    }),
    kind: t.exposeString('kind', {
      description: 'video, translation, agent_session, lipsync, speech, proofread, avatar_look, avatar_group, batch_video, batch_translation or batch_lipsync.',
    }),
    language: t.exposeString('language', { nullable: true, description: 'Output language of a translation.' }),
    status: t.exposeString('status', { description: 'Last status read from HeyGen.' }),
    durationSeconds: t.exposeString('durationSeconds', { nullable: true, description: 'Output seconds HeyGen reported.' }),
    createAnswer: t.field({
      type: 'JSON',
      nullable: true,
      description: "The create answer's data where it holds more than ids, as HeyGen sent it (text to speech: audio_url, duration, request_id, word_timestamps; avatar creation: avatar_group, avatar_item); null for the others.",
      resolve: (i) => i.createAnswer ?? null,
    }),
  }),
});

/** A job as GraphQL reads it: lists leave out the request body (up to JOB_REQUEST_MAX_BYTES each), loaded only when asked for. */
type JobView = Omit<JobRow, 'request'> & { request?: unknown };
const { request: _request, ...jobListColumns } = getTableColumns(jobsTable);

export const JobRef = builder.objectRef<JobView>('Job');
builder.node(JobRef, {
  description: 'A HeyGen job submitted through the gateway, with its hold and settlement.',
  id: { resolve: (j) => j.id },
  loadOne: (id, ctx) => visibleJob(ctx, id),
  fields: (t) => ({
    kind: t.field({ type: JobKindEnum, description: 'Product.', resolve: (j) => j.kind }),
    status: t.field({ type: JobStatusEnum, description: 'Lifecycle state.', resolve: (j) => j.status }),
    project: t.field({ type: OrgUnitRef, description: 'The project it belongs to.', resolve: async (j, _a, ctx) => (await ctx.loaders.unitById.load(j.projectId))! }),
    account: t.field({
      type: AccountRef,
      nullable: true,
      description: 'The account it draws on (null when the caller may no longer see it, e.g. after the project moved to another account).',
      resolve: (j, _a, ctx) => visibleAccount(ctx, j.accountId),
    }),
    product: t.exposeString('product', { description: 'Price-book product the job is rated as.' }),
    estimatedSeconds: t.exposeString('estimatedSeconds', { description: 'Output seconds the estimate assumed (all outputs).' }),
    estimatedCreditSeconds: t.field({ type: 'CreditSeconds', description: 'The hold placed at admission (estimate × safety margin).', resolve: (j) => j.estimatedMicroCs }),
    reservedCreditSeconds: t.field({ type: 'CreditSeconds', description: 'The hold still open (0 once settled or released).', resolve: (j) => j.reservedMicroCs }),
    actualSeconds: t.exposeString('actualSeconds', { nullable: true, description: 'Output seconds HeyGen reported for completed outputs.' }),
    actualCreditSeconds: t.field({ type: 'CreditSeconds', nullable: true, description: 'Settled cost: duration × rate.', resolve: (j) => j.actualMicroCs }),
    overrunCreditSeconds: t.field({ type: 'CreditSeconds', nullable: true, description: 'How far the actual cost exceeded the hold.', resolve: (j) => j.overrunMicroCs }),
    upstreamIds: t.stringList({
      description: "HeyGen's ids for the job's outputs.",
      resolve: async (j, _a, ctx) => (await ctx.loaders.itemsByJob.load(j.id)).map((i) => i.upstreamId),
    }),
    upstreamItems: t.field({ type: [UpstreamItemRef], description: 'Outputs and their last known status.', resolve: async (j, _a, ctx) => (await ctx.loaders.itemsByJob.load(j.id)).map((i) => ({ ...i, accountId: j.accountId })) }),
    outputs: t.field({
      type: [JobOutputRef],
      description:
        'What HeyGen produced for each item (video, thumbnail and caption URLs, duration, language), read fresh from HeyGen with the account\'s key when asked: URLs expire, so none is stored. Bounded per request (JobOutput).',
      resolve: async (j, _a, ctx) => {
        const items = await ctx.loaders.itemsByJob.load(j.id);
        const read = outputReader(ctx);
        const outputs = await Promise.all(items.map((i) => read(i, j.accountId)));
        return outputs.filter((o): o is ItemOutput => o !== null);
      },
    }),
    request: t.field({
      type: 'JSON',
      description: "The HeyGen v3 body as submitted, less the app's own callback_url / callback_id (kept apart: see callback).",
      resolve: (j, _a, ctx) => (j.request !== undefined ? j.request : ctx.loaders.requestByJob.load(j.id)),
    }),
    failureCode: t.exposeString('failureCode', { nullable: true, description: 'Why it failed, as a code.' }),
    failureMessage: t.exposeString('failureMessage', { nullable: true, description: 'Why it failed.' }),
    createdBy: t.exposeString('createdBy', {
      description:
        "Who submitted it: the subject of the submitting token (`<role>:<name>` for an operator token, `service:<token id>` for a service token, `idp:<sub>` for a company identity), as in the audit log. Shown with the job, so to those who may see the job only.",
    }),
    endUser: t.exposeString('endUser', { nullable: true, description: 'The person the submitting app named (submitJob endUser, or the X-Gateway-End-User header of the /v3 front).' }),
    person: t.string({
      description: 'Whom usage by person counts the job for: `user:<endUser>` when the app named one, else createdBy (docs/governance.md).',
      resolve: (j) => personOf(j),
    }),
    tags: t.field({
      type: [JobTagRef],
      description: 'The key/value tags the job was submitted with, by key.',
      resolve: (j) => Object.entries(j.tags).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([key, value]) => ({ key, value })),
    }),
    createdAt: t.field({ type: 'DateTime', description: 'Admission time.', resolve: (j) => j.createdAt }),
    submittedAt: t.field({ type: 'DateTime', nullable: true, description: 'When HeyGen accepted it.', resolve: (j) => j.submittedAt }),
    settledAt: t.field({ type: 'DateTime', nullable: true, description: 'When money was settled or released.', resolve: (j) => j.settledAt }),
  }),
});

const JobFilter = builder.inputType('JobFilter', {
  description: 'Narrows a job list.',
  fields: (t) => ({
    projectId: t.id({ required: false, description: 'Global id of a project.' }),
    accountId: t.id({ required: false, description: 'Global id of an account.' }),
    status: t.field({ type: [JobStatusEnum], required: false, description: 'Any of these states.' }),
  }),
});

function cursorOf(job: JobView): string {
  return `${job.createdAt.toISOString()}|${job.id}`;
}
function parseCursor(cursor: string): { at: Date; id: string } {
  const [at, id] = cursor.split('|');
  const date = new Date(at ?? '');
  if (!id || !isUuid(id) || !isStorableInstant(date)) throw new ValidationError('after', 'invalid cursor');
  return { at: date, id };
}

builder.queryFields((t) => ({
  job: t.field({
    type: JobRef,
    nullable: true,
    authScopes: { authenticated: true },
    description: 'One job by global id (null when it does not exist or the caller may not see it).',
    args: { id: t.arg.id({ required: true, description: 'Global id.' }) },
    resolve: (_r, args, ctx) => visibleJob(ctx, tryDecodeId(String(args.id), 'Job')),
  }),
  jobs: t.connection({
    type: JobRef,
    authScopes: { authenticated: true },
    description: 'Jobs the caller may see, newest first.',
    args: { filter: t.arg({ type: JobFilter, required: false, description: 'Filter.' }) },
    resolve: (_r, args, ctx) => {
      const f = args.filter;
      // Ids the caller cannot see match nothing, exactly like ids that do not exist.
      const projectId = f?.projectId != null ? tryDecodeId(String(f.projectId), 'OrgUnit') ?? '00000000-0000-0000-0000-000000000000' : null;
      const accountId = f?.accountId != null ? tryDecodeId(String(f.accountId), 'Account') ?? '00000000-0000-0000-0000-000000000000' : null;
      return cursorPage<JobView>(
        ctx,
        args,
        cursorOf,
        async ({ before, after, limit, inverted }): Promise<JobView[]> => {
          const a = after ? parseCursor(after) : null;
          const b = before ? parseCursor(before) : null;
          return ctx.db
            .select(jobListColumns)
            .from(jobsTable)
            .where(
              and(
                visibleJobsFilter(ctx.actor!),
                projectId ? eq(jobsTable.projectId, projectId) : undefined,
                accountId ? eq(jobsTable.accountId, accountId) : undefined,
                f?.status?.length ? inArray(jobsTable.status, f.status) : undefined,
                a ? or(lt(jobsTable.createdAt, a.at), and(eq(jobsTable.createdAt, a.at), lt(jobsTable.id, a.id))) : undefined,
                b ? or(gt(jobsTable.createdAt, b.at), and(eq(jobsTable.createdAt, b.at), gt(jobsTable.id, b.id))) : undefined,
              ),
            )
            .orderBy(...(inverted ? [asc(jobsTable.createdAt), asc(jobsTable.id)] : [desc(jobsTable.createdAt), desc(jobsTable.id)]))
            .limit(limit);
        },
      );
    },
  }),
}));

const SubmitJobPayload = builder.simpleObject('SubmitJobPayload', {
  description: 'The admitted job.',
  fields: (f) => ({
    job: f.field({ type: JobRef, description: 'The job, as it stands after forwarding was attempted.' }),
    replayed: f.boolean({ description: 'True when an earlier request with the same idempotency key created it.' }),
  }),
});

builder.mutationFields((t) => ({
  submitJob: t.fieldWithInput({
    type: SubmitJobPayload,
    errors: { types: SUBMIT_ERRORS },
    authScopes: (_r, { input }) => ({ canSubmitFor: decodeId(String(input.projectId), 'OrgUnit') }),
    description:
      'Admits a HeyGen job under every budget on the project path and the account concurrency limit, reserves its estimated cost, and forwards it (ADMIN; MANAGER and MEMBER of a unit above the project; the SERVICE token of the project). The admission writes its audit event in the same transaction as the job and its hold; a replay of an idempotency key writes nothing.',
    input: {
      projectId: t.input.id({ required: true, description: 'Global id of the project.' }),
      kind: t.input.field({ type: JobKindEnum, required: true, description: 'Product.' }),
      request: t.input.field({ type: 'JSON', required: true, description: 'The HeyGen v3 request body as-is (TEMPLATE_VIDEO: include template_id).' }),
      estimatedSeconds: t.input.string({ required: false, description: 'Output seconds per output the caller expects. It can only raise the hold: lengths come from the request, from media measured before admission, or from the account maxima (docs/pricing.md).' }),
      idempotencyKey: t.input.string({ required: false, description: 'Same key and request → the same job; same key, other request → IdempotencyConflictError.' }),
      queue: t.input.boolean({
        required: false,
        defaultValue: true,
        description:
          "true (default): when the job may not start now (no free concurrency slot of the account, or the free ones are due to jobs already waiting, or its unit is at its maximum), it is admitted QUEUED (its hold taken) and started when a slot is its turn (Job.queue tells where it stands); false: refused with ConcurrencyLimitError instead.",
      }),
      tags: t.input.field({
        type: [JobTagInput],
        required: false,
        description: "Key/value tags (at most JOB_MAX_TAGS, keys from the organization's allowlist): usage and chargeback by tag value, budgets on a tag value (docs/governance.md).",
      }),
      endUser: t.input.string({
        required: false,
        description: 'SERVICE tokens only: the person the app submits for; usage by person then counts the job for `user:<endUser>`.',
      }),
    },
    resolve: async (_r, { input }, ctx) => {
      const projectId = decodeId(String(input.projectId), 'OrgUnit');
      // The same admission and inline forwarding as the /v3 front (src/jobs/submit.ts).
      return submitJob(ctx.services, ctx.actor!, {
        projectId,
        kind: input.kind,
        request: input.request,
        estimatedSeconds: input.estimatedSeconds ?? null,
        idempotencyKey: input.idempotencyKey ?? null,
        queue: input.queue ?? true,
        tags: tagsOf(input.tags),
        endUser: input.endUser ?? null,
      }, (jobId, items) => ctx.loaders.itemsByJob.prime(jobId, items));
    },
  }),
  cancelJob: t.fieldWithInput({
    type: builder.simpleObject('CancelJobPayload', {
      description: 'The cancelled job.',
      fields: (f) => ({ job: f.field({ type: JobRef, description: 'The job.' }) }),
    }),
    errors: { types: MUTATION_ERRORS },
    // A job the caller may not read is not found; otherwise whoever may submit for its project may cancel it.
    authScopes: async (_r, { input }, ctx) => {
      const job = await visibleJob(ctx, decodeId(String(input.jobId), 'Job'));
      if (!job) throw new NotFoundError('Job', String(input.jobId));
      return { canSubmitFor: job.projectId };
    },
    description:
      'Cancels a job that was never sent to HeyGen (a QUEUED job, or one not yet forwarded) and releases its hold (those who may submit for its project). Jobs HeyGen has accepted cannot be cancelled; cancelling a cancelled job changes nothing. Audited.',
    input: { jobId: t.input.id({ required: true, description: 'Global id of the job.' }) },
    resolve: async (_r, { input }, ctx) => {
      const job = await visibleJob(ctx, decodeId(String(input.jobId), 'Job'));
      if (!job) throw new NotFoundError('Job', String(input.jobId));
      const { job: cancelled } = await settleJob(ctx.db, job.id, { type: 'cancelled', by: ctx.actor! }, new Date(), ctx.services.jobDeps.appEvents);
      if (cancelled.status !== 'CANCELLED') {
        throw new ValidationError('jobId', `a ${cancelled.status} job cannot be cancelled`);
      }
      return { job: cancelled };
    },
  }),
}));
