// Unit policies (docs/governance.md): every rule refuses a violating job with PolicyViolationError and writes
// nothing; a unit cannot loosen a rule in effect above it; rate limits per unit and per service token, with a
// fixed clock (the 3-process exactness test is test/rate-limits-processes.test.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { startHarness, type Harness } from './support/harness.js';
import { createTree, issueServiceToken, mustMutate, SUBMIT, avatarRequest, type Tree } from './support/fixtures.js';
import { expectCountersEqualLedger } from './support/invariants.js';
import { queryRows } from '../src/db/client.js';
import { admitJob } from '../src/jobs/admission.js';
import { PolicyViolationError, RateLimitedError } from '../src/errors.js';
import type { Actor } from '../src/auth/actor.js';

let h: Harness;
const raw = (globalId: string) => decodeGlobalID(globalId).id;
const admin: Actor = { subject: 'admin:test', role: 'ADMIN', unitId: null, unitPath: [], tokenId: null };

beforeAll(async () => {
  h = await startHarness({ sim: { autoComplete: false } });
});
afterAll(async () => h?.close());

const SET_POLICY = `mutation($input: SetUnitPolicyInput!) { setUnitPolicy(input: $input) {
  __typename
  ... on SetUnitPolicyPayload { policy { maxResolution allowedKinds } orgUnit { effectivePolicy { maxResolution allowedKinds rules { rule setBy { id } } } } }
  ... on PolicyViolationError { message code rule orgUnitId orgUnitName limit actual }
  ... on Error { message code }
} }`;

async function setPolicy(input: Record<string, unknown>, token?: string) {
  const res = await h.gql(SET_POLICY, { input }, token);
  expect(res.errors).toBeUndefined();
  return res.data.setUnitPolicy;
}

const SUBMIT_POLICY = SUBMIT.replace(
  '... on Error { message code }',
  '... on PolicyViolationError { rule orgUnitId orgUnitName limit actual }\n    ... on RateLimitedError { rule orgUnitId serviceTokenId limit retryAfterSeconds }\n    ... on Error { message code }',
);

async function submit(projectId: string, kind: string, request: Record<string, unknown>, token?: string) {
  const res = await h.gql(SUBMIT_POLICY, { input: { projectId, kind, request } }, token);
  expect(res.errors).toBeUndefined();
  return res.data.submitJob;
}

/** What an admission writes, for this project: jobs, ledger entries, job.submit audit events, rate counters. */
async function written(projectId: string) {
  const id = raw(projectId);
  const [row] = await queryRows<{ jobs: number; entries: number; audits: number; buckets: number }>(
    h.services.db,
    sql`select (select count(*)::int from jobs where project_id = ${id}) as jobs,
               (select count(*)::int from ledger_entries where org_unit_id = ${id}) as entries,
               (select count(*)::int from audit_events a join jobs j on j.id::text = a.entity_id where a.action = 'job.submit' and j.project_id = ${id}) as audits,
               (select count(*)::int from rate_buckets) as buckets`,
  );
  return row!;
}

