import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Role } from '../../core/context.js';
import { startTestServer, type TestServer } from '../../web-chat/server.fixtures.js';
import { chromiumMissing, launchChromium } from './chromium.js';
import { heartbeat, screenshotPath, seedModelsAndDevices, signInPage, userCtx } from './pages.fixtures.js';

// Issue 17, part 3: the Jobs, job, Rollouts, rollout, device and model pages over the real
// training, registry, fleet and rollout services; every change goes through an approval.
const missing = chromiumMissing();

describe.skipIf(missing)('jobs, rollouts, device and model pages in Chromium', () => {
  let t: TestServer;
  let chromium: Awaited<ReturnType<typeof launchChromium>>;
  let browser: Browser;
  const open: BrowserContext[] = [];
  let current: Page | undefined;

  beforeAll(async () => {
    t = await startTestServer();
    chromium = await launchChromium();
    browser = chromium.browser;
    await seedModelsAndDevices(t);
  }, 60_000);

  afterEach(async (test) => {
    if (current && test.task.result?.state === 'fail')
      await current.screenshot({ path: screenshotPath('pages', test.task.name) }).catch(() => undefined);
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

  it('lists training jobs, shows a job with its log, and cancels it through an approval', async () => {
    const job = await t.platform.training.start(userCtx(t, 'operator'), {
      dataset: 'helmets-demo',
      config: { backend: 'builtin', model: 'tiny', epochs: 3, imgsz: 64, batch: 2 },
    });
    const page = await signIn('operator');
    await page.click('a[data-page="jobs"]');
    const row = page.locator(`#jobs-root tr[data-job="${job.id}"]`);
    await row.waitFor();
    expect(await row.locator('[data-value]').textContent()).toBe('queued');
    expect(await row.textContent()).toContain('0 of 3 epochs');
    await row.locator(`a[href="#jobs/${job.id}"]`).click();
    await page.locator('#jobs-root dd[data-fact="jobs.dataset"] a', { hasText: 'helmets-demo@1' }).waitFor();
    expect(await page.locator('#jobs-root .job-log').count()).toBe(1);
    await page.click('#jobs-root button[data-action="cancel"]');
    const card = page.locator('#jobs-root .approval-card[data-risk="write"]');
    await card.waitFor();
    expect(await card.locator('.tool').textContent()).toBe('cancel_training');
    await card.locator('button[data-action="approve"]').click();
    await expect
      .poll(async () => (await t.platform.training.get(userCtx(t, 'viewer'), job.id)).status)
      .toBe('cancelled');
    await page.locator('#jobs-root h2 [data-value="cancelled"]').waitFor({ timeout: 15_000 });
    // the cancellation is on the audit trail with its approval
    const audit = await (
      await (await t.login('operator')).fetch('/api/audit?tool=cancel_training&order=desc&limit=5')
    ).json();
    expect(audit.entries.map((e: { action: string }) => e.action)).toContain('tool.finished');
  }, 90_000);

  it('shows a rollout per device and pauses it only after an approval', async () => {
    const rollout = await t.platform.rollouts.start(userCtx(t, 'approver'), {
      model: 'helmets@2',
      target: { tag: 'line-3' },
    });
    const page = await signIn('operator', 'ko-KR');
    await page.goto(`${t.url}/#rollouts`);
    await page
      .locator(`#rollouts-root tr[data-rollout="${rollout.id}"] a[href="#models/helmets%402"]`)
      .waitFor();
    await page.click(`#rollouts-root a[href="#rollouts/${rollout.id}"]`);
    await expect.poll(() => page.locator('#rollout-page-devices tbody tr').count()).toBe(2);
    expect(await page.locator('#rollout-page-devices tbody tr a').allTextContents()).toEqual([
      'jetson-l3-a',
      'jetson-l3-b',
    ]);
    // a timeline column per device (its steps appear once the controller sends the deploy; the
    // no-chat journey checks them on real rollouts); nothing has happened yet here
    expect(await page.locator('#rollout-page-devices thead th').allTextContents()).toContain('진행 기록');
    expect(await page.locator('#rollout-page-devices [data-step]').count()).toBe(0);
    await page.click('#rollouts-root button[data-action="pause"]');
    const card = page.locator('#rollouts-root .approval-card');
    await card.waitFor();
    expect(await card.locator('.tool').textContent()).toBe('pause_rollout');
    await card.locator('button[data-action="approve"]').click();
    await expect
      .poll(async () => (await t.platform.rollouts.status(userCtx(t, 'viewer'), rollout.id)).state, {
        timeout: 15_000,
      })
      .toBe('paused');
    await page.locator('#rollouts-root h2 [data-value="paused"]').waitFor({ timeout: 15_000 });
    expect(await page.locator('#rollouts-root h2 [data-value="paused"]').textContent()).toBe('일시 중지');
    await page.locator('#rollouts-root button[data-action="resume"]').waitFor();
  }, 90_000);

  it('shows a device with its live figures, sparklines, model and model history', async () => {
    // a second heartbeat, before the page opens: the sparklines start from the kept history
    const ids = await t.platform.infra.db.kysely
      .selectFrom('devices')
      .select('model_version_id')
      .where('id', '=', 'jetson-l3-a')
      .executeTakeFirstOrThrow();
    await heartbeat(t, 'jetson-l3-a', ids.model_version_id!, { fps: 31 });
    const page = await signIn('viewer');
    await page.goto(`${t.url}/#fleet`);
    await page.click('#fleet-groups tr[data-device="jetson-l3-a"] td a[href="#devices/jetson-l3-a"]');
    await page.locator('#devices-root dd[data-fact="devices.model"] a').waitFor();
    expect(await page.locator('#devices-root dd[data-fact="devices.model"] a').textContent()).toBe(
      'helmets@1',
    );
    expect(await page.locator('#devices-root [data-figure="devices.latency"]').textContent()).toContain(
      '8.2 / 12.4 ms',
    );
    expect(await page.locator('#devices-root canvas').count()).toBe(3);
    const fps = await page.evaluate(
      () => (window as any).Chart.getChart(document.getElementById('device-fps')).data.datasets[0].data,
    );
    expect(fps).toEqual([29.6, 31]);
    // a viewer sees no rollback button
    expect(await page.locator('#devices-root button[data-action="rollback"]').count()).toBe(0);
  }, 60_000);

  it('shows a model page: metrics, where it is deployed, and a working ONNX download', async () => {
    const page = await signIn('viewer');
    await page.goto(`${t.url}/#models/helmets%401`);
    await page.locator('#model-detail #model-metrics').waitFor();
    expect(await page.locator('#model-detail h2').textContent()).toContain('helmets@1');
    expect(await page.locator('#model-metrics tr', { hasText: 'mAP50' }).textContent()).toBe('mAP500.610');
    expect(await page.locator('#model-deployed-on').textContent()).toBe('jetson-l3-a, jetson-l3-b');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#model-download')]);
    const file = await download.path();
    const { readFileSync } = await import('node:fs');
    expect(readFileSync(file!, 'utf8')).toBe('onnx-1');
  }, 60_000);

  it('browses a dataset: class colours with a legend and balance chart, split and class filters, paging, full-size view', async () => {
    const page = await signIn('viewer', 'ko-KR');
    await page.goto(`${t.url}/#datasets/helmets-demo`);
    await page.locator('#dataset-legend [data-class="head"]').waitFor();
    expect(await page.locator('#dataset-version option').allTextContents()).toEqual(['버전 1']);
    // one colour per class
    const swatches = await page
      .locator('#dataset-legend .legend-swatch')
      .evaluateAll((els) => els.map((e) => getComputedStyle(e).backgroundColor));
    expect(new Set(swatches).size).toBe(2);
    expect(await page.locator('#dataset-balance').count()).toBe(1);
    await expect.poll(() => page.locator('#dataset-samples canvas').count()).toBe(2);
    expect(await page.locator('#dataset-range').textContent()).toBe('이미지 2장 중 1–2');
    await page.selectOption('#dataset-split', 'val');
    await expect.poll(() => page.locator('#dataset-samples button.sample').count()).toBe(1);
    expect(await page.locator('#dataset-samples button.sample').getAttribute('data-split')).toBe('val');
    await page.selectOption('#dataset-split', '');
    await page.selectOption('#dataset-class', 'head');
    await expect.poll(() => page.locator('#dataset-samples button.sample').count()).toBe(1);
    expect(await page.locator('#dataset-samples button.sample').getAttribute('data-split')).toBe('train');
    await page.click('#dataset-samples button.sample');
    await page.locator('#image-dialog.show canvas').waitFor();
    expect(await page.locator('#image-dialog .modal-title').textContent()).toContain('200×120');
  }, 60_000);

  it('creates an API token in Settings (shown once, working), and revokes it', async () => {
    const page = await signIn('operator');
    await page.click('.navbar a[data-page="settings"]');
    await page.fill('#token-name', 'CI pipeline');
    expect(await page.locator('#token-role option').allTextContents()).toEqual(['viewer', 'operator']);
    await page.selectOption('#token-role', 'viewer');
    await page.click('#token-create');
    const token = (await page.locator('#token-value').inputValue()).trim();
    expect(token).toMatch(/^via_/);
    const me = await fetch(`${t.url}/api/me`, { headers: { authorization: `Bearer ${token}` } });
    expect(me.status).toBe(200);
    expect((await me.json()).user.role).toBe('viewer');
    const row = page.locator('#token-rows tbody tr', { hasText: 'CI pipeline' });
    expect(await row.locator('[data-value]').textContent()).toBe('active');
    page.once('dialog', (d) => void d.accept());
    await row.locator('button[data-action="revoke"]').click();
    await expect.poll(() => row.locator('[data-value]').textContent()).toBe('revoked');
    expect((await fetch(`${t.url}/api/me`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(
      401,
    );
  }, 60_000);
  it('sets a retrain policy in Settings through an approval and checks the policies now', async () => {
    const page = await signIn('operator', 'ko-KR');
    await page.goto(`${t.url}/#settings`);
    await page.locator('#retrain-form').waitFor();
    expect(await page.locator('#retrain-policies tbody tr').textContent()).toBe('아직 항목이 없습니다.');
    await page.selectOption('#retrain-model', 'helmets');
    await page.fill('#retrain-samples', '50');
    await page.fill('#retrain-tag', 'line-3');
    await page.fill('#retrain-drop', '0.1');
    await page.click('#retrain-form button[type="submit"]');
    const card = page.locator('#retrain-approval .approval-card');
    await card.waitFor();
    expect(await card.locator('.tool').textContent()).toBe('set_retrain_policy');
    await card.locator('button[data-action="approve"]').click();
    const row = page.locator('#retrain-policies tr[data-model="helmets"]');
    await row.waitFor();
    expect(await row.textContent()).toContain(
      '승인된 샘플 50개 대기, 또는 line-3의 신뢰도가 24시간 동안 0.10 하락',
    );
    const out = await (
      await (
        await t.login('viewer')
      ).fetch('/api/tools/list_retrain_policies', { method: 'POST', json: { args: {} } })
    ).json();
    expect(out.output.policies).toMatchObject([
      { model: 'helmets', minAcceptedSamples: 50, confidenceDropOver: { tag: 'line-3', drop: 0.1 } },
    ]);
    await page.click('#retrain-check');
    const check = page.locator('#retrain-approval .approval-card');
    await check.waitFor();
    expect(await check.locator('.tool').textContent()).toBe('check_retrain_policies');
    await check.locator('button[data-action="approve"]').click();
    await page.locator('#toast-box.alert-success:not(.d-none)').waitFor();
  }, 60_000);
});
