import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Role } from '../../services/context.js';
import { jpeg, writeTree } from '../../services/datasets/test-support.js';
import { makeEnvelope } from '../../services/infra/broker/envelope.js';
import { startTestServer, TEST_PASSWORD, type TestServer } from '../../web-chat/test-support.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.resolve(import.meta.dirname, '../../test-artifacts');
const HEADLINE = 'train a helmet detector on dataset helmets-demo and deploy it to line 3 Jetsons';
const HEADLINE_KO = 'helmets-demo 데이터셋으로 헬멧 탐지 모델 학습하고 3번 라인 젯슨에 배포해줘';

const missing = !existsSync(CHROMIUM);
if (missing) {
  if (process.env.REQUIRE_SERVICES === '1') throw new Error(`${CHROMIUM} is missing and REQUIRE_SERVICES=1: install Debian's chromium package`);
  console.warn(`skipping browser tests: ${CHROMIUM} not found (install Debian's chromium package to run them)`);
}

describe.skipIf(missing)('web chat in Chromium', () => {
  let t: TestServer;
  let browser: Browser;
  let profile: string;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    profile = mkdtempSync(path.join(tmpdir(), 'vchrome-'));
    t = await startTestServer();
    // playwright gives every launch a fresh --user-data-dir of its own (it refuses the flag); TMPDIR points it at ours.
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
      env: { ...process.env, TMPDIR: profile },
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await t?.close();
    rmSync(profile, { recursive: true, force: true });
  });

  async function signIn(role: Role, locale = 'en-US'): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ locale, viewport: { width: 1400, height: 1000 } });
    const page = await context.newPage();
    page.on('pageerror', (err) => console.error(`page error (${role}): ${err.message}`));
    await page.goto(`${t.url}/`);
    await page.waitForURL(/login\.html/);
    await page.fill('#email', t.users[role].email);
    await page.fill('#password', TEST_PASSWORD);
    await page.click('#login-submit');
    await page.waitForURL(/#chat/);
    await page.waitForFunction(() => document.body.dataset.role !== undefined);
    return { context, page };
  }

  it('completes the headline request: plan, approvals by role, live chart, devices switching, audit trail', async () => {
    const { context, page } = await signIn('operator');
    await page.fill('#chat-input', HEADLINE);
    await page.click('#chat-send');
    await expect.poll(() => page.locator('#plan li.plan-step').count()).toBe(2);
    expect(await page.locator('#plan li.plan-step code').allTextContents()).toEqual(['start_training', 'start_rollout']);
    const card = page.locator('.approval-card[data-risk="write"]');
    await card.waitFor();
    expect(await card.locator('code.tool').textContent()).toBe('start_training');
    expect(JSON.parse((await card.locator('pre.args').textContent())!)).toMatchObject({ dataset: 'helmets-demo' });
    expect(await card.textContent()).toContain('Who may approve: operator or above');
    await page.screenshot({ path: path.join(ARTIFACTS, 'chat.png'), fullPage: true });
    await card.screenshot({ path: path.join(ARTIFACTS, 'approval-card.png') });

    // Edit opens a form generated from the tool's JSON schema.
    await card.locator('button[data-action="edit"]').click();
    const epochs = card.locator('form.edit-form input[name="epochs"]');
    await epochs.waitFor();
    expect(await epochs.inputValue()).toBe('10');
    await epochs.fill('3');
    await card.locator('form.edit-form button[type="submit"]').click();
    await page.locator('#plan li.plan-step[data-index="0"][data-state="waiting"]').waitFor();
    await page.locator('#training-card:not(.d-none)').waitFor();
    const jobId = t.sim.jobs[0]!.id;
    expect(t.sim.jobs[0]!.epochs).toBe(3);

    for (let epoch = 1; epoch <= 3; epoch++) {
      for (const batch of [5, 10]) {
        t.platform.events.emit({ type: 'training.metrics', projectId: 'default', at: Date.now(), jobId, attempt: 1, epoch, epochs: 3, kind: 'progress', batch, batches: 10, metrics: { box_loss: 1 / epoch } } as never);
      }
      t.platform.events.emit({ type: 'training.metrics', projectId: 'default', at: Date.now(), jobId, attempt: 1, epoch, epochs: 3, kind: 'epoch', metrics: { box_loss: 1 / epoch, cls_loss: 0.5 / epoch, mAP50: 0.3 * epoch } } as never);
      await page.locator(`#training-card[data-epochs="${epoch}"]`).waitFor();
    }
    expect(await page.locator('#training-progress').textContent()).toBe('100%');
    await page.locator('#training-card').screenshot({ path: path.join(ARTIFACTS, 'training-chart.png') });

    t.sim.finishJob(jobId, true, 0.84);
    const deploy = page.locator('.approval-card[data-risk="critical"]');
    await deploy.waitFor();
    expect(await deploy.locator('code.tool').textContent()).toBe('start_rollout');
    // An operator may not approve a critical step: the card says so instead of offering buttons.
    await deploy.locator('.cannot-approve').waitFor();
    expect(await deploy.locator('button[data-action="approve"]').count()).toBe(0);

    const approver = await signIn('approver');
    await approver.page.goto(`${t.url}/#approvals`);
    const inbox = approver.page.locator('#approval-list .approval-card[data-risk="critical"]');
    await inbox.waitFor();
    await inbox.locator('button[data-action="approve"]').click();
    await page.locator('#rollout-card:not(.d-none)').waitFor();
    const rolloutId = t.sim.rollouts[0]!.id;
    for (const device of ['dev_l3_a', 'dev_l3_b']) {
      t.platform.events.emit({ type: 'rollout.progress', projectId: 'default', at: Date.now(), rolloutId, state: 'wave', currentWave: 0, waveCount: 1, counts: { healthy: 1 }, message: `${device} healthy on helmets@4`, deviceId: device } as never);
    }
    await expect.poll(() => page.locator('#rollout-devices tr.switched').count()).toBe(2);
    t.sim.finishRollout(rolloutId);
    await page.locator('#chat-log .msg', { hasText: '2 devices updated of 2' }).waitFor();

    await page.goto(`${t.url}/#audit`);
    await page.locator('#audit-badge[data-ok="true"]').waitFor();
    const threadId = (await t.agent.listThreads({ user: { userId: t.users.operator.id, email: '', name: '', role: 'operator', kind: 'user' }, projectId: 'default', requestId: 'r', log: t.platform.log }))[0]!.id;
    await page.fill('#audit-thread', threadId);
    await page.click('#audit-filters button[type="submit"]');
    await expect.poll(async () => (await page.locator('#audit-rows tr').allTextContents()).join('\n')).toMatch(/tool\.finished\s*start_rollout/);
    const rows = (await page.locator('#audit-rows tr').allTextContents()).join('\n');
    for (const action of ['plan.proposed', 'approval.decided', 'tool.started', 'tool.finished']) expect(rows).toContain(action);
    expect(rows).toContain(t.users.approver.id);
    await approver.context.close();
    await context.close();
  }, 120_000);

  it('does not let a viewer approve', async () => {
    const operator = await t.login('operator');
    await operator.fetch('/api/approvals', { method: 'POST', json: { tool: 'start_training', args: { dataset: 'helmets-v2' }, reason: 'viewer check' } });
    const { context, page } = await signIn('viewer');
    await page.goto(`${t.url}/#approvals`);
    const card = page.locator('#approval-list .approval-card').first();
    await card.waitFor();
    await card.locator('.cannot-approve').waitFor();
    expect(await page.locator('#approval-list button[data-action="approve"]').count()).toBe(0);
    await context.close();
  }, 60_000);

  it('runs a Korean-language session', async () => {
    const context = await browser.newContext({ locale: 'ko-KR' });
    const page = await context.newPage();
    await page.goto(`${t.url}/login.html`);
    expect(await page.locator('h2[data-i18n="login.heading"]').textContent()).toBe('로그인');
    await page.fill('#email', t.users.operator.email);
    await page.fill('#password', TEST_PASSWORD);
    await page.click('#login-submit');
    await page.waitForURL(/#chat/);
    expect(await page.locator('a[data-page="chat"]').textContent()).toBe('대화');
    expect(await page.evaluate(() => document.documentElement.lang)).toBe('ko');
    await page.fill('#chat-input', HEADLINE_KO);
    await page.click('#chat-send');
    const card = page.locator('.approval-card[data-risk="write"]');
    await card.waitFor();
    expect(await card.locator('.card-header span').first().textContent()).toBe('승인이 필요합니다');
    expect(await card.locator('button[data-action="approve"]').textContent()).toBe('승인');
    await page.selectOption('#lang', 'en');
    expect(await page.locator('a[data-page="chat"]').textContent()).toBe('Chat');
    await context.close();
  }, 60_000);
});

