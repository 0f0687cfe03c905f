// Jobs: submit (admission + forwarding), cancel, and read.
import { and, desc, asc, eq, getTableColumns, inArray, or, lt, gt } from 'drizzle-orm';
import { builder } from './builder.js';
import { MUTATION_ERRORS, SUBMIT_ERRORS } from './errors.js';
import { decodeId, tryDecodeId } from './ids.js';
import { OrgUnitRef } from './org.js';
import { AccountRef } from './accounts.js';
import { visibleAccount, visibleJob, visibleJobsFilter } from './visibility.js';
import { JOB_KINDS, JOB_STATUSES, jobsTable } from '../db/schema.js';
import { admitJob, type JobRow } from '../jobs/admission.js';
import { forwardJob } from '../jobs/follow.js';
import { settleJob } from '../jobs/settlement.js';
import { driverReason, isDatabaseUnavailable } from '../db/client.js';
import { NotFoundError, ValidationError } from '../errors.js';
import { isUuid } from '../org/units.js';
import { isStorableInstant } from '../validation.js';
import { cursorPage } from './pagination.js';


const JobKindEnum = builder.enumType('JobKind', { description: 'The HeyGen product a job uses.', values: JOB_KINDS });
const JobStatusEnum = builder.enumType('JobStatus', {
  description:
    'RESERVED → SUBMITTED → PROCESSING → SUCCEEDED | FAILED | CANCELLED; SUBMIT_UNKNOWN while a submission outcome is unclear (retried with the same Idempotency-Key); REJECTED at admission; EXPIRED when the hold outlived HOLD_TTL_HOURS (or the submission stayed unresolved past HeyGen\'s 24 h idempotency window): completed outputs debited, the rest released, and a drift note written when HeyGen may still bill it.',
  values: JOB_STATUSES,
});

const UpstreamItemRef = builder.objectRef<{ upstreamId: string; kind: string; language: string | null; status: string; durationSeconds: string | null; output: unknown }>('UpstreamItem').implement({
  description: 'One billable output HeyGen created for the job (a translation has one per language).',
  fields: (t) => ({
    upstreamId: t.exposeString('upstreamId', {
      description: "HeyGen's id (video_id, video_translation_id, session_id, lipsync_id, proofread_id, avatar look or group id, TTS request_id), or `{batch_id}#{item_index}` for a batch item.",
    }),
    kind: t.exposeString('kind', {
      description: 'video, translation, agent_session, lipsync, speech, proofread, avatar_look, avatar_group, batch_video, batch_translation or batch_lipsync.',
    }),
    language: t.exposeString('language', { nullable: true, description: 'Output language of a translation.' }),
    status: t.exposeString('status', { description: 'Last status read from HeyGen.' }),
    durationSeconds: t.exposeString('durationSeconds', { nullable: true, description: 'Output seconds HeyGen reported.' }),
    output: t.field({
      type: 'JSON',
      nullable: true,
      description: "The create answer's data where it holds more than ids, as HeyGen sent it (text to speech: audio_url, duration, request_id, word_timestamps; avatar creation: avatar_group, avatar_item); null for the others.",
      resolve: (i) => i.output ?? null,
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
    upstreamItems: t.field({ type: [UpstreamItemRef], description: 'Outputs and their last known status.', resolve: (j, _a, ctx) => ctx.loaders.itemsByJob.load(j.id) }),
    request: t.field({
      type: 'JSON',
      description: 'The HeyGen v3 body as submitted.',
      resolve: (j, _a, ctx) => (j.request !== undefined ? j.request : ctx.loaders.requestByJob.load(j.id)),
    }),
    failureCode: t.exposeString('failureCode', { nullable: true, description: 'Why it failed, as a code.' }),
    failureMessage: t.exposeString('failureMessage', { nullable: true, description: 'Why it failed.' }),
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
    },
    resolve: async (_r, { input }, ctx) => {
      const projectId = decodeId(String(input.projectId), 'OrgUnit');
      const { job, replayed } = await admitJob(
        ctx.db,
        ctx.actor!,
        {
          projectId,
          kind: input.kind,
          request: input.request,
          estimatedSeconds: input.estimatedSeconds ?? null,
          idempotencyKey: input.idempotencyKey ?? null,
        },
        ctx.services.admission,
      );
      if (replayed || job.status !== 'RESERVED') return { job, replayed };
      // Forwarding happens after the admission committed; if this process dies here, the worker takes over.
      const forwarded = await forwardJob(ctx.services.jobDeps, job.id).catch((error: unknown) => {
        // The job is admitted (committed) either way; a database that went away meanwhile is not a bug.
        if (isDatabaseUnavailable(error)) ctx.services.logger.warn({ jobId: job.id, reason: driverReason(error) }, 'inline forwarding failed: the database is unavailable; the worker will retry');
        else ctx.services.logger.error({ jobId: job.id, err: error }, 'inline forwarding failed; the worker will retry');
        return null;
      });
      return { job: forwarded ?? job, replayed: false };
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
      'Cancels a job that was never sent to HeyGen and releases its hold (those who may submit for its project). Jobs HeyGen has accepted cannot be cancelled; cancelling a cancelled job changes nothing. Audited.',
    input: { jobId: t.input.id({ required: true, description: 'Global id of the job.' }) },
    resolve: async (_r, { input }, ctx) => {
      const job = await visibleJob(ctx, decodeId(String(input.jobId), 'Job'));
      if (!job) throw new NotFoundError('Job', String(input.jobId));
      const { job: cancelled } = await settleJob(ctx.db, job.id, { type: 'cancelled', by: ctx.actor! });
      if (cancelled.status !== 'CANCELLED') {
        throw new ValidationError('jobId', `a ${cancelled.status} job cannot be cancelled`);
      }
      return { job: cancelled };
    },
  }),
}));
