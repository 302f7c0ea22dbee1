import { createHash } from 'node:crypto';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeEnvelope } from '../../protocol/envelope.js';
import { jpeg } from '../../services/datasets/datasets.fixtures.js';
import { startTestServer, type TestServer } from '../../web-chat/server.fixtures.js';
import { chromiumMissing, launchChromium } from './chromium.js';
import { screenshotPath, seedModelsAndDevices, signInPage, userCtx } from './pages.fixtures.js';

// Issue 17, part 4: review feedback like Label Studio: a filtered queue with thumbnails, a canvas
// to draw, move and relabel boxes with the keyboard, accept with auto-advance, and a dataset version
// made from the accepted samples, each change through an approval.
const missing = chromiumMissing();

describe.skipIf(missing)('feedback review in Chromium', () => {
  let t: TestServer;
  let chromium: Awaited<ReturnType<typeof launchChromium>>;
  let browser: Browser;
  const open: BrowserContext[] = [];
  let current: Page | undefined;
  const samples: string[] = [];

  beforeAll(async () => {
    t = await startTestServer();
    chromium = await launchChromium();
    browser = chromium.browser;
    const { v1 } = await seedModelsAndDevices(t);
    for (const [device, seed] of [
      ['jetson-l3-a', 1],
      ['jetson-l3-b', 2],
    ] as const) {
      const [grant] = await t.platform.feedback.issueUploadUrls(device, 1);
      const bytes = await jpeg(320, 240, seed);
      const put = await fetch(grant!.url, {
        method: 'PUT',
        body: new Uint8Array(bytes),
        headers: { 'content-type': 'image/jpeg' },
      });
      expect(put.status).toBeLessThan(300);
      await t.platform.feedback.handleTelemetry(
        makeEnvelope(
          'feedback.sample',
          {
            deviceId: device,
            modelVersionId: v1,
            imageKey: grant!.key,
            sha256: createHash('sha256').update(bytes).digest('hex'),
            width: 320,
            height: 240,
            reason: 'low_confidence',
            predictions: [{ box: [40, 30, 160, 120], classId: 0, className: 'helmet', score: 0.41 }],
            capturedAt: Date.now() - 1000,
          },
          { source: device },
        ),
      );
    }
    const { items } = await t.platform.feedback.list(userCtx(t, 'viewer'), { status: 'pending' });
    samples.push(...items.map((s) => s.id));
  }, 60_000);

  afterEach(async (test) => {
    if (current && test.task.result?.state === 'fail')
      await current.screenshot({ path: screenshotPath('review', test.task.name) }).catch(() => undefined);
    current = undefined;
    for (const c of open.splice(0)) await c.close();
  });

  afterAll(async () => {
    await chromium?.close();
    await t?.close();
  });

  /** Drags on the canvas between two points given in image pixels. */
  async function drag(page: Page, from: [number, number], to: [number, number]): Promise<void> {
    const canvas = page.locator('#feedback-detail canvas.review-canvas');
    const box = (await canvas.boundingBox())!;
    const sx = box.width / 320;
    const sy = box.height / 240;
    await page.mouse.move(box.x + from[0] * sx, box.y + from[1] * sy);
    await page.mouse.down();
    await page.mouse.move(box.x + ((from[0] + to[0]) / 2) * sx, box.y + ((from[1] + to[1]) / 2) * sy, {
      steps: 4,
    });
    await page.mouse.move(box.x + to[0] * sx, box.y + to[1] * sy, { steps: 4 });
    await page.mouse.up();
  }

  it('draws, relabels and moves boxes on a canvas, accepts with auto-advance, then makes a dataset version', async () => {
    expect(samples).toHaveLength(2);
    const context = await browser.newContext({ locale: 'en-US', viewport: { width: 1400, height: 1000 } });
    open.push(context);
    const page = (current = await signInPage(context, t, 'operator'));
    await page.goto(`${t.url}/#feedback`);
    await expect.poll(() => page.locator('#feedback-list [data-sample]').count()).toBe(2);
    await expect.poll(() => page.locator('#feedback-list img.feedback-thumb[src]').count()).toBe(2);
    // a filter narrows the queue
    await page.selectOption('#feedback-device', 'jetson-l3-b');
    await expect.poll(() => page.locator('#feedback-list [data-sample]').count()).toBe(1);
    await page.selectOption('#feedback-device', '');
    await expect.poll(() => page.locator('#feedback-list [data-sample]').count()).toBe(2);

    await page.locator('#feedback-list [data-sample]').first().click();
    const canvas = page.locator('#feedback-detail canvas.review-canvas');
    await expect.poll(() => canvas.getAttribute('data-boxes')).toBe('1');
    const first = (await page.locator('#feedback-list [data-sample].active').getAttribute('data-sample'))!;
    // draw a second box and make it a "head" with the keyboard
    await drag(page, [200, 140], [280, 220]);
    await expect.poll(() => canvas.getAttribute('data-boxes')).toBe('2');
    await page.keyboard.press('2');
    await page.click('#feedback-accept');
    // auto-advance: the other sample opens, the queue shrinks
    await expect.poll(() => page.locator('#feedback-list [data-sample]').count()).toBe(1);
    await expect
      .poll(async () => (await t.platform.feedback.get(userCtx(t, 'viewer'), first)).status)
      .toBe('accepted');
    const accepted = (await t.platform.feedback.get(userCtx(t, 'viewer'), first)).boxes!;
    expect(accepted.map((b) => b.className)).toEqual(['helmet', 'head']);
    expect(accepted[1]!.x1).toBeCloseTo(200 / 320, 1);
    expect(accepted[1]!.y2).toBeCloseTo(220 / 240, 1);

    // move the predicted box of the second sample 40 px right, accept with Enter
    const second = samples.find((s) => s !== first)!;
    await expect
      .poll(() => page.locator('#feedback-list [data-sample].active').getAttribute('data-sample'))
      .toBe(second);
    await expect.poll(() => canvas.getAttribute('data-boxes')).toBe('1');
    await drag(page, [100, 75], [140, 75]);
    await canvas.press('Enter');
    await page.locator('#feedback-done').waitFor();
    const moved = (await t.platform.feedback.get(userCtx(t, 'viewer'), second)).boxes!;
    expect(moved).toHaveLength(1);
    expect(moved[0]!.x1).toBeCloseTo(80 / 320, 1);
    expect(moved[0]!.x2).toBeCloseTo(200 / 320, 1);

    // the accepted samples become a dataset version, through its approval
    page.once('dialog', (d) => void d.accept('helmets-demo'));
    await page.click('#feedback-to-dataset');
    const card = page.locator('#feedback-actions .approval-card');
    await card.waitFor();
    expect(await card.locator('.tool').textContent()).toBe('feedback_to_dataset');
    await card.locator('button[data-action="approve"]').click();
    await page.locator('#toast-box.alert-success:not(.d-none)').waitFor();
    expect(await page.locator('#toast').textContent()).toBe('helmets-demo@2 made from 2 accepted samples.');
    expect((await t.platform.datasets.get(userCtx(t, 'viewer'), 'helmets-demo@2')).stats.images).toBe(4);
  }, 120_000);
});
