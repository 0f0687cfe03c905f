// The demo organisation: a simulated HeyGen account ($5,000 tier), a small org tree and budgets.
// Idempotent: a second start finds the seed and only points the account at the current simulator.
import { eq } from 'drizzle-orm';
import { accountsTable, orgUnitsTable } from '../db/schema.js';
import { createAccount, type AccountRow } from '../accounts/accounts.js';
import { createOrgUnit, type OrgUnitRow } from '../org/units.js';
import { setBudget } from '../budgets/budgets.js';
import { periodOf } from '../primitives/period.js';
import type { Services } from '../app.js';

export const DEMO_ACCOUNT_NAME = 'Demo account (SIMULATED HeyGen)';

export interface DemoSeed {
  account: AccountRow;
  organization: OrgUnitRow;
  projects: { onboarding: OrgUnitRow; shorts: OrgUnitRow };
  created: boolean;
}

export async function seedDemo(services: Services, simulatorUrl: string, apiKey: string): Promise<DemoSeed> {
  return services.db.transaction(async (tx) => {
    const [existing] = await tx.select().from(accountsTable).where(eq(accountsTable.name, DEMO_ACCOUNT_NAME));
    if (existing) {
      const [account] = await tx.update(accountsTable).set({ baseUrl: simulatorUrl }).where(eq(accountsTable.id, existing.id)).returning();
      const units = await tx.select().from(orgUnitsTable);
      const byName = (name: string) => units.find((u) => u.name === name)!;
      return {
        account: account!,
        organization: units.find((u) => u.parentId === null)!,
        projects: { onboarding: byName('Onboarding videos'), shorts: byName('Social shorts') },
        created: false,
      };
    }
    const account = await createAccount(
      tx,
      services.box,
      {
        name: DEMO_ACCOUNT_NAME,
        billingModel: 'USAGE_BASED',
        usageBased: { mmcUsd: '5000', includedCreditSeconds: '600000', contractRateUsd: '0.0075', overageRateUsd: '0.00833' },
        apiKey,
        baseUrl: simulatorUrl,
        concurrencyLimit: 20,
        timezone: 'UTC',
        effectiveFrom: periodOf(new Date(), 'UTC'),
      },
      { baseUrl: simulatorUrl },
    );
    const organization = await createOrgUnit(tx, { parentId: null, kind: 'ORGANIZATION', name: 'Acme Corp (demo)', accountId: account.id });
    const marketing = await createOrgUnit(tx, { parentId: organization.id, kind: 'DEPARTMENT', name: 'Marketing', accountId: null });
    const video = await createOrgUnit(tx, { parentId: marketing.id, kind: 'TEAM', name: 'Video', accountId: null });
    const social = await createOrgUnit(tx, { parentId: marketing.id, kind: 'TEAM', name: 'Social', accountId: null });
    const onboarding = await createOrgUnit(tx, { parentId: video.id, kind: 'PROJECT', name: 'Onboarding videos', accountId: null });
    const shorts = await createOrgUnit(tx, { parentId: social.id, kind: 'PROJECT', name: 'Social shorts', accountId: null });
    const budget = { accountId: account.id, enforcement: 'HARD' as const, allowOverage: true, alertThresholds: null };
    await setBudget(tx, { ...budget, orgUnitId: marketing.id, window: 'MONTHLY', limitCreditSeconds: '300000' });
    await setBudget(tx, { ...budget, orgUnitId: video.id, window: 'MONTHLY', limitCreditSeconds: '120000' });
    await setBudget(tx, { ...budget, orgUnitId: social.id, window: 'MONTHLY', limitCreditSeconds: '60000' });
    return { account, organization, projects: { onboarding, shorts }, created: true };
  });
}
