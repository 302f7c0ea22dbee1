import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Role } from '../../core/context.js';
import { jpeg, writeTree } from '../../services/datasets/datasets.fixtures.js';
import { makeEnvelope } from '../../protocol/envelope.js';
import { startTestServer, TEST_PASSWORD, type TestServer } from '../../web-chat/server.fixtures.js';
import { chromiumMissing, launchChromium } from './chromium.js';
import { signInAt } from './pages.fixtures.js';

// Role checks, a Korean session and the read pages over a simulated training/fleet domain
// (evals/sim-platform); the headline journey against the real embedded platform is real-journey.test.ts.
const HEADLINE_KO = 'helmets-demo 데이터셋으로 헬멧 탐지 모델 학습하고 3번 라인 젯슨에 배포해줘';

const missing = chromiumMissing();

describe.skipIf(missing)('web chat in Chromium', () => {
  let t: TestServer;
  let chromium: Awaited<ReturnType<typeof launchChromium>>;
  let browser: Browser;

  beforeAll(async () => {
    t = await startTestServer();
    chromium = await launchChromium();
    browser = chromium.browser;
  }, 60_000);

  afterAll(async () => {
    await chromium?.close();
    await t?.close();
  });

  async function signIn(role: Role, locale = 'en-US'): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ locale, viewport: { width: 1400, height: 1000 } });
    // from "/" the app itself sends a new visitor to the sign-in page
    return { context, page: await signInAt(context, t.url, t.users[role].email, role, '/') };
  }

  it('does not let a viewer approve', async () => {
    const operator = await t.login('operator');
    await operator.fetch('/api/approvals', {
      method: 'POST',
      json: { tool: 'start_training', args: { dataset: 'helmets-v2' }, reason: 'viewer check' },
    });
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
  let chromium: Awaited<ReturnType<typeof launchChromium>>;
  let browser: Browser;

  beforeAll(async () => {
    t = await startTestServer();
    chromium = await launchChromium();
    browser = chromium.browser;
    const dir = mkdtempSync(path.join(tmpdir(), 'vpages-'));
    await writeTree(dir, {
      'data.yaml': 'names: [helmet, head]\n',
      'images/train/a.jpg': await jpeg(200, 120, 1),
      'labels/train/a.txt': '0 0.5 0.5 0.4 0.5\n1 0.2 0.2 0.1 0.1\n',
      'images/val/b.jpg': await jpeg(160, 120, 2),
      'labels/val/b.txt': '0 0.5 0.5 0.3 0.3\n',
    });
    const ctx = {
      user: {
        userId: t.users.operator.id,
        email: t.users.operator.email,
        name: 'Operator',
        role: 'operator' as const,
        kind: 'user' as const,
      },
      projectId: 'default',
      requestId: 'seed',
      log: t.platform.log,
    };
    await t.platform.datasets.import(ctx, {
      name: 'helmets-demo',
      description: 'hard hats',
      source: { kind: 'folder', path: dir },
    });
    // the Datasets page searches through the search index; this server runs no indexer loop
    await t.platform.reindex();
    rmSync(dir, { recursive: true, force: true });
    for (const [id, tag] of [
      ['jetson-l3-a', 'line-3'],
      ['jetson-l3-b', 'line-3'],
      ['jetson-l2-a', 'line-2'],
    ] as const) {
      await t.platform.fleet.handleTelemetry(
        makeEnvelope(
          'device.heartbeat',
          {
            deviceId: id,
            name: id,
            tags: [tag, 'jetson'],
            hardware: 'jetson-orin',
            runtime: {},
            provider: 'cpu',
            modelVersionId: null,
            state: 'idle',
            fps: 0,
            latencyP50Ms: 0,
            latencyP95Ms: 0,
            meanTopConfidence: null,
            cpuPercent: 5,
            memoryMb: 100,
            temperatureC: 40,
          },
          { source: id },
        ),
      );
    }
  }, 60_000);

  afterAll(async () => {
    await chromium?.close();
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
    await page.locator('#dataset-legend [data-class="helmet"]', { hasText: '2 boxes' }).waitFor();
    await expect.poll(() => page.locator('#dataset-samples canvas').count()).toBe(2);
    // The boxes are drawn in red over the (grey-ish) sample images.
    await expect
      .poll(() =>
        page.evaluate(() => {
          const canvas = document.querySelector('#dataset-samples canvas') as HTMLCanvasElement;
          const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
          let red = 0;
          for (let i = 0; i < data.length; i += 4)
            if (data[i]! > 200 && data[i + 1]! < 90 && data[i + 2]! < 90) red++;
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
