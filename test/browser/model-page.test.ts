import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PROJECT_ID } from '../../services/accounts/index.js';
import {
  buildFixtureDetector,
  HELMET_AP,
  png,
  registerFixtureModel,
  writeFixtureDataset,
} from '../../services/models/models.fixtures.js';
import { startTestServer, type TestServer } from '../../web-chat/server.fixtures.js';
import { ARTIFACTS, chromiumMissing, launchChromium } from './chromium.js';
import { screenshotPath, signInPage, userCtx } from './pages.fixtures.js';

// The model page shows the newest evaluation (per-class AP, PR curves, confusion matrix) recorded by
// the real evaluation service, and runs the version on an image the person picks ("try on an
// image"), on the fixed-output detector of services/models/models.fixtures.ts: on any 64x64 image
// it finds helmet 0.9 at [8,8,24,24], head 0.8 at [40,10,56,26] and helmet 0.4 at [8,40,24,56].
const missing = chromiumMissing();

describe.skipIf(missing)('model page: evaluation and "try on an image" in Chromium', () => {
  let t: TestServer;
  let chromium: Awaited<ReturnType<typeof launchChromium>>;
  let work: string;
  const open: BrowserContext[] = [];
  let current: Page | undefined;

  beforeAll(async () => {
    t = await startTestServer();
    chromium = await launchChromium();
    work = await mkdtemp(path.join(tmpdir(), 'vbrowser-model-'));
    const ctx = userCtx(t, 'operator');
    const onnx = await buildFixtureDetector(work);
    await writeFixtureDataset(path.join(work, 'ds'));
    await t.platform.datasets.import(ctx, {
      name: 'helmets-eval',
      source: { kind: 'folder', path: path.join(work, 'ds') },
    });
    const store = t.platform.infra.storage;
    const v = await registerFixtureModel(t.platform.models, store, onnx, 'job_mp_1', {}, DEFAULT_PROJECT_ID);
    await t.platform.evaluations.evaluate(ctx, { modelVersion: v.ref });
    await registerFixtureModel(t.platform.models, store, onnx, 'job_mp_2', {}, DEFAULT_PROJECT_ID);
  }, 90_000);

  afterEach(async (test) => {
    if (current && test.task.result?.state === 'fail')
      await current.screenshot({ path: screenshotPath('model-page', test.task.name) }).catch(() => undefined);
    current = undefined;
    for (const c of open.splice(0)) await c.close();
  });

  afterAll(async () => {
    await chromium?.close();
    await t?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function openModel(locale: string, ref: string): Promise<Page> {
    const context = await chromium.browser.newContext({ locale, viewport: { width: 1400, height: 1000 } });
    open.push(context);
    current = await signInPage(context, t, 'viewer');
    await current.goto(`${t.url}/#models/${encodeURIComponent(ref)}`);
    await current.locator('#model-detail #model-insights').waitFor();
    return current;
  }

  const cells = (page: Page, selector: string) =>
    page
      .locator(selector)
      .evaluateAll((trs) => trs.map((tr) => Array.from(tr.querySelectorAll('th, td'), (c) => c.textContent)));

  for (const [locale, text] of [
    ['en-US', { confusion: 'Confusion matrix', background: 'background', found: '3 objects found' }],
    ['ko-KR', { confusion: '혼동 행렬', background: '배경', found: '객체 3개를' }],
  ] as const) {
    it(`shows AP per class, the PR curves and the confusion matrix of the newest evaluation (${locale})`, async () => {
      const page = await openModel(locale, 'helmets@1');
      expect(await cells(page, '#model-eval-classes tbody tr')).toEqual([
        ['helmet', '3', HELMET_AP.toFixed(3), HELMET_AP.toFixed(3), '0.500', '0.667'],
        ['head', '2', '1.000', '0.600', '1.000', '1.000'],
      ]);
      // one curve per class, in the class colours, read back from chart.js
      const curves = await page.evaluate(() => {
        const chart = (window as any).Chart.getChart(document.getElementById('model-pr'));
        return chart.data.datasets.map((d: any) => [
          d.borderColor,
          d.data.length,
          d.data[66].y,
          d.data[67].y,
        ]);
      });
      expect(curves).toEqual([
        ['#ff3b30', 101, 1, 0],
        ['#0a84ff', 101, 1, 1],
      ]);
      expect(await page.locator('#model-insights h3', { hasText: text.confusion }).count()).toBe(1);
      // counts[actual][predicted]: both first helmets and both heads found, D3 twice on nothing, one helmet missed
      expect(await cells(page, '#model-confusion tr')).toEqual([
        [expect.any(String), 'helmet', 'head', text.background],
        ['helmet', '2', '0', '1'],
        ['head', '0', '2', '0'],
        [text.background, '2', '0', '0'],
      ]);
      await page.screenshot({ path: path.join(ARTIFACTS, `model-page-${locale}.png`), fullPage: true });
    }, 60_000);

    it(`runs the version on a picked image and draws its boxes, one colour per class (${locale})`, async () => {
      const page = await openModel(locale, 'helmets@1');
      await page.locator('#model-try-file').setInputFiles({
        name: 'shot.png',
        mimeType: 'image/png',
        buffer: await png(3),
      });
      await page.locator('#model-try-summary').waitFor();
      expect(await page.locator('#model-try-summary').textContent()).toContain(text.found);
      expect(await page.locator('#model-try-legend span[data-class-name]').allTextContents()).toEqual([
        'helmet 2',
        'head 1',
      ]);
      // the left edge of the helmet box is red, of the head box blue (the image itself is flat grey-blue)
      await page.waitForFunction(() => {
        const c = document.querySelector('#model-try-result canvas') as HTMLCanvasElement | null;
        return c !== null && c.getContext('2d')!.getImageData(8, 16, 1, 1).data[3] === 255;
      });
      const pixels = await page.evaluate(() => {
        const g = (document.querySelector('#model-try-result canvas') as HTMLCanvasElement).getContext('2d')!;
        return [g.getImageData(8, 16, 1, 1).data, g.getImageData(40, 18, 1, 1).data].map((d) => [
          d[0],
          d[1],
          d[2],
        ]);
      });
      expect(pixels).toEqual([
        [0xff, 0x3b, 0x30],
        [0x0a, 0x84, 0xff],
      ]);
    }, 60_000);
  }

  it('says how to get an evaluation when a version has none', async () => {
    const page = await openModel('en-US', 'helmets@2');
    expect(await page.locator('#model-insights').textContent()).toMatch(/No evaluation yet/);
    expect(await page.locator('#model-try').count()).toBe(1);
    // a viewer has no action forms, and no stray "null" where they would be
    expect(await page.locator('#model-detail').textContent()).not.toMatch(/\bnull\b/);
  }, 60_000);
});
