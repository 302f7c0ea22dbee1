import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { skipWithoutTorch } from '../../gpu-runner/runner.fixtures.js';
import sharp from 'sharp';
import { makeEnvelope } from '../../protocol/envelope.js';
import { STREAMS } from '../../services/infra/broker/port.js';
import { zipOf } from '../../services/datasets/datasets.fixtures.js';
import { chromiumMissing, launchChromium } from './chromium.js';
import { LINE3, startEmbeddedPlatform, until, type EmbeddedPlatform } from './embedded.fixtures.js';
import { screenshotPath, signInAt } from './pages.fixtures.js';

// Issue 17, "done when": a new user, WITHOUT THE CHAT, uploads a dataset, trains and watches the
// training, evaluates, compares, promotes, deploys, watches the rollout per device, rolls back,
// reviews feedback by drawing a box and creates an API token, on the real embedded platform of
// `npm start` (embedded GPU runner, simulated line-3 Jetsons). Every change is a page button that
// asks for an approval, which the approver grants on the page, and then runs through runTool.
const skip = chromiumMissing() || (await skipWithoutTorch());
const MODEL = 'hardhats-builtin';

/** Every file of a folder, as zip entries under `top/`. */
function entriesOf(dir: string, top: string): Array<{ name: string; data: Buffer }> {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => {
      const abs = path.join(e.parentPath, e.name);
      return { name: `${top}/${path.relative(dir, abs).split(path.sep).join('/')}`, data: readFileSync(abs) };
    });
}

