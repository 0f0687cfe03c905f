// A caller that hangs up does not end its operation early: the submission it started runs to its end (its hold, its
// forwarding), and it keeps its place in the bound on requests in flight (HTTP_MAX_IN_FLIGHT) until its answer is
// ready, so that hanging up cannot be used to run more operations at once than the bound allows.
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness.js';
import { avatarRequest, createTree, SUBMIT, type Tree } from './support/fixtures.js';
import { expectCountersEqualLedger } from './support/invariants.js';

/** Each create takes this long at the simulator: the submission is still running when its caller hangs up. */
const UPSTREAM_LATENCY_MS = 1500;

let h: Harness;
let tree: Tree;

beforeAll(async () => {
  h = await startHarness({ workers: false, env: { HTTP_MAX_IN_FLIGHT: '1' }, sim: { latencyMs: UPSTREAM_LATENCY_MS, autoComplete: false } });
  tree = await createTree(h);
}, 60_000);

afterAll(async () => {
  await h?.close();
});

function post(body: string): { request: http.ClientRequest; answer: Promise<{ status: number; body: any }> } {
  const request = http.request(new URL('/graphql', h.url), {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${h.adminToken}` },
  });
  const answer = new Promise<{ status: number; body: any }>((resolve, reject) => {
    request.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString()) }));
    });
    request.on('error', reject);
  });
  request.end(body);
  return { request, answer };
}

it('a submission whose caller hung up runs to its end and holds its place in flight until then', async () => {
  const idempotencyKey = randomUUID();
  const submission = post(JSON.stringify({ query: SUBMIT, variables: { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest(), idempotencyKey } } }));
  submission.answer.catch(() => undefined); // hung up below: no answer comes
  await new Promise((r) => setTimeout(r, 300)); // admitted, waiting for HeyGen's answer
  submission.request.destroy();
  await new Promise((r) => setTimeout(r, 200));

  // The bound is 1 and the submission is still running: another request is shed.
  const meanwhile = await post(JSON.stringify({ query: '{ viewer { subject } }' })).answer;
  expect(meanwhile.status).toBe(503);
  expect(meanwhile.body.errors[0].extensions.code).toBe('OVERLOADED');

  // It ends as it would have with its caller there: forwarded, its hold placed once.
  const deadline = Date.now() + 10_000;
  let job: any;
  for (;;) {
    const read = await h.gql(`{ jobs(first: 5) { edges { node { status upstreamIds } } } }`);
    const jobs = read.data?.jobs?.edges?.map((e: any) => e.node) ?? [];
    expect(jobs.length).toBeLessThanOrEqual(1); // the only job of this test's database, submitted once
    job = jobs[0];
    if (job?.status === 'SUBMITTED' || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(job?.status).toBe('SUBMITTED');
  const after = await post(JSON.stringify({ query: '{ viewer { subject } }' })).answer;
  expect(after.status).toBe(200);
  await expectCountersEqualLedger(h.services.db);
});
