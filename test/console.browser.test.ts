// The budget console in a real browser (Debian's Chromium driven by playwright-core), against a gateway started
// from dist/ on a real PostgreSQL database with a seeded organisation and jobs run through the simulator.
// One browser for the file; one page per role, reused. Every page fails the test on a request to any host other
// than the gateway and on any browser console error. Screenshots go to test-output/console/ (git-ignored).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { startHarness, waitFor, type Harness } from './support/harness.js';
import { spawnGateway, type GatewayProcess } from './support/processes.js';
import { ROOT } from './support/build.js';
import { SUBMIT, TIER_5K, avatarRequest, createTree, mustMutate, setBudget, type Tree } from './support/fixtures.js';
import { generateMasterKey } from '../src/secrets/secret-box.js';
import { BAND_COLOR, cs, dayInWords, toMicros, usd } from '../src/console/format.js';
import { addDays } from '../src/billing/forecast.js';
import { dayOf } from '../src/primitives/period.js';
import { recordMovement } from '../src/ledger/ledger.js';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = join(ROOT, 'test-output', 'console');
const LAPTOP = { width: 1366, height: 768 };
const PHONE = { width: 390, height: 844 };
/** How long an expectation may wait for the page (a loaded 2-core machine is slow; nothing here sleeps). */
const WAIT = { timeout: 15_000, interval: 100 };

let h: Harness;
let gateway: GatewayProcess;
let gatewayEnv: Record<string, string>;
let browser: Browser;
let tree: Tree;
const tokens = {} as Record<'FINANCE' | 'MANAGER' | 'MEMBER', string>;
const pages = new Map<string, Page>();
/** Per page: requests to other hosts and console errors, checked after every test. */
const foreign: string[] = [];
const consoleErrors: string[] = [];
let period = '';
let overrunJobId = '';
/** Last month: closed by the chargeback test. */
let previous = '';

const rawId = (globalId: string) => decodeGlobalID(globalId).id;

async function submitJob(projectId: string): Promise<string> {
  const p = await mustMutate(h, SUBMIT, { input: { projectId, kind: 'AVATAR_VIDEO', request: avatarRequest() } }, 'submitJob');
  return p.job.id as string;
}

async function jobStatus(id: string): Promise<string> {
  const res = await h.gql(`query($id: ID!) { job(id: $id) { status } }`, { id });
  return res.data.job.status as string;
}