describe.skipIf(skip)('the whole model loop from the pages, without the chat, on the real platform', () => {
  let env: EmbeddedPlatform;
  let chromium: Awaited<ReturnType<typeof launchChromium>>;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    env = await startEmbeddedPlatform();
    chromium = await launchChromium();
    browser = chromium.browser;
    context = await browser.newContext({ locale: 'en-US', viewport: { width: 1400, height: 1000 } });
    page = await signInAt(context, env.url, env.users.approver.email, 'approver', '/');
  }, 90_000);

  afterEach(async (test) => {
    if (test.task.result?.state === 'fail')
      await page.screenshot({ path: screenshotPath('no-chat', test.task.name) }).catch(() => undefined);
  });

  afterAll(async () => {
    await context?.close();
    await chromium?.close();
    await env?.close();
  }, 30_000);

  /** Approves the approval card that appeared under `scope` for `tool`. */
  async function approve(scope: string, tool: string): Promise<void> {
    const card = page.locator(`${scope} .approval-card`);
    await card.waitFor();
    expect(await card.locator('.tool').textContent()).toBe(tool);
    await card.locator('button[data-action="approve"]').click();
  }

  /** Trains on the dataset page with the train form; answers the job id once it succeeded. */
  async function train(epochs: number): Promise<string> {
    await page.goto(`${env.url}/#datasets/hardhats`);
    await page.locator('#dataset-detail h2', { hasText: 'hardhats' }).waitFor();
    await page.locator('#dataset-train').waitFor();
    await page.fill('#train-epochs', String(epochs));
    await page.fill('#train-imgsz', '64');
    await page.click('#train-form button[type="submit"]');
    await approve('#dataset-train', 'start_training');
    await page.waitForURL(/#jobs\/job_/, { timeout: 30_000 });
    const jobId = decodeURIComponent(page.url().split('#jobs/')[1]!);
    // the job page follows the run live until it ends (its heading names this job, not the one shown before)
    await page
      .locator('#jobs-root h2', { hasText: jobId })
      .locator('[data-value="succeeded"]')
      .waitFor({ timeout: 180_000 });
    return jobId;
  }

  /** Deploys a version to line 3 from its model page and waits for the rollout page to show it completed. */
  async function deploy(ref: string): Promise<string> {
    await page.goto(`${env.url}/#models/${encodeURIComponent(ref)}`);
    await page.locator('#deploy-form').waitFor();
    await page.selectOption('#deploy-tag', 'line-3');
    await page.click('#deploy-form button[type="submit"]');
    await approve('#model-actions', 'start_rollout');
    await page.waitForURL(/#rollouts\/ro_/, { timeout: 30_000 });
    const rolloutId = decodeURIComponent(page.url().split('#rollouts/')[1]!);
    // per device: a canary, then the rest, each row turning green once the device serves the model
    const heading = page.locator('#rollouts-root h2', { hasText: rolloutId });
    await heading.waitFor();
    await expect.poll(() => page.locator('#rollout-page-devices tbody tr').count()).toBe(3);
    await heading.locator('[data-value="completed"]').waitFor({ timeout: 120_000 });
    await expect.poll(() => page.locator('#rollout-page-devices tbody tr.switched').count()).toBe(3);
    // every device's timeline: sent, then healthy, each with its time after the start
    expect(await page.locator('#rollout-page-devices tbody tr [data-step="sent"]').count()).toBe(3);
    expect(await page.locator('#rollout-page-devices tbody tr [data-step="healthy"]').count()).toBe(3);
    expect(await page.locator('#rollout-page-devices [data-step="sent"]').first().textContent()).toMatch(
      /^sent \+\d+ s$|^sent \+\d+ min \d+ s$/,
    );
    expect(await page.locator('#rollout-page-devices tbody tr td:nth-child(2)').allTextContents()).toContain(
      'canary',
    );
    return rolloutId;
  }

  it('uploads a zip by drag and drop (resuming after a failed chunk) and imports it after an approval', async () => {
    const demo = path.join(env.platform.config.DATA_DIR, 'demo', 'helmets-demo');
    const zip = await zipOf(entriesOf(demo, 'hardhats'));
    let chunks = 0;
    // the first chunk is lost on the way: the page asks where the upload stands and sends it again
    await page.route('**/api/uploads/*/chunk?*', (route) =>
      chunks++ === 0 ? route.abort('connectionreset') : route.continue(),
    );
    await page.click('.navbar a[data-page="datasets"]');
    await page.locator('#upload-drop').waitFor();
    await page.evaluate(
      ({ b64 }) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const drop = new DataTransfer();
        drop.items.add(new File([bytes], 'hardhats.zip', { type: 'application/zip' }));
        document
          .getElementById('upload-drop')!
          .dispatchEvent(new DragEvent('drop', { dataTransfer: drop, bubbles: true, cancelable: true }));
      },
      { b64: zip.toString('base64') },
    );
    await expect.poll(() => page.inputValue('#upload-name')).toBe('hardhats');
    await page.click('#upload-start');
    await approve('#upload-approval', 'import_dataset');
    await page.locator('#upload-report pre').waitFor({ timeout: 60_000 });
    expect(chunks).toBeGreaterThanOrEqual(2);
    expect(await page.locator('#upload-progress').getAttribute('aria-valuenow')).toBe('100');
    expect(await page.locator('#upload-report').textContent()).toMatch(/hardhats@1: \d+ images/);
    const imported = await env.platform.datasets.get(env.ctx, 'hardhats');
    const original = await env.platform.datasets.get(env.ctx, 'helmets-demo');
    expect(imported.stats.images).toBe(original.stats.images);
    expect(imported.stats.splits.test.images).toBeGreaterThan(0);
    // the dataset opens with its classes
    await page.locator('#dataset-detail h2', { hasText: 'hardhats' }).waitFor();
    await page.unroute('**/api/uploads/*/chunk?*');
  }, 120_000);

  it('trains from the dataset page, watches the job, evaluates and compares from the model pages', async () => {
    const jobId = await train(2);
    const job = await env.platform.training.get(env.ctx, jobId);
    expect(job.config).toMatchObject({ epochs: 2, imgsz: 64, backend: 'builtin' });
    expect(await page.locator('#jobs-root canvas').count()).toBe(1);
    // the files the run produced, each downloadable: the model itself among them
    await page.locator('#job-artifacts tr[data-file="model.onnx"] button[data-action="download"]').waitFor();
    await page.locator('#jobs-root dd[data-fact="jobs.model"] a').click();
    await page.locator('#model-detail h2', { hasText: `${MODEL}@1` }).waitFor();

    await page.selectOption('#evaluate-split', 'test');
    await page.click('#evaluate-form button[type="submit"]');
    await approve('#model-actions', 'evaluate_model');
    await expect.poll(() => page.locator('#model-evaluations tbody tr').count(), { timeout: 60_000 }).toBe(1);
    expect(await page.locator('#model-evaluations tbody tr td').first().textContent()).toBe('hardhats@1');
    const evaluations = await env.platform.evaluations.list(env.ctx, `${MODEL}@1`);
    expect(evaluations).toHaveLength(1);
    // the model page draws that evaluation: AP per class, one PR curve per class, the confusion matrix
    await page.locator('#model-eval-classes tbody tr').first().waitFor({ timeout: 30_000 });
    expect(await page.locator('#model-pr').count()).toBe(1);
    expect(await page.locator('#model-confusion tbody tr').count()).toBe(
      evaluations[0]!.confusion!.classes.length + 1,
    );

    await train(1);
    await page.click('.navbar a[data-page="models"]');
    await page.locator(`#model-rows a[href="#models/${MODEL}%402"]`).waitFor();
    await page.fill('#compare-a', `${MODEL}@1`);
    await page.fill('#compare-b', `${MODEL}@2`);
    await page.click('#compare-form button[type="submit"]');
    await page.locator('#compare-result tbody tr', { hasText: 'mAP50' }).first().waitFor();
  }, 420_000);

  it('promotes, deploys twice watching each device, and rolls the second rollout back', async () => {
    await page.goto(`${env.url}/#models/${MODEL}%402`);
    await page.locator('#promote-form').waitFor();
    await page.selectOption('#promote-stage', 'production');
    await page.click('#promote-form button[type="submit"]');
    await approve('#model-actions', 'promote_model');
    await page.locator('#model-detail h2 [data-value="production"]').waitFor();

    await deploy(`${MODEL}@1`);
    const second = await deploy(`${MODEL}@2`);
    const v1 = await env.platform.models.get(env.ctx, `${MODEL}@1`);
    const v2 = await env.platform.models.get(env.ctx, `${MODEL}@2`);
    const serving = async () =>
      (await env.platform.fleet.list(env.ctx, { tag: 'line-3' }))
        .filter((d) => LINE3.includes(d.id))
        .map((d) => d.modelVersionId);
    expect(await serving()).toEqual([v2.id, v2.id, v2.id]);

    await page.click('#rollouts-root button[data-action="rollback"]');
    await approve('#rollouts-root', 'rollback_rollout');
    await page.locator('#rollouts-root h2 [data-value="rolled_back"]').waitFor({ timeout: 60_000 });
    await until('line 3 back on version 1', async () => (await serving()).every((mv) => mv === v1.id));
    expect((await env.platform.rollouts.status(env.ctx, second)).state).toBe('rolled_back');
  }, 360_000);

  it('reviews a frame a device sent back by drawing a box, and creates an API token', async () => {
    // A line-3 device sends an uncertain frame as the edge runner does (signed upload URL, then
    // feedback.sample on the telemetry stream). The simulated devices' own sampling needs a top
    // confidence in [0.25, 0.5), which a two-epoch model at 64 px does not reliably reach.
    const v1 = await env.platform.models.get(env.ctx, `${MODEL}@1`);
    const [grant] = await env.platform.feedback.issueUploadUrls(LINE3[0]!, 1);
    const frames = path.join(env.platform.config.DATA_DIR, 'demo', 'helmets-demo', 'images', 'test');
    const frame = readFileSync(path.join(frames, readdirSync(frames).sort()[0]!));
    const put = await fetch(grant!.url, {
      method: 'PUT',
      body: new Uint8Array(frame),
      headers: { 'content-type': 'image/jpeg' },
    });
    expect(put.status).toBeLessThan(300);
    const { width, height } = await sharp(frame).metadata();
    await env.platform.infra.broker.publish(
      STREAMS.telemetry,
      makeEnvelope(
        'feedback.sample',
        {
          deviceId: LINE3[0]!,
          modelVersionId: v1.id,
          imageKey: grant!.key,
          sha256: createHash('sha256').update(frame).digest('hex'),
          width: width!,
          height: height!,
          reason: 'low_confidence',
          predictions: [],
          capturedAt: Date.now(),
        },
        { source: LINE3[0]! },
      ),
    );
    await page.goto(`${env.url}/#feedback`);
    const sample = page.locator('#feedback-list [data-sample]').first();
    await sample.waitFor({ timeout: 30_000 });
    await sample.click();
    const canvas = page.locator('#feedback-detail canvas.review-canvas');
    await canvas.waitFor();
    const before = Number(await canvas.getAttribute('data-boxes'));
    const box = (await canvas.boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.2, box.y + box.height * 0.2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.4, box.y + box.height * 0.45, { steps: 6 });
    await page.mouse.move(box.x + box.width * 0.6, box.y + box.height * 0.7, { steps: 6 });
    await page.mouse.up();
    await expect.poll(() => canvas.getAttribute('data-boxes')).toBe(String(before + 1));
    const id = (await page.locator('#feedback-list [data-sample].active').getAttribute('data-sample'))!;
    await page.click('#feedback-accept');
    await expect
      .poll(async () => (await env.platform.feedback.get(env.ctx, id)).status, { timeout: 15_000 })
      .toBe('accepted');
    const drawn = (await env.platform.feedback.get(env.ctx, id)).boxes!.at(-1)!;
    expect(drawn.x1).toBeCloseTo(0.2, 1);
    expect(drawn.y2).toBeCloseTo(0.7, 1);

    await page.click('.navbar a[data-page="settings"]');
    await page.fill('#token-name', 'line-3 CI');
    await page.selectOption('#token-role', 'viewer');
    await page.click('#token-create');
    const token = (await page.locator('#token-value').inputValue()).trim();
    const me = await fetch(`${env.url}/api/me`, { headers: { authorization: `Bearer ${token}` } });
    expect(me.status).toBe(200);
    expect((await me.json()).user.role).toBe('viewer');
  }, 90_000);
});
