// Calls to HeyGen reuse their connections: the client's undici Agent keeps them alive (one pool per origin), so a
// stream of submissions costs HeyGen (and the gateway) one TLS/TCP handshake, not one per call.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness.js';
import { avatarRequest, createTree, mustMutate, SUBMIT } from './support/fixtures.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ workers: false, sim: { renderMs: 0 } });
});
afterAll(async () => h?.close());

it('twenty submissions in a row open at most two connections to HeyGen', async () => {
  const tree = await createTree(h);
  const before = h.sim.stats();
  for (let i = 0; i < 20; i++) {
    const payload = await mustMutate(h, SUBMIT, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } }, 'submitJob');
    expect(payload.job.upstreamIds).toHaveLength(1);
  }
  const after = h.sim.stats();
  expect(after.requests['POST /v3/videos']! - (before.requests['POST /v3/videos'] ?? 0)).toBe(20);
  expect(after.connections - before.connections).toBeLessThanOrEqual(2);
});
