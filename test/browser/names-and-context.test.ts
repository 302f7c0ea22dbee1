import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import type { Role } from '../../core/context.js';
import { startTestServer, type TestServer } from '../../web-chat/server.fixtures.js';
import { ARTIFACTS, chromiumMissing, launchChromium } from './chromium.js';
import { seedModelsAndDevices, signInPage } from './pages.fixtures.js';

// Issue 17, part 2: names, not ids (fleet table, audit log) and the rollout approval with the
// candidate's metrics beside the model each targeted device serves now.
const missing = chromiumMissing();

describe.skipIf(missing)('names and approval context in Chromium', () => {
  let t: TestServer;
  let chromium: Awaited<ReturnType<typeof launchChromium>>;
  let browser: Browser;
  const open: BrowserContext[] = [];
  let current: Page | undefined;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    t = await startTestServer();
    chromium = await launchChromium();
    browser = chromium.browser;
    Object.assign(ids, await seedModelsAndDevices(t));
  }, 60_000);

  afterEach(async (test) => {
    if (current && test.task.result?.state === 'fail')
      await current
        .screenshot({
          path: path.join(ARTIFACTS, `names-${test.task.name.replace(/\W+/g, '-').slice(0, 60)}.png`),
        })
        .catch(() => undefined);
    current = undefined;
    for (const c of open.splice(0)) await c.close();
  });

  afterAll(async () => {
    await chromium?.close();
    await t?.close();
  });

  async function signIn(role: Role, locale = 'en-US'): Promise<Page> {
    const context = await browser.newContext({ locale, viewport: { width: 1400, height: 1000 } });
    open.push(context);
    current = await signInPage(context, t, role);
    return current;
  }

  it('shows the model each device runs by name, linked, with its live figures', async () => {
    const page = await signIn('viewer');
    await page.goto(`${t.url}/#fleet`);
    const row = page.locator('#fleet-groups tr[data-device="jetson-l3-a"]');
    await row.waitFor();
    expect(await row.locator('td.model a').textContent()).toBe('helmets@1');
    expect(await row.locator('td.model a').getAttribute('href')).toBe('#models/helmets%401');
    const text = (await row.textContent()) ?? '';
    expect(text).not.toContain('mv_');
    for (const figure of ['29.6', '8.2 / 12.4 ms', '0.81', '42 %', '812 MB', 'jetson-orin · tensorrt'])
      expect(text).toContain(figure);
  }, 60_000);

  it("puts the candidate's metrics beside the serving model's on a rollout approval, with what changes per device", async () => {
    const operator = await t.login('operator');
    const res = await operator.fetch('/api/approvals', {
      method: 'POST',
      json: {
        tool: 'start_rollout',
        args: { modelVersion: ids.v2, target: { tag: 'line-3' } },
        reason: 'deploy the better model',
      },
    });
    expect(res.status).toBe(201);
    const page = await signIn('approver');
    await page.goto(`${t.url}/#approvals`);
    const card = page.locator('#approval-list .approval-card[data-risk="critical"]').first();
    await card.locator('.approval-context .compare-table').waitFor();
    expect(await card.locator('.candidate-ref').textContent()).toBe('helmets@2');
    expect(await card.locator('.compare-table thead a').allTextContents()).toEqual([
      'helmets@2',
      'helmets@1',
    ]);
    const map = await card
      .locator('.compare-table tbody tr', { hasText: 'mAP50' })
      .locator('td')
      .allTextContents();
    expect(map).toEqual(['mAP50', '0.740', '0.610', '+0.130']);
    expect(await card.locator('.device-changes li').allTextContents()).toEqual([
      'jetson-l3-a: helmets@1 → helmets@2',
      'jetson-l3-b: helmets@1 → helmets@2',
    ]);
  }, 60_000);

  it('names the people in the audit log, newest first, in Korean', async () => {
    const operator = await t.login('operator');
    await operator.fetch('/api/approvals', {
      method: 'POST',
      json: { tool: 'start_training', args: { dataset: 'helmets-demo' }, reason: 'audit names' },
    });
    const page = await signIn('operator', 'ko-KR');
    await page.goto(`${t.url}/#audit`);
    const row = page.locator('#audit-rows tr[data-action="approval.requested"]').first();
    await row.waitFor();
    expect(await row.locator('td').nth(2).textContent()).toBe('Operator');
    expect((await page.locator('#audit-rows').textContent()) ?? '').not.toContain('usr_');
    // newest first: the first row has the highest sequence number
    const seqs = (await page.locator('#audit-rows tr td:first-child').allTextContents()).map(Number);
    expect(seqs).toEqual([...seqs].sort((a, b) => b - a));
    expect(await page.locator('#audit-pager span').textContent()).toMatch(/최신순/);
  }, 60_000);
});