async function apiAs<T = any>(token: string, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const res = await fetch(`${gateway.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data: T; errors?: unknown[] };
  expect(body.errors).toBeUndefined();
  return body.data;
}

function watch(context: BrowserContext, name: string): void {
  const origin = new URL(gateway.url).origin;
  context.on('request', (request) => {
    const url = new URL(request.url());
    if ((url.protocol === 'http:' || url.protocol === 'https:' || url.protocol === 'ws:' || url.protocol === 'wss:') && url.origin !== origin) {
      foreign.push(`${name}: ${request.url()}`);
    }
  });
  context.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(`${name}: ${message.text()}`);
  });
  context.on('weberror', (error) => consoleErrors.push(`${name}: ${error.error().message}`));
}

async function newContext(name: string): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: LAPTOP, acceptDownloads: true });
  watch(context, name);
  // Anything not from the gateway is refused outright (and recorded by `watch`).
  await context.route(
    (url) => url.origin !== new URL(gateway.url).origin && url.protocol.startsWith('http'),
    (route) => route.abort(),
  );
  return context;
}

async function pageFor(context: BrowserContext, name: string): Promise<Page> {
  let page = pages.get(name);
  if (!page) {
    page = await context.newPage();
    pages.set(name, page);
  }
  return page;
}

async function signIn(role: keyof typeof tokens): Promise<Page> {
  const page = await pageFor(await newContext(role), role);
  await page.goto(`${gateway.url}/console/`);
  await page.getByLabel('Gateway token').fill(tokens[role]);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('whoami').waitFor();
  expect(await page.getByTestId('whoami').textContent()).toContain(role);
  return page;
}

/** A chart drawn by ECharts' SVG renderer, with data in it and marks drawn (not an empty frame). */
async function expectChart(page: Page, testId: string): Promise<void> {
  const chart = page.getByTestId(testId);
  await chart.locator('svg path').first().waitFor({ state: 'attached' });
  await expect.poll(async () => Number(await chart.getAttribute('data-points')), WAIT).toBeGreaterThan(0);
  // Marks with an area (bars, a rising line, legend icons), beyond the flat grid lines.
  const drawn = await chart.evaluate((el) =>
    [...el.querySelectorAll('svg path')].filter((p) => {
      const box = (p as SVGGraphicsElement).getBBox();
      return box.width > 0 && box.height > 0;
    }).length,
  );
  expect(drawn).toBeGreaterThan(3);
  const box = await chart.boundingBox();
  expect(box!.width).toBeGreaterThan(200);
  expect(box!.height).toBeGreaterThan(100);
}

/** Presses Tab (at most 40 times) until the focused element matches `selector`: the page is reached by keyboard alone. */
async function tabTo(page: Page, selector: string): Promise<void> {
  for (let i = 0; i < 40; i++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate((sel) => document.activeElement?.matches(sel) ?? false, selector)) return;
  }
  throw new Error(`not reached by Tab: ${selector}`);
}

async function screenshots(page: Page, name: string, chartTestId: string | null): Promise<void> {
  for (const [width, size] of [['laptop', LAPTOP] as const, ['phone', PHONE] as const]) {
    await page.setViewportSize(size);
    if (chartTestId) await expectChart(page, chartTestId);
    // Readable at this width: the page itself does not scroll sideways (wide tables scroll in their own box), once it
    // has laid itself out for the new width (a chart redraws at the next resize observation: until then it keeps the
    // width it had, which on a loaded machine the first reading after the resize could still see).
    await page
      .waitForFunction(() => document.documentElement.scrollWidth - document.documentElement.clientWidth <= 0, undefined, { timeout: 5_000 })
      .catch(() => undefined); // still overflowing: the assertion below says by how much
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow, `${name} at ${width} width`).toBeLessThanOrEqual(0);
    await page.screenshot({ path: join(SHOTS, `${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize(LAPTOP);
}

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  const masterKey = generateMasterKey();
  h = await startHarness({ env: { GATEWAY_MASTER_KEY: masterKey } });
  tree = await createTree(h);
  const monthly = { accountId: tree.accountId, window: 'MONTHLY' };
  await setBudget(h, { ...monthly, orgUnitId: tree.deptId, limitCreditSeconds: '300000' });
  await setBudget(h, { ...monthly, orgUnitId: tree.teamId, limitCreditSeconds: '120000' });
  await setBudget(h, { ...monthly, orgUnitId: tree.projectId, limitCreditSeconds: '1000' });
  await setBudget(h, { ...monthly, orgUnitId: tree.otherTeamId, limitCreditSeconds: '60000', enforcement: 'SOFT' });
  // Usage on each of the 20 days before today (in the Social team's project, away from the capped one; at most
  // 160,000 cs in the period, under the department's cap), uneven so that the forecast has a burn and a band: settled adjustments on those days, written like any ledger movement.
  const accountRow = (await h.services.db.query.accountsTable.findMany({ where: (a, { eq }) => eq(a.id, rawId(tree.accountId)) }))[0]!;
  const today = dayOf(new Date(), accountRow.timezone);
  const path = [tree.orgId, tree.deptId, tree.otherTeamId, tree.otherProjectId].map(rawId);
  // The same terms since last month, so that last month has a statement to close.
  previous = addDays(`${today.slice(0, 7)}-01`, -1).slice(0, 7);
  await mustMutate(
    h,
    `mutation($input: SetAccountTermsInput!) { setAccountTerms(input: $input) { __typename ... on Error { message code } } }`,
    { input: { accountId: tree.accountId, effectiveFrom: previous, usageBased: TIER_5K } },
    'setAccountTerms',
  );
  await h.services.db.transaction(async (tx) => {
    for (let i = 1; i <= 20; i++) {
      const day = addDays(today, -i);
      const amountMicroCs = BigInt(4000 + (i % 3) * 4000) * 1_000_000n;
      await recordMovement(tx, 'ADJUSTMENT', { jobId: null, accountId: rawId(tree.accountId), orgUnitId: path[3]!, path, period: day.slice(0, 7), day, amountMicroCs });
    }
  });
  const jobs = await Promise.all([submitJob(tree.projectId), submitJob(tree.projectId), submitJob(tree.otherProjectId)]);
  await waitFor(async () => (await Promise.all(jobs.map(jobStatus))).every((s) => s === 'SUCCEEDED'), 20_000);
  // One job in Shorts renders 12 s of video where its hold assumed 8 s: it overruns its hold.
  h.sim.configure({ fixedDurationSeconds: 12 });
  overrunJobId = await submitJob(tree.otherProjectId);
  await waitFor(async () => (await jobStatus(overrunJobId)) === 'SUCCEEDED', 20_000).finally(() => h.sim.configure({ fixedDurationSeconds: null }));

  const issue = h.services.tokens.issueOperatorToken;
  tokens.FINANCE = await issue({ name: 'fiona', role: 'FINANCE' });
  tokens.MANAGER = await issue({ name: 'maya', role: 'MANAGER', unitId: rawId(tree.teamId) });
  tokens.MEMBER = await issue({ name: 'sam', role: 'MEMBER', unitId: rawId(tree.otherTeamId) });

  // The browser talks to a gateway process built from dist/ (console included); the harness's own workers settle jobs.
  gatewayEnv = { DATABASE_URL: h.database.url, GATEWAY_MASTER_KEY: masterKey, HEYGEN_BASE_URL: h.sim.url, WORKERS_ENABLED: 'false', RATE_LIMIT_PER_MINUTE: '0' };
  gateway = await spawnGateway(gatewayEnv);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
  const account = await apiAs(tokens.FINANCE, `{ accounts { timezone period { period } } }`);
  period = account.accounts[0].period.period;
});