describe('unit policies', () => {
  it('each rule refuses the violating body with PolicyViolationError naming the rule and the unit, and writes nothing', async () => {
    const tree = await createTree(h, { name: 'Rules' });
    const translation = (language: string) => ({ video: { type: 'asset_id', asset_id: 'src1' }, output_languages: [language] });
    const cases: { policy: Record<string, unknown>; kind: string; bad: Record<string, unknown>; good: Record<string, unknown>; goodKind?: string; rule: string; limit: string; actual: string }[] = [
      { policy: { allowedKinds: ['AVATAR_VIDEO'] }, kind: 'TEMPLATE_VIDEO', bad: { template_id: 't1', variables: {} }, good: avatarRequest(), goodKind: 'AVATAR_VIDEO', rule: 'ALLOWED_KINDS', limit: 'AVATAR_VIDEO', actual: 'TEMPLATE_VIDEO' },
      { policy: { allowedProducts: ['AVATAR_IV'] }, kind: 'AVATAR_VIDEO', bad: { ...avatarRequest(), engine: 'avatar_v' }, good: avatarRequest(), rule: 'ALLOWED_PRODUCTS', limit: 'AVATAR_IV', actual: 'AVATAR_V' },
      { policy: { maxResolution: 'R1080P' }, kind: 'AVATAR_VIDEO', bad: { ...avatarRequest(), resolution: '4k' }, good: { ...avatarRequest(), resolution: '720p' }, rule: 'MAX_RESOLUTION', limit: '1080p', actual: '4k' },
      // 20 words: 8 s at 150 wpm (a 52.8 cs hold); 5 words: 2 s.
      { policy: { maxLengthSeconds: 5 }, kind: 'AVATAR_VIDEO', bad: avatarRequest(), good: avatarRequest('one two three four five'), rule: 'MAX_LENGTH_SECONDS', limit: '5 s', actual: '8 s' },
      { policy: { maxCostCreditSeconds: '50' }, kind: 'AVATAR_VIDEO', bad: avatarRequest(), good: avatarRequest('one two three four five'), rule: 'MAX_COST_CREDIT_SECONDS', limit: '50 cs', actual: '52.8 cs' },
      { policy: { allowedLanguages: ['Spanish', 'German'] }, kind: 'VIDEO_TRANSLATION', bad: translation('French'), good: translation('spanish'), rule: 'ALLOWED_LANGUAGES', limit: 'Spanish, German', actual: 'French' },
    ];
    for (const c of cases) {
      const set = await setPolicy({ orgUnitId: tree.deptId, ...c.policy });
      expect(set.__typename, JSON.stringify(set)).toBe('SetUnitPolicyPayload');
      const before = await written(tree.projectId);
      const refused = await submit(tree.projectId, c.kind, c.bad);
      expect(refused, c.rule).toMatchObject({ __typename: 'PolicyViolationError', code: 'POLICY_VIOLATION', rule: c.rule, orgUnitId: tree.deptId, orgUnitName: 'Marketing Rules', limit: c.limit, actual: c.actual });
      expect(refused.message).toContain('Marketing Rules');
      expect(await written(tree.projectId)).toEqual(before);
      const admitted = await submit(tree.projectId, c.goodKind ?? c.kind, c.good);
      expect(admitted.__typename, JSON.stringify(admitted)).toBe('SubmitJobPayload');
    }
    await expectCountersEqualLedger(h.services.db);
  });

  it('a child cannot loosen a parent rule: the looser value is refused, a tighter one narrows the effective policy', async () => {
    const tree = await createTree(h, { name: 'Nested' });
    expect((await setPolicy({ orgUnitId: tree.deptId, maxResolution: 'R1080P', allowedKinds: ['AVATAR_VIDEO', 'VIDEO_TRANSLATION'] })).__typename).toBe('SetUnitPolicyPayload');

    const looser = await setPolicy({ orgUnitId: tree.teamId, maxResolution: 'R4K' });
    expect(looser).toMatchObject({ __typename: 'PolicyViolationError', rule: 'MAX_RESOLUTION', orgUnitId: tree.deptId, limit: '1080p', actual: '4k' });
    const wider = await setPolicy({ orgUnitId: tree.teamId, allowedKinds: ['AVATAR_VIDEO', 'TTS'] });
    expect(wider).toMatchObject({ __typename: 'PolicyViolationError', rule: 'ALLOWED_KINDS', orgUnitId: tree.deptId, actual: 'TTS' });
    expect(await h.gql(`query($id: ID!) { orgUnit(id: $id) { policy { maxResolution } } }`, { id: tree.teamId })).toMatchObject({ data: { orgUnit: { policy: null } } });

    const tighter = await setPolicy({ orgUnitId: tree.teamId, maxResolution: 'R720P', allowedKinds: ['AVATAR_VIDEO'] });
    expect(tighter.__typename).toBe('SetUnitPolicyPayload');
    const effective = await h.gql(`query($id: ID!) { orgUnit(id: $id) { policy { maxResolution } effectivePolicy { maxResolution allowedKinds rules { rule setBy { id } } } } }`, { id: tree.projectId });
    expect(effective.data.orgUnit.policy).toBeNull();
    expect(effective.data.orgUnit.effectivePolicy).toEqual({
      maxResolution: 'R720P',
      allowedKinds: ['AVATAR_VIDEO'],
      rules: [
        { rule: 'ALLOWED_KINDS', setBy: [{ id: tree.deptId }, { id: tree.teamId }] },
        { rule: 'MAX_RESOLUTION', setBy: [{ id: tree.teamId }] },
      ],
    });
    // The tighter child rule binds its subtree (and names the child); the sibling team is bound by the department only.
    expect(await submit(tree.projectId, 'AVATAR_VIDEO', { ...avatarRequest(), resolution: '1080p' })).toMatchObject({ rule: 'MAX_RESOLUTION', orgUnitId: tree.teamId });
    expect((await submit(tree.otherProjectId, 'AVATAR_VIDEO', { ...avatarRequest(), resolution: '1080p' })).__typename).toBe('SubmitJobPayload');

    // Tightening the parent later: the child's (now looser) rule has no effect; the parent's refuses.
    expect((await setPolicy({ orgUnitId: tree.deptId, maxResolution: 'R720P', allowedKinds: ['VIDEO_TRANSLATION'] })).__typename).toBe('SetUnitPolicyPayload');
    expect(await submit(tree.projectId, 'AVATAR_VIDEO', avatarRequest())).toMatchObject({ rule: 'ALLOWED_KINDS', orgUnitId: tree.deptId });
  });

  it('a MANAGER sets policies below its unit (never on it, nor looser than above), a MEMBER none', async () => {
    const tree = await createTree(h, { name: 'Roles' });
    const manager = await h.services.tokens.issueOperatorToken({ name: 'm', role: 'MANAGER', unitId: raw(tree.teamId) });
    const member = await h.services.tokens.issueOperatorToken({ name: 'e', role: 'MEMBER', unitId: raw(tree.teamId) });
    expect((await setPolicy({ orgUnitId: tree.teamId, maxLengthSeconds: 600 })).__typename).toBe('SetUnitPolicyPayload');
    expect((await setPolicy({ orgUnitId: tree.teamId, maxLengthSeconds: 6000 }, manager)).__typename).toBe('ForbiddenError');
    expect((await h.gql(`mutation($input: ClearUnitPolicyInput!) { clearUnitPolicy(input: $input) { __typename } }`, { input: { orgUnitId: tree.teamId } }, manager)).data.clearUnitPolicy.__typename).toBe('ForbiddenError');
    expect(await setPolicy({ orgUnitId: tree.projectId, maxLengthSeconds: 6000 }, manager)).toMatchObject({ __typename: 'PolicyViolationError', rule: 'MAX_LENGTH_SECONDS', orgUnitId: tree.teamId });
    expect((await setPolicy({ orgUnitId: tree.projectId, maxLengthSeconds: 60 }, manager)).__typename).toBe('SetUnitPolicyPayload');
    expect((await setPolicy({ orgUnitId: tree.projectId, maxLengthSeconds: 30 }, member)).__typename).toBe('ForbiddenError');
    expect((await setPolicy({ orgUnitId: tree.otherProjectId, maxLengthSeconds: 30 }, manager)).__typename).toBe('NotFoundError');
    const [audit] = await queryRows<{ n: number }>(h.services.db, sql`select count(*)::int as n from audit_events where action = 'unitPolicy.set' and entity_id = ${raw(tree.projectId)}`);
    expect(Number(audit!.n)).toBe(1);
  });
});

