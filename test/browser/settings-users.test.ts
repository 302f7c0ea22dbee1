import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Role } from '../../core/context.js';
import { startTestServer, type TestServer } from '../../web-chat/server.fixtures.js';
import { chromiumMissing, launchChromium } from './chromium.js';
import { screenshotPath, signInPage } from './pages.fixtures.js';

// Issue 17, Deliver 3: Settings → people and roles per project, and projects; every change is an
// approval of that exact call, and the membership service refuses anyone but an admin.
const missing = chromiumMissing();

describe.skipIf(missing)('Settings: people, roles and projects in Chromium', () => {
  let t: TestServer;
  let chromium: Awaited<ReturnType<typeof launchChromium>>;
  let browser: Browser;
  const open: BrowserContext[] = [];
  let current: Page | undefined;

  beforeAll(async () => {
    t = await startTestServer();
    chromium = await launchChromium();
    browser = chromium.browser;
  }, 60_000);

  afterEach(async (test) => {
    if (current && test.task.result?.state === 'fail')
      await current
        .screenshot({ path: screenshotPath('settings-users', test.task.name) })
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
    await current.goto(`${t.url}/#settings`);
    await current.locator('#member-rows').waitFor();
    return current;
  }

  const approveCard = async (page: Page, box: string, tool: string) => {
    const card = page.locator(`${box} .approval-card`);
    await card.waitFor();
    expect(await card.locator('.tool').textContent()).toBe(tool);
    expect(await card.getAttribute('data-risk')).toBe('critical');
    await card.locator('button[data-action="approve"]').click();
  };

  it('lets an admin add a person with a role and create a project, each through an approval (Korean)', async () => {
    const page = await signIn('admin', 'ko-KR');
    expect(await page.locator('#users-settings h2').first().textContent()).toBe('사용자와 역할');
    expect(await page.locator('#member-rows tr[data-email="viewer@example.test"]').textContent()).toContain(
      '조회자',
    );
    await page.fill('#member-email', 'kim@example.test');
    await page.fill('#member-name', 'Kim Minji');
    await page.selectOption('#member-role', 'operator');
    await page.click('#member-form button[type="submit"]');
    await approveCard(page, '#member-approval', 'set_member_role');
    const row = page.locator('#member-rows tr[data-email="kim@example.test"]');
    await row.waitFor();
    expect(await row.textContent()).toContain('Kim Minji');
    expect(await row.locator('[data-role]').textContent()).toBe('운영자');

    await page.fill('#project-id', 'plant-2');
    await page.fill('#project-name', '2공장');
    await page.click('#project-form button[type="submit"]');
    await approveCard(page, '#project-approval', 'create_project');
    const project = page.locator('#project-rows tr[data-project="plant-2"]');
    await project.waitFor();
    expect(await project.textContent()).toContain('2공장');
    expect(await project.textContent()).toContain('관리자');

    const admin = await t.login('admin');
    const audit = await (await admin.fetch('/api/audit?limit=50')).text();
    expect(audit).toContain('set_member_role');
    expect(audit).toContain('create_project');
  }, 90_000);

  it('shows a viewer the people but no way to change them, and the service runs a role change only for an admin', async () => {
    const page = await signIn('viewer');
    expect(
      await page.locator('#member-rows tr[data-email="admin@example.test"] [data-role]').textContent(),
    ).toBe('admin');
    expect(await page.locator('#member-form').count()).toBe(0);
    expect(await page.locator('#project-form').count()).toBe(0);
    expect(await page.locator('#members-admin-only').textContent()).toMatch(/Only an admin/);

    const viewer = await t.login('viewer');
    const args = { email: 'viewer@example.test', role: 'admin' };
    const asked = await viewer.fetch('/api/approvals', {
      method: 'POST',
      json: { tool: 'set_member_role', args, reason: 'make me admin' },
    });
    expect(asked.status).toBe(403);
    // an operator may ask, and an admin may approve, but the membership service runs it only for an admin
    const operator = await t.login('operator');
    const request = await operator.fetch('/api/approvals', {
      method: 'POST',
      json: { tool: 'set_member_role', args, reason: 'make the viewer admin' },
    });
    expect(request.status).toBe(201);
    const { id } = (await request.json()) as { id: string };
    const admin = await t.login('admin');
    const decided = await admin.fetch(`/api/approvals/${id}/decide`, {
      method: 'POST',
      json: { decision: 'approve' },
    });
    expect(decided.status).toBe(200);
    const ran = await operator.fetch('/api/tools/set_member_role', {
      method: 'POST',
      json: { args, approvalId: id },
    });
    expect(ran.status).toBe(403);
    expect(await ran.text()).toMatch(/needs the admin role/);
    const members = (await (
      await viewer.fetch('/api/tools/list_members', { method: 'POST', json: { args: {} } })
    ).json()) as { output: { members: Array<{ email: string; role: string }> } };
    expect(members.output.members.find((m) => m.email === 'viewer@example.test')?.role).toBe('viewer');
  }, 60_000);
});
