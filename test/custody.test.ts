// API-key custody: key rotation per account, and master-key rotation of every secret at rest.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { eq } from 'drizzle-orm';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { startHarness, waitFor, type Harness } from './support/harness.js';
import { dist } from './support/build.js';
import { createTree, issueServiceToken, JOB_QUERY, SUBMIT, avatarRequest, type Tree } from './support/fixtures.js';
import { accountsTable, serviceTokensTable, signingKeysTable } from '../src/db/schema.js';
import { callbackSecretContext } from '../src/auth/callback-secrets.js';
import { createSecretBox, generateMasterKey } from '../src/secrets/secret-box.js';
import { apiKeyContext } from '../src/accounts/accounts.js';

const OLD_KEY = 'sk_test_primary_key_0001';
const NEW_KEY = 'sk_test_rotated_key_0002';

let h: Harness;
let tree: Tree;
const masterA = generateMasterKey();

beforeAll(async () => {
  h = await startHarness({
    env: { GATEWAY_MASTER_KEY: masterA },
    simAccounts: [{ apiKey: OLD_KEY, concurrencyLimit: 50 }, { apiKey: NEW_KEY, concurrencyLimit: 50 }],
    sim: { fixedDurationSeconds: 5 },
  });
  tree = await createTree(h, { apiKey: OLD_KEY, webhookSecret: 'whsec_custody_secret' });
});
afterAll(async () => h?.close());

async function runJob(harness: Harness, projectId: string) {
  const res = await harness.gql(SUBMIT, { input: { projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } });
  expect(res.data.submitJob.__typename).toBe('SubmitJobPayload');
  return waitFor(async () => {
    const job = (await harness.gql(JOB_QUERY, { id: res.data.submitJob.job.id })).data.job;
    return job.status === 'SUCCEEDED' ? job : null;
  });
}

describe('rotateAccountApiKey', () => {
  it('replaces the key: only the hint changes in the API, and the next job uses the new key', async () => {
    const res = await h.gql(
      `mutation($input: RotateAccountApiKeyInput!) { rotateAccountApiKey(input: $input) { __typename ... on RotateAccountApiKeyPayload { account { apiKeyHint } } ... on Error { code } } }`,
      { input: { accountId: tree.accountId, apiKey: NEW_KEY } },
    );
    expect(res.data.rotateAccountApiKey).toEqual({ __typename: 'RotateAccountApiKeyPayload', account: { apiKeyHint: '…0002' } });
    const before = h.sim.stats().jobsCreated[NEW_KEY] ?? 0;
    await runJob(h, tree.projectId);
    expect((h.sim.stats().jobsCreated[NEW_KEY] ?? 0) - before).toBe(1);
    const [row] = await h.services.db.select().from(accountsTable);
    expect(row!.apiKeyCiphertext.startsWith('v1.')).toBe(true);
    expect(h.services.box.decrypt(row!.apiKeyCiphertext, apiKeyContext(row!.id))).toBe(NEW_KEY);
  });

  it('is refused for non-admins', async () => {
    const finance = await h.services.tokens.issueOperatorToken({ name: 'f', role: 'FINANCE' });
    const res = await h.gql(
      `mutation($input: RotateAccountApiKeyInput!) { rotateAccountApiKey(input: $input) { __typename } }`,
      { input: { accountId: tree.accountId, apiKey: 'sk_other_key_123' } },
      finance,
    );
    expect(res.data.rotateAccountApiKey.__typename).toBe('ForbiddenError');
  });
});

describe('master-key rotation', () => {
  it('re-encrypts every secret; accounts still forward jobs; the old key decrypts nothing', async () => {
    const { id: tokenGlobalId } = await issueServiceToken(h, tree.projectId, 'custody-app');
    const tokenId = decodeGlobalID(tokenGlobalId).id;
    const [before] = await h.services.db.select().from(serviceTokensTable).where(eq(serviceTokensTable.id, tokenId));
    const callbackSecret = h.services.box.decrypt(before!.callbackSecretCiphertext!, callbackSecretContext(tokenId));
    const masterB = generateMasterKey();
    const output = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, [dist('cli/rotate-master-key.js')], {
        env: { ...process.env, DATABASE_URL: h.config.databaseUrl!, GATEWAY_MASTER_KEY: masterB, GATEWAY_PREVIOUS_MASTER_KEYS: masterA, LOG_LEVEL: 'silent' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (out += c.toString()));
      child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(out))));
    });
    expect(output).toContain('re-encrypted 1 API keys, 1 webhook secrets, 1 signing keys, 1 callback signing secrets');

    const oldBox = createSecretBox(masterA);
    const newBox = createSecretBox(masterB);
    const accounts = await h.services.db.select().from(accountsTable);
    const keys = await h.services.db.select().from(signingKeysTable);
    const tokens = await h.services.db.select().from(serviceTokensTable);
    const ciphertexts = [
      ...accounts.flatMap((a) => [a.apiKeyCiphertext, a.webhookSecretCiphertext!]),
      ...keys.map((k) => k.privateKeyCiphertext),
      ...tokens.map((t) => t.callbackSecretCiphertext!),
    ];
    expect(ciphertexts).toHaveLength(4);
    expect(newBox.decrypt(tokens[0]!.callbackSecretCiphertext!, callbackSecretContext(tokenId))).toBe(callbackSecret);
    for (const c of ciphertexts) {
      expect(newBox.keyIdOf(c)).toBe(newBox.currentKeyId);
      expect(() => oldBox.decrypt(c, 'any')).toThrow(/not configured/);
    }

    // A gateway that only knows the new key serves the same database: it signs, verifies and forwards.
    const rotated = await startHarness({ databaseUrl: h.config.databaseUrl!, env: { GATEWAY_MASTER_KEY: masterB }, sim: { fixedDurationSeconds: 5 } });
    try {
      const job = await runJob(rotated, tree.projectId);
      expect(job.actualCreditSeconds).toBe('30');
      expect(decodeGlobalID(job.id).typename).toBe('Job');
    } finally {
      await rotated.close();
    }
  });
});