describe('rate limits', () => {
  const admitAt = (tree: Tree, at: Date, actor: Actor = admin) =>
    admitJob(h.services.db, actor, { projectId: raw(tree.projectId), kind: 'AVATAR_VIDEO', request: avatarRequest(), estimatedSeconds: null, idempotencyKey: null }, h.services.admission, at);

  it('jobs per minute over a sliding window of the subtree, with retryAfterSeconds from the window; refusals count nothing', async () => {
    const tree = await createTree(h, { name: 'Rate' });
    await mustMutate(h, SET_POLICY, { input: { orgUnitId: tree.teamId, jobsPerMinute: 3 } }, 'setUnitPolicy');
    const t0 = Date.parse('2026-03-01T10:00:10.500Z');
    await admitAt(tree, new Date(t0));
    await admitAt(tree, new Date(t0 + 20_000));
    await admitAt(tree, new Date(t0 + 20_000));
    const before = await written(tree.projectId);
    const refused = await admitAt(tree, new Date(t0 + 30_000)).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RateLimitedError);
    // The oldest job (bucket 10:00:10) leaves the window at 10:01:10: 29.5 s after 10:00:40.5 → 30 s.
    expect(refused).toMatchObject({ rule: 'JOBS_PER_MINUTE', orgUnitId: raw(tree.teamId), retryAfterSeconds: 30 });
    expect(await written(tree.projectId)).toEqual(before);
    await expect(admitAt(tree, new Date(t0 + 59_000))).rejects.toBeInstanceOf(RateLimitedError);
    await admitAt(tree, new Date(t0 + 60_000)); // the first job left the window
    const both = await admitAt(tree, new Date(t0 + 61_000)).catch((e: unknown) => e);
    expect(both).toMatchObject({ retryAfterSeconds: 19 }); // the two jobs of 10:00:30 leave at 10:01:30
    // The sibling team is not bound by this team's limit.
    const sibling = await admitJob(h.services.db, admin, { projectId: raw(tree.otherProjectId), kind: 'AVATAR_VIDEO', request: avatarRequest(), estimatedSeconds: null, idempotencyKey: null }, h.services.admission, new Date(t0 + 61_000));
    expect(sibling.replayed).toBe(false);
    await expectCountersEqualLedger(h.services.db);
  });

  it('concurrent admissions, sent together by group commit, count exactly', async () => {
    const tree = await createTree(h, { name: 'Batched' });
    await mustMutate(h, SET_POLICY, { input: { orgUnitId: tree.deptId, jobsPerMinute: 7 } }, 'setUnitPolicy');
    const at = new Date('2026-03-02T10:00:00Z');
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        admitAt(tree, new Date(at.getTime() + i)).then(
          () => 'admitted',
          (e: unknown) => (e instanceof RateLimitedError ? 'limited' : String(e)),
        ),
      ),
    );
    expect(outcomes.filter((o) => o === 'admitted')).toHaveLength(7);
    expect(outcomes.filter((o) => o === 'limited')).toHaveLength(13);
    expect((await written(tree.projectId)).jobs).toBe(7);
  });

  it('credit-seconds per hour, per unit and per service token; a job larger than the hourly limit is a policy violation', async () => {
    const tree = await createTree(h, { name: 'Hourly' });
    // 52.8 cs a job: 2 fit in 110 cs.
    await mustMutate(h, SET_POLICY, { input: { orgUnitId: tree.deptId, creditSecondsPerHour: '110' } }, 'setUnitPolicy');
    const t0 = Date.parse('2026-03-01T10:00:00Z');
    await admitAt(tree, new Date(t0));
    await admitAt(tree, new Date(t0 + 600_000));
    const refused = await admitAt(tree, new Date(t0 + 1_200_000)).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'RATE_LIMITED', rule: 'CREDIT_SECONDS_PER_HOUR', orgUnitId: raw(tree.deptId), retryAfterSeconds: 2400 });
    await admitAt(tree, new Date(t0 + 3_600_000));

    await mustMutate(h, SET_POLICY, { input: { orgUnitId: tree.deptId, creditSecondsPerHour: '50' } }, 'setUnitPolicy');
    const tooBig = await admitAt(tree, new Date(t0 + 9_000_000)).catch((e: unknown) => e);
    expect(tooBig).toBeInstanceOf(PolicyViolationError);
    expect(tooBig).toMatchObject({ rule: 'CREDIT_SECONDS_PER_HOUR', orgUnitId: raw(tree.deptId), limit: '50 cs', actual: '52.8 cs' });
    await mustMutate(h, `mutation($input: ClearUnitPolicyInput!) { clearUnitPolicy(input: $input) { __typename } }`, { input: { orgUnitId: tree.deptId } }, 'clearUnitPolicy');

    // A service token's own limit: 2 jobs a minute for the app, whatever its project allows.
    const app = await issueServiceToken(h, tree.projectId);
    const set = await mustMutate(
      h,
      `mutation($input: SetServiceTokenRateLimitInput!) { setServiceTokenRateLimit(input: $input) { __typename ... on SetServiceTokenRateLimitPayload { serviceToken { rateLimit { jobsPerMinute } } } } }`,
      { input: { serviceTokenId: app.id, jobsPerMinute: 2 } },
      'setServiceTokenRateLimit',
    );
    expect(set.serviceToken.rateLimit).toEqual({ jobsPerMinute: 2 });
    expect((await submit(tree.projectId, 'AVATAR_VIDEO', avatarRequest(), app.token)).__typename).toBe('SubmitJobPayload');
    expect((await submit(tree.projectId, 'AVATAR_VIDEO', avatarRequest(), app.token)).__typename).toBe('SubmitJobPayload');
    const third = await submit(tree.projectId, 'AVATAR_VIDEO', avatarRequest(), app.token);
    expect(third).toMatchObject({ __typename: 'RateLimitedError', code: 'RATE_LIMITED', rule: 'JOBS_PER_MINUTE', orgUnitId: tree.projectId, serviceTokenId: app.id });
    expect(third.message).toContain('this service token');
    expect(third.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(third.retryAfterSeconds).toBeLessThanOrEqual(60);
    // Other callers of the project are not bound by the token's limit.
    expect((await submit(tree.projectId, 'AVATAR_VIDEO', avatarRequest())).__typename).toBe('SubmitJobPayload');
    await expectCountersEqualLedger(h.services.db);
  });
});

