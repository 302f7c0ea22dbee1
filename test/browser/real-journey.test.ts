import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipWithoutTorch } from '../../gpu-runner/runner.fixtures.js';
import type { Platform } from '../../app/platform.js';
import type { RunningServer } from '../../app/http.js';
import type { CallContext } from '../../core/context.js';
import { ARTIFACTS, chromiumMissing, launchChromium } from './chromium.js';
import { startEmbeddedPlatform, type EmbeddedPlatform } from './embedded.fixtures.js';
import { signInAt } from './pages.fixtures.js';

// The headline journey against the REAL embedded platform (embedded.fixtures.ts: createPlatform with
// its embedded adapters and the rules-planner agent, the embedded GPU runner training the built-in
// PyTorch detector, and three simulated line-3 Jetsons running the edge-runner code, as `npm start`
// does). The training itself is shortened in the approval card's Edit form.
const HEADLINE = 'train a helmet detector on dataset helmets-demo and deploy it to line 3 Jetsons';

const skip = chromiumMissing() || (await skipWithoutTorch());

describe.skipIf(skip)('headline journey in Chromium against the real embedded platform', () => {
  let env: EmbeddedPlatform;
  let platform: Platform;
  let http: RunningServer;
  let chromium: Awaited<ReturnType<typeof launchChromium>>;
  let browser: Browser;
  let ctx: CallContext;

  beforeAll(async () => {
    env = await startEmbeddedPlatform();
    ({ platform, http, ctx } = env);
    chromium = await launchChromium();
    browser = chromium.browser;
  }, 60_000);

  afterAll(async () => {
    await chromium?.close();
    await env?.close();
  }, 30_000);

  async function signIn(role: 'operator' | 'approver'): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ locale: 'en-US', viewport: { width: 1400, height: 1000 } });
    // the sign-in page is reached as a new user reaches it: the app sends them there
    return { context, page: await signInAt(context, env.url, env.users[role].email, role, '/') };
  }

  it('trains on real per-epoch metrics, deploys to the line-3 edge runners after an approver approves, and audits every step', async () => {
    const { context, page } = await signIn('operator');
    await page.fill('#chat-input', HEADLINE);
    await page.click('#chat-send');
    await expect.poll(() => page.locator('#plan li.plan-step').count()).toBe(2);
    expect(await page.locator('#plan li.plan-step code').allTextContents()).toEqual([
      'start_training',
      'start_rollout',
    ]);
    const card = page.locator('.approval-card[data-risk="write"]');
    await card.waitFor();
    expect(await card.locator('code.tool').textContent()).toBe('start_training');
    expect(JSON.parse((await card.locator('pre.args').textContent())!)).toEqual({
      dataset: 'helmets-demo',
      epochs: 10,
      backend: 'builtin',
    });
    expect(await card.textContent()).toContain('Who may approve: operator or above');
    await page.screenshot({ path: path.join(ARTIFACTS, 'chat.png'), fullPage: true });
    await card.screenshot({ path: path.join(ARTIFACTS, 'approval-card.png') });

    // Every value the progress bar shows, so progress inside an epoch is seen even when it passes quickly.
    await page.evaluate(() => {
      const bar = document.getElementById('training-progress')!;
      const seen: string[] = [];
      (window as unknown as { progressSeen: string[] }).progressSeen = seen;
      new MutationObserver(() => seen.push(bar.textContent ?? '')).observe(bar, {
        childList: true,
        characterData: true,
        subtree: true,
      });
    });

    // Edit: a form generated from start_training's schema; a short, small training for the test.
    await card.locator('button[data-action="edit"]').click();
    const epochs = card.locator('form.edit-form input[name="epochs"]');
    await epochs.waitFor();
    expect(await epochs.inputValue()).toBe('10');
    await epochs.fill('2');
    await card.locator('form.edit-form input[name="imgsz"]').fill('64');
    await card.locator('form.edit-form button[type="submit"]').click();
    await page.locator('#plan li.plan-step[data-index="0"][data-state="waiting"]').waitFor();
    await page.locator('#training-card:not(.d-none)').waitFor();
    const jobId = (await page.locator('#training-job').textContent())!;
    // before the first batch the bar says the run is being prepared, not 100 %
    expect(await page.locator('#training-progress').textContent()).not.toBe('100%');
    const job = await platform.training.get(ctx, jobId);
    expect(job.epochs).toBe(2);
    expect(job.config).toMatchObject({ backend: 'builtin', imgsz: 64, epochs: 2 });

    // The chart follows the trainer's per-epoch metrics as the runner reports them.
    await page.locator('#training-card[data-epochs="2"]').waitFor({ timeout: 60_000 });
    const recorded = await platform.training.metrics(ctx, jobId);
    expect(recorded.map((r) => r.epoch)).toEqual([1, 2]);
    const chart = await page.evaluate(() => {
      const c = (
        window as unknown as {
          Chart: {
            getChart(el: Element): {
              data: { labels: string[]; datasets: Array<{ data: Array<number | null> }> };
            };
          };
        }
      ).Chart.getChart(document.getElementById('training-chart')!);
      return { labels: c.data.labels, loss: c.data.datasets[0]!.data, map: c.data.datasets[1]!.data };
    });
    expect(chart.labels).toEqual(['Epoch 1', 'Epoch 2']);
    for (const [i, r] of recorded.entries()) {
      expect(chart.loss[i]).toBeCloseTo(r.metrics.box_loss! + r.metrics.cls_loss!, 6);
      expect(chart.map[i]).toBeCloseTo(r.metrics.mAP50!, 6);
    }
    const progress = await page.evaluate(
      () => (window as unknown as { progressSeen: string[] }).progressSeen,
    );
    expect(
      progress.some((p) => /^\d+%$/.test(p) && Number.parseInt(p, 10) > 0 && Number.parseInt(p, 10) < 100),
      `progress seen: ${progress.join(', ')}`,
    ).toBe(true);
    await page.locator('#training-card').screenshot({ path: path.join(ARTIFACTS, 'training-chart.png') });

    // The trained version is registered; the deployment needs an approver, which the operator is not.
    const deploy = page.locator('.approval-card[data-risk="critical"]');
    await deploy.waitFor({ timeout: 60_000 });
    const trained = await platform.training.get(ctx, jobId);
    expect(trained.status).toBe('succeeded');
    const modelVersionId = trained.modelVersionId!;
    expect(await deploy.locator('code.tool').textContent()).toBe('start_rollout');
    expect(JSON.parse((await deploy.locator('pre.args').textContent())!)).toMatchObject({
      modelVersion: modelVersionId,
      target: { tag: 'line-3' },
    });
    await deploy.locator('.cannot-approve').waitFor();
    expect(await deploy.locator('button[data-action="approve"]').count()).toBe(0);

    const approver = await signIn('approver');
    await approver.page.goto(`${http.url}/#approvals`);
    const inbox = approver.page.locator('#approval-list .approval-card[data-risk="critical"]');
    await inbox.waitFor();
    await inbox.locator('button[data-action="approve"]').click();

    // The edge runners download, verify and load the model and report healthy; the rollout card shows them switch.
    await page.locator('#rollout-card:not(.d-none)').waitFor();
    await expect
      .poll(() => page.locator('#rollout-devices tr.switched').count(), { timeout: 60_000 })
      .toBe(3);
    await page.locator('#chat-log .msg', { hasText: '3 devices updated of 3' }).waitFor({ timeout: 30_000 });
    // a canary and one wave: the card ends on the last of two waves
    await expect.poll(() => page.locator('#rollout-summary').textContent()).toBe('completed: wave 2 of 2');
    const rollouts = await platform.rollouts.list(ctx, {});
    expect(rollouts).toHaveLength(1);
    expect(rollouts[0]!.state).toBe('completed');

    await page.goto(`${http.url}/#fleet`);
    const line3 = page.locator('#fleet-groups > div', { hasText: 'Group line-3' });
    await line3.waitFor();
    // people read the model as name@N (a link to its page), never its mv_ id
    const modelRef = (await platform.models.get(ctx, modelVersionId)).ref;
    await expect
      .poll(() => line3.locator('tbody tr td.model').allTextContents())
      .toEqual([modelRef, modelRef, modelRef]);

    await page.goto(`${http.url}/#audit`);
    await page.locator('#audit-badge[data-ok="true"]').waitFor();
    const threadId = (
      await platform.agent.listThreads({
        ...ctx,
        user: {
          userId: env.users.operator.id,
          email: env.users.operator.email,
          name: 'operator',
          role: 'operator',
          kind: 'user',
        },
      })
    )[0]!.id;
    await page.fill('#audit-thread', threadId);
    await page.click('#audit-filters button[type="submit"]');
    await expect
      .poll(async () => (await page.locator('#audit-rows tr').allTextContents()).join('\n'))
      .toMatch(/tool\.finished\s*start_rollout/);
    const rows = await page
      .locator('#audit-rows tr')
      .evaluateAll((trs) =>
        trs.map((tr) => Array.from(tr.querySelectorAll('td'), (td) => td.textContent ?? '')),
      );
    const has = (actor: string, action: string, tool: string) =>
      rows.some((r) => r[2] === actor && r[3] === action && r[4] === tool);
    expect(rows.some((r) => r[3] === 'plan.proposed')).toBe(true);
    for (const tool of ['start_training', 'start_rollout']) {
      expect(
        rows.some((r) => r[3] === 'tool.started' && r[4] === tool),
        `tool.started ${tool}`,
      ).toBe(true);
      expect(
        rows.some((r) => r[3] === 'tool.finished' && r[4] === tool),
        `tool.finished ${tool}`,
      ).toBe(true);
    }
    // the actor column names people (their account names here are their roles)
    expect(has('operator', 'approval.decided', 'start_training'), 'the operator approved the training').toBe(
      true,
    );
    expect(has('approver', 'approval.decided', 'start_rollout'), 'the approver approved the deployment').toBe(
      true,
    );
    await approver.context.close();
    await context.close();
  }, 150_000);
});