describe.skipIf(missing)('web pages in Chromium', () => {
  let t: TestServer;
  let browser: Browser;

  beforeAll(async () => {
    t = await startTestServer();
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
    const dir = mkdtempSync(path.join(tmpdir(), 'vpages-'));
    await writeTree(dir, {
      'data.yaml': 'names: [helmet, head]\n',
      'images/train/a.jpg': await jpeg(200, 120, 1),
      'labels/train/a.txt': '0 0.5 0.5 0.4 0.5\n1 0.2 0.2 0.1 0.1\n',
      'images/val/b.jpg': await jpeg(160, 120, 2),
      'labels/val/b.txt': '0 0.5 0.5 0.3 0.3\n',
    });
    const ctx = { user: { userId: t.users.operator.id, email: t.users.operator.email, name: 'Operator', role: 'operator' as const, kind: 'user' as const }, projectId: 'default', requestId: 'seed', log: t.platform.log };
    await t.platform.datasets.import(ctx, { name: 'helmets-demo', description: 'hard hats', source: { kind: 'folder', path: dir } });
    rmSync(dir, { recursive: true, force: true });
    for (const [id, tag] of [['jetson-l3-a', 'line-3'], ['jetson-l3-b', 'line-3'], ['jetson-l2-a', 'line-2']] as const) {
      await t.platform.fleet.handleTelemetry(
        makeEnvelope('device.heartbeat', { deviceId: id, name: id, tags: [tag, 'jetson'], hardware: 'jetson-orin', runtime: {}, provider: 'cpu', modelVersionId: null, state: 'idle', fps: 0, latencyP50Ms: 0, latencyP95Ms: 0, meanTopConfidence: null, cpuPercent: 5, memoryMb: 100, temperatureC: 40 }, { source: id }),
      );
    }
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  it('shows datasets with class counts and draws sample boxes on canvases; lists the fleet by line', async () => {
    const context = await browser.newContext({ locale: 'en-US' });
    const page = await context.newPage();
    await page.goto(`${t.url}/login.html`);
    await page.fill('#email', t.users.viewer.email);
    await page.fill('#password', TEST_PASSWORD);
    await page.click('#login-submit');
    await page.waitForURL(/#chat/);
    await page.goto(`${t.url}/#datasets`);
    await page.fill('#dataset-q', 'helmet');
    await page.click('#dataset-search button');
    await page.locator('#dataset-list li', { hasText: 'helmets-demo' }).click();
    await page.locator('#dataset-detail li', { hasText: 'helmet: 2 boxes' }).waitFor();
    await expect.poll(() => page.locator('#dataset-samples canvas').count()).toBe(2);
    // The boxes are drawn in red over the (grey-ish) sample images.
    await expect
      .poll(() =>
        page.evaluate(() => {
          const canvas = document.querySelector('#dataset-samples canvas') as HTMLCanvasElement;
          const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
          let red = 0;
          for (let i = 0; i < data.length; i += 4) if (data[i]! > 200 && data[i + 1]! < 90 && data[i + 2]! < 90) red++;
          return red;
        }),
      )
      .toBeGreaterThan(50);
    await page.goto(`${t.url}/#fleet`);
    const line3 = page.locator('#fleet-groups > div', { hasText: 'Group line-3' });
    await line3.waitFor();
    expect(await line3.locator('tbody tr').count()).toBe(2);
    expect(await line3.textContent()).toContain('Online');
    await context.close();
  }, 60_000);
});