describe('the /v3 front', () => {
  it('answers a policy refusal with 403 policy_violation and a rate limit with 429 and Retry-After, writing nothing', async () => {
    const tree = await createTree(h, { name: 'Front' });
    const app = await issueServiceToken(h, tree.projectId);
    await mustMutate(h, SET_POLICY, { input: { orgUnitId: tree.teamId, maxResolution: 'R720P', jobsPerMinute: 1 } }, 'setUnitPolicy');
    const create = (body: Record<string, unknown>) =>
      fetch(`${h.url}/v3/videos`, { method: 'POST', headers: { 'x-api-key': app.token, 'content-type': 'application/json' }, body: JSON.stringify(body) });

    const refused = await create({ ...avatarRequest(), resolution: '1080p' });
    expect(refused.status).toBe(403);
    const envelope = ((await refused.json()) as { error: Record<string, unknown> }).error;
    expect(envelope).toMatchObject({ code: 'policy_violation', param: 'rule=MAX_RESOLUTION unit="Video" limit="720p" actual="1080p"' });
    expect(await written(tree.projectId)).toMatchObject({ jobs: 0, entries: 0, audits: 0 });

    expect((await create({ ...avatarRequest(), resolution: '720p' })).status).toBe(200);
    const limited = await create({ ...avatarRequest(), resolution: '720p' });
    expect(limited.status).toBe(429);
    expect(((await limited.json()) as { error: { code: string } }).error.code).toBe('rate_limit_exceeded');
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(await written(tree.projectId)).toMatchObject({ jobs: 1, entries: 1, audits: 1 });

    // Both refusals are counted, by the unit that refused.
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    for (const reason of ['policy', 'rate_limit']) {
      expect(metrics).toContain(`gateway_admission_refusals_total{project="${raw(tree.projectId)}",unit="${raw(tree.teamId)}",reason="${reason}"} 1`);
    }
  });
});
