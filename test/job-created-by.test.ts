// Job.createdBy: the subject of the token that submitted the job, readable with the job and only where the job is.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { startHarness, type Harness } from './support/harness.js';
import { SUBMIT, avatarRequest, createTree, issueServiceToken, mustMutate, type Tree } from './support/fixtures.js';

let h: Harness;
let tree: Tree;
const rawId = (globalId: string) => decodeGlobalID(globalId).id;

beforeAll(async () => {
  h = await startHarness();
  tree = await createTree(h);
});
afterAll(async () => h?.close());

describe('Job.createdBy', () => {
  it('names the submitting token; a caller who may not see the job learns nothing of it', async () => {
    const service = await issueServiceToken(h, tree.projectId, 'renderer');
    const member = await h.services.tokens.issueOperatorToken({ name: 'mia', role: 'MEMBER', unitId: rawId(tree.teamId) });
    const outsider = await h.services.tokens.issueOperatorToken({ name: 'otto', role: 'MEMBER', unitId: rawId(tree.otherTeamId) });
    const byService = await mustMutate(h, SUBMIT, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } }, 'submitJob', service.token);
    const byMember = await mustMutate(h, SUBMIT, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } }, 'submitJob', member);
    const query = `query($id: ID!) { job(id: $id) { createdBy } }`;

    const seen = await h.gql(query, { id: byService.job.id }, member);
    expect(seen.errors).toBeUndefined();
    expect(seen.data.job.createdBy).toBe(`service:${rawId(service.id)}`);
    expect((await h.gql(query, { id: byMember.job.id })).data.job.createdBy).toBe('member:mia');

    const hidden = await h.gql(query, { id: byMember.job.id }, outsider);
    expect(hidden.data?.job ?? null).toBeNull();
    expect(JSON.stringify(hidden)).not.toContain('mia');
    const list = await h.gql(`{ jobs(first: 50) { edges { node { createdBy } } } }`, {}, outsider);
    expect(list.errors).toBeUndefined();
    expect(JSON.stringify(list.data)).not.toMatch(/mia|service:/);
  });
});