afterEach(() => {
  expect(foreign, 'requests to hosts other than the gateway').toEqual([]);
  expect(consoleErrors, 'browser console errors').toEqual([]);
});

afterAll(async () => {
  await browser?.close();
  await gateway?.stop();
  await h?.close();
});

describe('the budget console', () => {
  it('is served with a CSP and cache headers, and needs nothing from the internet', async () => {
    const index = await fetch(`${gateway.url}/console/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(index.headers.get('cache-control')).toBe('no-cache');
    const html = await index.text();
    const asset = /src="(\/console\/assets\/[^"]+\.js)"/.exec(html)![1]!;
    const js = await fetch(`${gateway.url}${asset}`, { headers: { 'accept-encoding': 'gzip' } });
    expect(js.status).toBe(200);
    expect(js.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    expect(html).not.toMatch(/https?:\/\//);
    expect((await fetch(`${gateway.url}/console/nope.js`)).status).toBe(404);
    expect((await fetch(`${gateway.url}/console`, { redirect: 'manual' })).headers.get('location')).toBe('/console/');
  });

  it('refuses a wrong token in words', async () => {
    const page = await pageFor(await newContext('stranger'), 'stranger');
    await page.goto(`${gateway.url}/console/`);
    await page.getByLabel('Gateway token').fill('not-a-token');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.getByRole('alert').textContent(), WAIT).toContain('Sign in again');
    // The 401 answer itself is logged by Chromium as a failed resource load: that one is expected.
    consoleErrors.splice(0, consoleErrors.length, ...consoleErrors.filter((e) => !/^stranger: Failed to load resource: .*401/.test(e)));
  });

  it('FINANCE: the overview totals equal Account.period and chargebackReport', async () => {
    const FORECAST = `{ accounts { period { forecast {
      projectedInvoiceUsd lowInvoiceUsd highInvoiceUsd poolRunsOutOn poolHorizon
      usage { projectedCreditSeconds lowCreditSeconds highCreditSeconds historyDays asOfDay periodLastDay }
    } } } }`;
    // The forecast moves with the clock (the rest of today shrinks): read before and after the page reads it.
    const before = (await apiAs(tokens.FINANCE, FORECAST)).accounts[0].period.forecast;
    const page = await signIn('FINANCE');
    const api = await apiAs(
      tokens.FINANCE,
      `query($account: ID!, $period: String!) {
        accounts { timezone period { usedCreditSeconds overageCreditSeconds projectedInvoiceUsd remainingIncludedCreditSeconds } }
        chargebackReport(accountId: $account, period: $period) { invoiceTotalUsd usedCreditSeconds }
      }`,
      { account: tree.accountId, period },
    );
    const p = api.accounts[0].period;
    expect(Number(p.usedCreditSeconds)).toBeGreaterThan(0);
    await expect.poll(() => page.getByTestId('kpi-invoice').textContent(), WAIT).toBe(usd(api.chargebackReport.invoiceTotalUsd));
    expect(await page.getByTestId('kpi-used').textContent()).toBe(cs(p.usedCreditSeconds));
    expect(await page.getByTestId('kpi-used').textContent()).toBe(cs(api.chargebackReport.usedCreditSeconds));
    expect(await page.getByTestId('kpi-overage').textContent()).toBe(cs(p.overageCreditSeconds));
    expect(await page.getByTestId('kpi-remaining').textContent()).toBe(cs(p.remainingIncludedCreditSeconds));
    expect(await page.getByTestId('kpi-projected').textContent()).toBe(usd(p.projectedInvoiceUsd));
    expect(await page.getByTestId('timezone').textContent()).toBe(`Time zone: ${api.accounts[0].timezone}`);

    // The forecast on screen is AccountPeriod.forecast's.
    await page.getByTestId('forecast-usage').waitFor(WAIT);
    const shown = {} as Record<string, string | null>;
    for (const id of ['forecast-usage', 'forecast-usage-low', 'forecast-usage-high', 'forecast-invoice', 'forecast-invoice-low', 'forecast-invoice-high']) {
      shown[id] = await page.getByTestId(id).textContent();
    }
    const runsOutOn = await page.getByTestId('forecast-pool').getAttribute('data-runs-out-on');
    const after = (await apiAs(tokens.FINANCE, FORECAST)).accounts[0].period.forecast;
    expect(after.usage.historyDays).toBeGreaterThanOrEqual(14);
    expect(Number(after.usage.highCreditSeconds)).toBeGreaterThan(Number(after.usage.lowCreditSeconds));
    // Each figure shown lies between the two reads, as the API rounds and the console formats it (a figure the
    // page made up, or took from elsewhere, would not).
    const figure = (text: string | null) => toMicros(text!.replace(/[$,]|\s?cs$/g, ''));
    const between = (pick: (f: typeof after) => string, format: (v: string) => string, shownText: string | null) => {
      const [a, b] = [figure(format(pick(before))), figure(format(pick(after)))];
      const shownValue = figure(shownText);
      expect(shownValue, `${shownText} between ${format(pick(before))} and ${format(pick(after))}`).toBeGreaterThanOrEqual(a < b ? a : b);
      expect(shownValue, `${shownText} between ${format(pick(before))} and ${format(pick(after))}`).toBeLessThanOrEqual(a < b ? b : a);
    };
    between((f) => f.usage.projectedCreditSeconds, cs, shown['forecast-usage']!);
    between((f) => f.usage.lowCreditSeconds, cs, shown['forecast-usage-low']!);
    between((f) => f.usage.highCreditSeconds, cs, shown['forecast-usage-high']!);
    between((f) => f.projectedInvoiceUsd, usd, shown['forecast-invoice']!);
    between((f) => f.lowInvoiceUsd, usd, shown['forecast-invoice-low']!);
    between((f) => f.highInvoiceUsd, usd, shown['forecast-invoice-high']!);
    expect([before.poolRunsOutOn ?? '', after.poolRunsOutOn ?? '']).toContain(runsOutOn);
    expect(await page.getByTestId('forecast-pool').textContent()).toBe(runsOutOn ? `Runs out on ${dayInWords(runsOutOn)}` : `Lasts to ${dayInWords(after.poolHorizon)}`);
    // The chart draws the band: an area in the band's colour over the rest of the month (on the month's last day
    // there is no rest to draw it over).
    const chart = page.getByTestId('chart-cumulative');
    const bandDays = Math.round((Date.parse(after.usage.periodLastDay) - Date.parse(after.usage.asOfDay)) / 86_400_000);
    if (bandDays > 0) await expect
      .poll(
        () =>
          chart.evaluate(
            (el, color) =>
              [...el.querySelectorAll('svg path')].filter((p) => {
                const box = (p as SVGGraphicsElement).getBBox();
                return p.getAttribute('fill')?.toLowerCase() === color && box.width > 0 && box.height > 1;
              }).length,
            BAND_COLOR,
          ),
        WAIT,
      )
      .toBeGreaterThan(0);
    // The whole tree is visible to FINANCE, with the budgets as bars.
    const units = await page.locator('[data-unit-name]').evaluateAll((els) => els.map((e) => e.getAttribute('data-unit-name')));
    expect(units).toEqual(expect.arrayContaining(['Video', 'Onboarding', 'Social', 'Shorts']));
    expect(await page.getByTestId('budget').count()).toBe(4);
    // HARD budgets show the API's exhaustsOn (a day, or none when the budget lasts its window at the current burn).
    const budgets = await apiAs(tokens.FINANCE, `{ orgUnits(first: 50) { edges { node { budgets { id enforcement exhaustsOn } } } } }`);
    const hard = budgets.orgUnits.edges.flatMap((e: { node: { budgets: { id: string; enforcement: string; exhaustsOn: string | null }[] } }) => e.node.budgets).filter((b: { enforcement: string }) => b.enforcement === 'HARD');
    expect(hard.length).toBe(3);
    for (const b of hard) {
      expect(await page.locator(`[data-budget-id="${b.id}"] [data-testid=budget-exhausts]`).getAttribute('data-exhausts-on')).toBe(b.exhaustsOn ?? '');
    }
    await screenshots(page, 'overview-finance', 'chart-cumulative');
  });

  it('FINANCE: the chargeback table sums to the invoice and its CSV equals the API\'s', async () => {
    const page = pages.get('FINANCE')!;
    // By keyboard: Tab to the header's Chargeback link (its focus ring drawn) and follow it with Enter.
    await tabTo(page, 'header a[href="#/chargeback"]');
    expect(await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle)).not.toBe('none');
    await page.keyboard.press('Enter');
    await page.getByTestId('chargeback').waitFor();
    const api = await apiAs(tokens.FINANCE, `query($a: ID!, $p: String!) { chargebackReport(accountId: $a, period: $p) { invoiceTotalUsd lines { name } } }`, {
      a: tree.accountId,
      p: period,
    });
    expect(await page.getByTestId('invoice-total').textContent()).toBe(usd(api.chargebackReport.invoiceTotalUsd));
    expect(await page.getByTestId('own-total').textContent()).toBe(usd(api.chargebackReport.invoiceTotalUsd));
    expect(await page.locator('[data-testid=chargeback] tbody tr').count()).toBe(api.chargebackReport.lines.length);
    for (const [button, path] of [['download-csv', 'chargeback.csv'], ['download-focus', 'chargeback.focus.csv']] as const) {
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId(button).click()]);
      const stream = await download.createReadStream();
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(chunk as Buffer);
      const fromPage = Buffer.concat(chunks).toString('utf8');
      const fromApi = await (
        await fetch(`${gateway.url}/reports/${path}?account=${encodeURIComponent(tree.accountId)}&period=${period}`, {
          headers: { authorization: `Bearer ${tokens.FINANCE}` },
        })
      ).text();
      expect(fromPage.length).toBeGreaterThan(50);
      expect(fromPage).toBe(fromApi);
    }
    await screenshots(page, 'chargeback-finance', null);

    // Last month, closed by FINANCE through the API: picked on the page, it is marked closed, and its CSV (asked for
    // with the keyboard) is the API's.
    const close = await apiAs(tokens.FINANCE, `mutation($input: ClosePeriodInput!) { closePeriod(input: $input) { __typename ... on Error { message } } }`, {
      input: { accountId: tree.accountId, period: previous },
    });
    expect(close.closePeriod).toEqual({ __typename: 'ClosePeriodPayload' });
    await page.getByTestId('period').fill(previous);
    await expect.poll(() => page.getByTestId('statement-state').textContent(), WAIT).toMatch(/^Closed statement · .* by .*fiona/);
    const closed = await apiAs(tokens.FINANCE, `query($a: ID!, $p: String!) { chargebackReport(accountId: $a, period: $p) { closed invoiceTotalUsd } }`, { a: tree.accountId, p: previous });
    expect(closed.chargebackReport.closed).toBe(true);
    expect(await page.getByTestId('invoice-total').textContent()).toBe(usd(closed.chargebackReport.invoiceTotalUsd));
    await tabTo(page, '[data-testid=download-csv]');
    const [download] = await Promise.all([page.waitForEvent('download'), page.keyboard.press('Enter')]);
    const chunks: Buffer[] = [];
    for await (const chunk of await download.createReadStream()) chunks.push(chunk as Buffer);
    const fromApi = await (
      await fetch(`${gateway.url}/reports/chargeback.csv?account=${encodeURIComponent(tree.accountId)}&period=${previous}`, { headers: { authorization: `Bearer ${tokens.FINANCE}` } })
    ).text();
    expect(Buffer.concat(chunks).toString('utf8')).toBe(fromApi);
    await screenshots(page, 'chargeback-closed-finance', null);
  });

  it('MANAGER: raises a budget below its unit (shown and audited); a typed error rolls the change back', async () => {
    const page = await signIn('MANAGER');
    await page.locator('[data-unit-name=Onboarding] > .unit-row a').click();
    await page.getByRole('heading', { name: /Onboarding/ }).waitFor();
    await expectChart(page, 'chart-daily');
    // The daily chart is the API's usageSeries split by product: each product with usage this month is a series.
    const series = await apiAs(tokens.MANAGER, `query($u: ID!, $a: ID!, $from: String!, $to: String!) { usageSeries(orgUnitId: $u, accountId: $a, from: $from, to: $to) { byProduct { product } } }`, {
      u: tree.projectId,
      a: tree.accountId,
      from: `${period}-01`,
      to: `${period}-${String(new Date(Date.UTC(Number(period.slice(0, 4)), Number(period.slice(5, 7)), 0)).getUTCDate())}`,
    });
    const products = [...new Set(series.usageSeries.flatMap((p: { byProduct: { product: string }[] }) => p.byProduct.map((b) => b.product)))];
    expect(products.length).toBeGreaterThan(0);
    for (const product of products) await page.getByTestId('chart-daily').locator('svg text', { hasText: product as string }).first().waitFor(WAIT);

    // Refused by the API (above the largest limit it takes): the optimistic value is rolled back, the reason shown.
    await page.getByRole('button', { name: 'Edit budget' }).click();
    await page.getByLabel(/Limit/).fill('999999999999999');
    await page.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => page.getByTestId('budget-message').textContent(), WAIT).toMatch(/^Not saved: The value was refused: .*at most/);
    expect(await page.getByTestId('budget-limit').textContent()).toContain(`limit ${cs('1000')} `);

    await page.getByRole('button', { name: 'Edit budget' }).click();
    await page.getByLabel(/Limit/).fill('2000');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.getByTestId('budget-message').textContent(), WAIT).toBe('Budget saved.');
    expect(await page.getByTestId('budget-limit').textContent()).toContain(`limit ${cs('2000')} `);

    const after = await apiAs(tokens.MANAGER, `query($id: ID!) { orgUnit(id: $id) { budgets { id limitCreditSeconds } } }`, { id: tree.projectId });
    expect(after.orgUnit.budgets.map((b: { limitCreditSeconds: string }) => b.limitCreditSeconds)).toEqual(['2000']);
    const audit = await apiAs(h.adminToken, `query($id: ID!) { auditEvents(first: 10, filter: { entityId: $id }) { edges { node { action actorRole actorSubject after } } } }`, {
      id: after.orgUnit.budgets[0].id,
    });
    const events = audit.auditEvents.edges.map((e: { node: any }) => e.node);
    expect(events[0]).toMatchObject({ actorRole: 'MANAGER', actorSubject: expect.stringContaining('maya') });
    expect(JSON.stringify(events[0].after)).toContain('2000');

    // Its own unit's cap is set from above: no edit offered there.
    await page.getByRole('link', { name: 'Video' }).click();
    await page.getByRole('heading', { name: /Video/ }).waitFor();
    expect(await page.getByRole('button', { name: 'Edit budget' }).count()).toBe(0);
    await screenshots(page, 'unit-manager', 'chart-daily');
  });

  it('MANAGER: a live job moves from running to done on screen without a reload', async () => {
    const page = pages.get('MANAGER')!;
    await page.getByRole('link', { name: 'Overview' }).first().click();
    await page.getByRole('heading', { name: /^Overview/ }).waitFor();
    // The page follows the projects of its jobs by `jobsUpdated` over Server-Sent Events (polling is the fallback).
    const streams: string[] = [];
    const onStream = (request: { url(): string; headers(): Record<string, string>; postData(): string | null }) => {
      if (request.url().endsWith('/graphql') && request.headers().accept?.includes('text/event-stream')) streams.push(request.postData() ?? '');
    };
    page.on('request', onStream);
    // Long enough to be seen running on a loaded machine.
    h.sim.configure({ renderMs: 6000 });
    const jobId = await submitJob(tree.projectId).finally(() => h.sim.configure({ renderMs: 50 }));
    await page.locator('[data-unit-name=Onboarding] > .unit-row a').click();
    const status = page.locator(`[data-job-id="${jobId}"] [data-testid=job-status]`);
    await expect.poll(() => status.getAttribute('data-status'), WAIT).toMatch(/^(RESERVED|SUBMITTED|PROCESSING)$/);
    await page.evaluate(() => ((window as unknown as { noReload: boolean }).noReload = true));
    await expect.poll(() => status.getAttribute('data-status'), { timeout: 20_000, interval: 100 }).toBe('SUCCEEDED');
    expect(await page.evaluate(() => (window as unknown as { noReload?: boolean }).noReload)).toBe(true);
    expect(await status.textContent()).toBe('done');
    page.off('request', onStream);
    expect(streams.some((body) => body.includes('ConsoleJobsUpdated') && body.includes(tree.projectId))).toBe(true);
  });

  it('MANAGER: each job shows who submitted it, and its video link is read from HeyGen only when asked', async () => {
    const page = pages.get('MANAGER')!;
    const outputReads: string[] = [];
    const onRequest = (request: { url(): string; postData(): string | null }) => {
      if (request.url().endsWith('/graphql') && request.postData()?.includes('ConsoleJobOutputs')) outputReads.push(request.postData()!);
    };
    page.on('request', onRequest);
    try {
      await page.reload();
      await page.getByTestId('jobs').waitFor(WAIT);
      const rows = page.locator('[data-testid=jobs] [data-testid=job]');
      await expect.poll(() => rows.count(), WAIT).toBeGreaterThan(0);
      const jobId = (await rows.first().getAttribute('data-job-id'))!;
      const api = await apiAs(tokens.MANAGER, `query($id: ID!) { job(id: $id) { createdBy status outputs { videoUrl } } }`, { id: jobId });
      expect(api.job.status).toBe('SUCCEEDED');
      expect(api.job.createdBy).toMatch(/^admin:/);
      const row = page.locator(`[data-job-id="${jobId}"]`);
      expect(await row.getByTestId('job-submitter').textContent()).toBe(api.job.createdBy);
      // Nothing asked HeyGen for outputs while the page loaded and re-read its jobs.
      expect(outputReads).toEqual([]);
      await row.getByRole('button', { name: /^Video link/ }).click();
      const link = row.getByTestId('job-video').getByRole('link', { name: 'Video' });
      await link.waitFor(WAIT);
      expect(await link.getAttribute('href')).toBe(api.job.outputs[0].videoUrl);
      expect(await link.getAttribute('rel')).toBe('noopener noreferrer');
      expect(outputReads).toHaveLength(1);
      expect(outputReads[0]).toContain(jobId);
    } finally {
      page.off('request', onRequest);
    }
  });

  it('MANAGER: a refused submission shows on the unit page as it happens', async () => {
    const page = pages.get('MANAGER')!;
    await page.goto(`${gateway.url}/console/#/unit/${encodeURIComponent(tree.projectId)}`);
    const section = page.getByTestId('refusals-section');
    await section.getByText('No job was refused here.').waitFor(WAIT);
    await expect.poll(() => section.getAttribute('data-live'), WAIT).toBe('open');
    // 1,000 s of video: a hold far above what the project's HARD budget has left.
    const refused = await h.gql(SUBMIT, { input: { projectId: tree.projectId, kind: 'AVATAR_VIDEO', request: avatarRequest(), estimatedSeconds: '1000' } });
    expect(refused.data.submitJob.__typename).toBe('BudgetExceededError');
    const api = await apiAs(tokens.MANAGER, `query($u: ID!) { moneyEvents(orgUnitId: $u, kinds: [BUDGET_REFUSED], first: 5) { edges { node { id data } } } }`, { u: tree.projectId });
    expect(api.moneyEvents.edges).toHaveLength(1);
    const event = api.moneyEvents.edges[0].node;
    const row = page.locator(`[data-testid=refusal][data-event-id="${event.id}"]`);
    await row.waitFor(WAIT);
    const text = await row.textContent();
    expect(text).toContain('the budget of Onboarding');
    expect(text).toContain(cs('2000'));
    expect(text).toContain(cs(String(Number(event.data.firstRequestedMicroCs) / 1e6)));
  });

  it('MEMBER: sees its own team and no other', async () => {
    const page = await signIn('MEMBER');
    await page.locator('[data-unit-name]').first().waitFor();
    const units = await page.locator('[data-unit-name]').evaluateAll((els) => els.map((e) => e.getAttribute('data-unit-name')));
    expect(units).toContain('Social');
    expect(units).not.toContain('Video');
    expect(units).not.toContain('Onboarding');
    await page.getByTestId('jobs').waitFor();
    const text = await page.locator('main').textContent();
    expect(text).not.toContain('Onboarding');
    expect(await page.getByRole('button', { name: 'Edit budget' }).count()).toBe(0);
    // Not the account's totals (they would tell the other team's usage): its own team's, as the API gives them.
    const own = await apiAs(tokens.MEMBER, `query($u: ID!) { orgUnit(id: $u) { usage { settledCreditSeconds } } }`, { u: tree.otherTeamId });
    await expect.poll(() => page.getByTestId('kpi-subtree-settled').textContent(), WAIT).toBe(cs(own.orgUnit.usage.settledCreditSeconds));
    expect(await page.getByTestId('kpi-used').count()).toBe(0);
    await screenshots(page, 'overview-member', 'chart-cumulative');
    // Its project's page: the daily chart by product, and the job that cost more than its hold.
    await page.locator('[data-unit-name=Shorts] > .unit-row a').click();
    await page.getByRole('heading', { name: /Shorts/ }).waitFor(WAIT);
    const api = await apiAs(tokens.MEMBER, `query($id: ID!) { job(id: $id) { overrunCreditSeconds } }`, { id: overrunJobId });
    expect(Number(api.job.overrunCreditSeconds)).toBeGreaterThan(0);
    await page.locator(`[data-testid=overruns] [data-job-id="${overrunJobId}"]`).waitFor(WAIT);
    expect(await page.getByTestId('overrun-summary').textContent()).toContain(`1 job cost ${cs(api.job.overrunCreditSeconds)} more than its hold`);
    await screenshots(page, 'unit-member', 'chart-daily');
  });

  it('GraphiQL is served offline and opens with the console\'s token in place', async () => {
    const member = pages.get('MEMBER')!;
    const context = member.context();
    const [graphiql] = await Promise.all([context.waitForEvent('page'), member.getByRole('link', { name: 'GraphiQL' }).click()]);
    const introspection = await graphiql.waitForRequest((r) => r.url().endsWith('/graphql') && r.method() === 'POST');
    expect(introspection.headers().authorization).toBe(`Bearer ${tokens.MEMBER}`);
    expect((await introspection.response())!.status()).toBe(200);
    await graphiql.locator('.graphiql-container').first().waitFor();
    expect(new URL(graphiql.url()).hash).toBe('');
    await graphiql.close();
  });

  it('MANAGER: after the gateway restarts, the streams open again and a live job still reaches done on screen', { timeout: 120_000 }, async () => {
    const page = pages.get('MANAGER')!;
    await page.goto(`${gateway.url}/console/#/unit/${encodeURIComponent(tree.projectId)}`);
    await page.getByRole('heading', { name: /Onboarding/ }).waitFor(WAIT);
    const note = page.getByTestId('live-note');
    await expect.poll(() => note.getAttribute('data-streams-down'), WAIT).toBe('0');
    const streams: { at: number; body: string }[] = [];
    const onStream = (request: { url(): string; headers(): Record<string, string>; postData(): string | null }) => {
      if (request.url().endsWith('/graphql') && request.headers().accept?.includes('text/event-stream')) streams.push({ at: Date.now(), body: request.postData() ?? '' });
    };
    page.on('request', onStream);
    try {
      h.sim.configure({ renderMs: 8000 });
      const jobId = await submitJob(tree.projectId).finally(() => h.sim.configure({ renderMs: 50 }));
      const status = page.locator(`[data-job-id="${jobId}"] [data-testid=job-status]`);
      await expect.poll(() => status.getAttribute('data-status'), WAIT).toMatch(/^(RESERVED|SUBMITTED|PROCESSING)$/);
      await page.evaluate(() => ((window as unknown as { noReload: boolean }).noReload = true));
      // The gateway process stops (its streams end) and starts again on the same address (a start takes up to ~20 s
      // on a loaded machine, hence this test's timeout); the harness's workers settle the job meanwhile.
      const port = new URL(gateway.url).port;
      await gateway.stop();
      const restartedAt = Date.now();
      await expect.poll(() => note.getAttribute('data-streams-down'), WAIT).not.toBe('0');
      gateway = await spawnGateway({ ...gatewayEnv, PORT: port });
      await expect.poll(() => status.getAttribute('data-status'), { timeout: 30_000, interval: 100 }).toBe('SUCCEEDED');
      expect(await status.textContent()).toBe('done');
      // The page's stream for the project was opened again (after a delay: nothing hammers the restarting gateway).
      await expect.poll(() => note.getAttribute('data-streams-down'), { timeout: 45_000, interval: 200 }).toBe('0');
      expect(streams.some((s) => s.at > restartedAt && s.body.includes('ConsoleJobsUpdated') && s.body.includes(tree.projectId))).toBe(true);
      expect(await page.evaluate(() => (window as unknown as { noReload?: boolean }).noReload)).toBe(true);
      // And it carries events again: the next job of the project arrives on it.
      const next = await submitJob(tree.projectId);
      await expect.poll(() => page.locator(`[data-job-id="${next}"] [data-testid=job-status]`).getAttribute('data-status'), WAIT).toBe('SUCCEEDED');
    } finally {
      page.off('request', onStream);
      // While the gateway was down, every open page's requests failed at the network level: expected here only.
      consoleErrors.splice(0, consoleErrors.length, ...consoleErrors.filter((e) => !/Failed to load resource: net::ERR_(CONNECTION_REFUSED|CONNECTION_RESET|EMPTY_RESPONSE)/.test(e)));
    }
  });
});
