// SQL round trips per GraphQL submitJob, authentication included, counted at the driver: every `query` a pg client
// sends to this gateway's database (BEGIN and COMMIT included), whatever layer sent it. Once a process has seen the
// caller's token and project, a submission is the admission (one call of `gateway_admit`) and forwarding's bookkeeping
// (one call of `gateway_mark_submitted`); a refusal is the admission alone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness.js';
import { logStatements, type StatementLog } from './support/statement-log.js';
import { createTree, issueServiceToken, setBudget, SUBMIT, avatarRequest, type Tree } from './support/fixtures.js';
import { expectCountersEqualLedger } from './support/invariants.js';

let h: Harness;
let tree: Tree;
let service: { token: string; id: string };
let log: StatementLog;

beforeAll(async () => {
  // Installed before the gateway opens its pool, so that every client (and its query wrapper) goes through it:
  // every statement any pg client of this test process sends to the gateway's database, except the listener's.
  log = logStatements();
  h = await startHarness({ workers: false });
  log.database = new URL(h.database.url).pathname.slice(1);
  tree = await createTree(h, { name: 'RoundTrips' });
  service = await issueServiceToken(h, tree.projectId, 'counted');
});

afterAll(async () => {
  log.restore();
  await h?.close();
});

async function counted(fn: () => Promise<unknown>): Promise<string[]> {
  log.sent.length = 0;
  await fn();
  return [...log.sent];
}

const submit = (token: string) => h.gql(SUBMIT, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } }, token);

describe('SQL round trips per submitJob', () => {
  it('a SERVICE token submitting a job that is admitted and forwarded: at most 3 in all, authentication included', async () => {
    // The first request of a process reads the token record and the project once.
    expect((await submit(service.token)).data.submitJob.__typename).toBe('SubmitJobPayload');
    let result: Awaited<ReturnType<typeof submit>> | undefined;
    const statements = await counted(async () => (result = await submit(service.token)));
    expect(result!.data.submitJob.__typename).toBe('SubmitJobPayload');
    expect(result!.data.submitJob.job.status).toBe('SUBMITTED');
    expect(statements.length, statements.join('\n')).toBeLessThanOrEqual(3);
    // Today: the admission and the bookkeeping; the job's items come back with the latter (no read-back).
    expect(statements, statements.join('\n')).toHaveLength(2);
    expect(statements.filter((s) => /gateway_admit/.test(s))).toHaveLength(1);
    await expectCountersEqualLedger(h.services.db);
  });

  it('a refusal by a HARD budget is the admission call alone', async () => {
    await setBudget(h, { orgUnitId: tree.teamId, accountId: tree.accountId, window: 'MONTHLY', limitCreditSeconds: '1' });
    let result: Awaited<ReturnType<typeof submit>> | undefined;
    const statements = await counted(async () => (result = await submit(service.token)));
    expect(result!.data.submitJob.__typename).toBe('BudgetExceededError');
    expect(result!.data.submitJob.message).toMatch(/^refused: the job would exceed the HARD budget of "Video" \(MONTHLY \d{4}-\d{2}\)/);
    expect(statements, statements.join('\n')).toHaveLength(1);
  });
});
