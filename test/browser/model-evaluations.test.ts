import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PROJECT_ID } from '../../services/accounts/index.js';
import type { CallContext } from '../../core/context.js';
import { silentLogger } from '../../core/log.js';
import {
  buildFixtureDetector,
  HELMET_AP,
  registerFixtureModel,
  writeFixtureDataset,
} from '../../services/models/models.fixtures.js';
import { startTestServer, type TestServer } from '../../web-chat/server.fixtures.js';
import { ARTIFACTS, chromiumMissing, launchChromium } from './chromium.js';
import { signInPage } from './pages.fixtures.js';

// The models page lists a version's evaluations (recorded by the real evaluation service on the
// fixed-output detector of services/models/models.fixtures.ts), in English and in Korean.
const missing = chromiumMissing();

describe.skipIf(missing)('model evaluations on the models page', () => {
  let t: TestServer;
  let chromium: Awaited<ReturnType<typeof launchChromium>>;
  let work: string;

  beforeAll(async () => {
    t = await startTestServer();
    chromium = await launchChromium();
    work = await mkdtemp(path.join(tmpdir(), 'vbrowser-eval-'));
    const ctx: CallContext = {
      user: {
        userId: t.users.operator.id,
        email: t.users.operator.email,
        name: 'operator',
        role: 'operator',
        kind: 'user',
      },
      projectId: DEFAULT_PROJECT_ID,
      requestId: 'browser-eval',
      log: silentLogger(),
    };
    const onnx = await buildFixtureDetector(work);
    await writeFixtureDataset(path.join(work, 'ds'));
    await t.platform.datasets.import(ctx, {
      name: 'helmets-eval',
      source: { kind: 'folder', path: path.join(work, 'ds') },
    });
    const v = await registerFixtureModel(
      t.platform.models,
      t.platform.infra.storage,
      onnx,
      'job_browser_1',
      {},
      DEFAULT_PROJECT_ID,
    );
    await t.platform.evaluations.evaluate(ctx, { modelVersion: v.ref });
    await t.platform.evaluations.evaluate(ctx, { modelVersion: v.ref, split: 'train' });
  }, 90_000);

  afterAll(async () => {
    await chromium?.close();
    await t?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  for (const [locale, labels] of [
    ['en-US', { button: 'Show', heading: 'Evaluations of helmets@1', precision: 'Precision' }],
    ['ko-KR', { button: '보기', heading: 'helmets@1 평가 기록', precision: '정밀도' }],
  ] as const) {
    it(`shows the evaluation history of a version (${locale})`, async () => {
      const context = await chromium.browser.newContext({ locale, viewport: { width: 1400, height: 1000 } });
      const errors: string[] = [];
      context.on('weberror', (err) => errors.push(err.error().message));
      const page = await signInPage(context, t, 'viewer');
      await page.goto(`${t.url}/#models`);
      const row = page.locator('#model-rows tr', { hasText: 'helmets@1' });
      await row.locator('button').click();
      expect(await row.locator('button').textContent()).toBe(labels.button);
      await page.locator('#model-evaluations table').waitFor();
      expect(await page.locator('#model-evaluations h6').textContent()).toBe(labels.heading);
      expect(await page.locator('#model-evaluations thead th').allTextContents()).toContain(labels.precision);
      const rows = await page
        .locator('#model-evaluations tbody tr')
        .evaluateAll((trs) => trs.map((tr) => Array.from(tr.querySelectorAll('td'), (td) => td.textContent)));
      // Newest first: the train split (mAP50 0.5), then the test split.
      expect(rows.map((r) => r.slice(0, 4))).toEqual([
        ['helmets-eval@1', 'train', '1', '0.500'],
        ['helmets-eval@1', 'test', '2', ((HELMET_AP + 1) / 2).toFixed(3)],
      ]);
      expect(rows[1]![7]).toBe(`helmet ${HELMET_AP.toFixed(3)}, head 1.000`);
      expect(errors).toEqual([]);
      await page.screenshot({
        path: path.join(ARTIFACTS, `model-evaluations-${locale}.png`),
        fullPage: true,
      });
      await context.close();
    }, 60_000);
  }
});
