// What the caps could not hold, for ADMIN and FINANCE: projects flagged for overruns, and drift notes.
import { encodeGlobalID } from '@pothos/plugin-relay';
import { builder } from './builder.js';
import { decodeId } from './ids.js';
import { AccountRef } from './accounts.js';
import { OrgUnitRef } from './org.js';
import { JobRef } from './jobs.js';
import { requireVisibleAccount, visibleAccount, visibleJob, visibleUnit } from './visibility.js';
import { driftNotes, overrunFlags, type DriftNoteRow, type OverrunFlag } from '../jobs/overruns.js';

const OverrunFlagRef = builder.objectRef<OverrunFlag>('OverrunFlag').implement({
  description:
    "A project whose jobs were billed beyond their holds by more than OVERRUN_FLAG_THRESHOLD_CS in a period. Overruns are debited to the project's budgets at settlement; a flag says the estimates of this project's requests do not bound what HeyGen bills.",
  fields: (t) => ({
    project: t.field({ type: OrgUnitRef, nullable: true, description: 'The project.', resolve: (f, _a, ctx) => visibleUnit(ctx, f.projectId) }),
    account: t.field({ type: AccountRef, nullable: true, description: 'The account billed.', resolve: (f, _a, ctx) => visibleAccount(ctx, f.accountId) }),
    period: t.field({ type: 'Period', description: 'The period the overruns were settled in.', resolve: (f) => f.period }),
    overrunCreditSeconds: t.field({ type: 'CreditSeconds', description: 'Sum of the overruns.', resolve: (f) => f.overrunMicroCs }),
    largestOverrunCreditSeconds: t.field({ type: 'CreditSeconds', description: 'The largest single overrun.', resolve: (f) => f.largestOverrunMicroCs }),
    jobsWithOverrun: t.exposeInt('jobsWithOverrun', { description: 'How many jobs overran.' }),
  }),
});

const DriftNoteRef = builder.objectRef<DriftNoteRow>('DriftNote').implement({
  description:
    'A hold the gateway released on a job HeyGen may still bill (the hold expired, or the submission stayed unresolved past HeyGen\'s idempotency window). The wallet sync shows the real difference; the note says where it may come from.',
  fields: (t) => ({
    id: t.id({ description: 'Global id of the note.', resolve: (n) => encodeGlobalID('DriftNote', n.id.toString()) }),
    job: t.field({ type: JobRef, nullable: true, description: 'The job.', resolve: (n, _a, ctx) => visibleJob(ctx, n.jobId) }),
    project: t.field({ type: OrgUnitRef, nullable: true, description: 'Its project.', resolve: (n, _a, ctx) => visibleUnit(ctx, n.projectId) }),
    period: t.field({ type: 'Period', description: 'The period the hold was released in.', resolve: (n) => n.period }),
    reason: t.exposeString('reason', { description: 'hold_expired or submit_unresolved.' }),
    releasedCreditSeconds: t.field({ type: 'CreditSeconds', description: 'The hold released: what the job was expected to cost at most.', resolve: (n) => n.releasedMicroCs }),
    createdAt: t.field({ type: 'DateTime', description: 'When the hold was released.', resolve: (n) => n.createdAt }),
  }),
});

builder.queryFields((t) => ({
  overrunFlags: t.field({
    type: [OverrunFlagRef],
    authScopes: { finance: true },
    description:
      'Projects whose overruns settled in a period reach OVERRUN_FLAG_THRESHOLD_CS (ADMIN, FINANCE), largest first. Every overrun is already on the ledger and in the chargeback; the flag is for fixing the estimates.',
    args: {
      period: t.arg({ type: 'Period', required: true, description: 'The period (YYYY-MM) the jobs were settled in.' }),
      accountId: t.arg.id({ required: false, description: 'Global id of one account (default: all).' }),
    },
    resolve: async (_r, args, ctx) => {
      const accountId = args.accountId ? (await requireVisibleAccount(ctx, decodeId(String(args.accountId), 'Account'))).id : null;
      return overrunFlags(ctx.db, { accountId, period: args.period, thresholdMicroCs: ctx.services.config.overrunFlagThresholdMicroCs });
    },
  }),
  driftNotes: t.field({
    type: [DriftNoteRef],
    authScopes: { finance: true },
    description: "Holds released in a period on jobs HeyGen may still bill (ADMIN, FINANCE), oldest first.",
    args: {
      accountId: t.arg.id({ required: true, description: 'Global id of the account.' }),
      period: t.arg({ type: 'Period', required: true, description: 'The period (YYYY-MM) the holds were released in.' }),
    },
    resolve: async (_r, args, ctx) => driftNotes(ctx.db, (await requireVisibleAccount(ctx, decodeId(String(args.accountId), 'Account'))).id, args.period),
  }),
}));
