// Custody of HeyGen API keys: replace an account's key (write-only; only the new hint is readable).
import { eq } from 'drizzle-orm';
import { builder } from './builder.js';
import { MUTATION_ERRORS } from './errors.js';
import { decodeId } from './ids.js';
import { AccountRef } from './accounts.js';
import { accountsTable } from '../db/schema.js';
import { apiKeyContext, validateApiKey } from '../accounts/accounts.js';
import { secretHint } from '../secrets/secret-box.js';
import { recordAudit } from '../audit/audit.js';
import { NotFoundError } from '../errors.js';

builder.mutationField('rotateAccountApiKey', (t) =>
  t.fieldWithInput({
    type: builder.simpleObject('RotateAccountApiKeyPayload', {
      description: 'The account with its new key hint.',
      fields: (f) => ({ account: f.field({ type: AccountRef, description: 'The account.' }) }),
    }),
    errors: { types: MUTATION_ERRORS },
    authScopes: { admin: true },
    description: "Replaces an account's HeyGen API key (ADMIN). Jobs in flight are followed with the new key from the next request on.",
    input: {
      accountId: t.input.id({ required: true, description: 'Global id of the account.' }),
      apiKey: t.input.string({ required: true, description: 'The new HeyGen API key (write-only).' }),
    },
    resolve: async (_r, { input }, ctx) => {
      const accountId = decodeId(String(input.accountId), 'Account');
      const apiKey = validateApiKey(input.apiKey);
      const account = await ctx.db.transaction(async (tx) => {
        const [before] = await tx.select().from(accountsTable).where(eq(accountsTable.id, accountId)).for('no key update');
        if (!before) throw new NotFoundError('Account', String(input.accountId));
        const [after] = await tx
          .update(accountsTable)
          .set({ apiKeyCiphertext: ctx.services.box.encrypt(apiKey, apiKeyContext(accountId)), apiKeyHint: secretHint(apiKey) })
          .where(eq(accountsTable.id, accountId))
          .returning();
        await recordAudit(tx, ctx.actor!, {
          action: 'account.rotateApiKey',
          entityType: 'Account',
          entityId: accountId,
          before: { apiKeyHint: before.apiKeyHint },
          after: { apiKeyHint: after!.apiKeyHint },
        });
        return after!;
      });
      return { account };
    },
  }),
);
