import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipWithoutTorch } from '../../gpu-runner/runner.fixtures.js';
import { ARTIFACTS, chromiumMissing, launchChromium } from './chromium.js';
import { freePort } from '../services.fixtures.js';

// The "done when": a new user runs `npm start` (= `node bin/visioninapp.js serve`) in a fresh
// folder, opens the printed URL, signs in with the printed admin credentials and completes the headline
// request in the browser. Only documented settings make it CI-sized: DEMO_PROFILE=tiny (a 40-image demo
// dataset and a 1-epoch starter model), 1 s device heartbeats, and no confidence gate (ROLLOUT_CONFIDENCE_MARGIN=off:
// two barely trained models' confidences differ by chance, which would make the rollout's outcome random);
// the training is shortened in the Edit form.
const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'bin', 'visioninapp.js');
const HEADLINE = 'train a helmet detector on dataset helmets-demo and deploy it to line 3 Jetsons';

const skip = chromiumMissing() || (await skipWithoutTorch());

describe.skipIf(skip)('npm start, then the headline request from the browser', () => {
  let cwd: string;
  let child: ChildProcess;
  let stdout = '';
  let stderr = '';
  let exited: Promise<number | null>;
  let chromium: Awaited<ReturnType<typeof launchChromium>>;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    cwd = mkdtempSync(path.join(tmpdir(), 'vnpmstart-'));
    const port = await freePort();
    // A fresh folder with no .env and no data: DATA_DIR defaults to ./data there.
    child = spawn(process.execPath, [BIN, 'serve'], {
      cwd,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: cwd,
        PORT: String(port),
        DEMO_PROFILE: 'tiny',
        SIMULATED_DEVICE_HEARTBEAT_S: '1',
        ROLLOUT_CONFIDENCE_MARGIN: 'off',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
    chromium = await launchChromium();
  }, 30_000);

  afterAll(async () => {
    await chromium?.close();
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(cwd, { recursive: true, force: true });
  }, 30_000);

  it('signs in with the printed admin credentials and completes training and deployment to line 3', async () => {
    const printed = await new Promise<{ url: string; email: string; password: string }>((resolve, reject) => {
      const deadline = setTimeout(
        () =>
          reject(new Error(`no admin credentials printed within 30 s; stdout: ${stdout}\nstderr: ${stderr}`)),
        30_000,
      );
      const check = () => {
        const m = stdout.match(/URL:\s+(\S+)\s+e-mail:\s+(\S+)\s+password:\s+(\S+)/);
        if (m) {
          clearTimeout(deadline);
          child.stdout!.off('data', check);
          resolve({ url: m[1]!, email: m[2]!, password: m[3]! });
        }
      };
      child.stdout!.on('data', check);
      check();
    });

    const context = await chromium.browser.newContext({
      locale: 'en-US',
      viewport: { width: 1400, height: 1000 },
    });
    const page = await context.newPage();
    page.on('pageerror', (err) => console.error(`page error: ${err.message}`));
    await page.goto(printed.url);
    await page.waitForURL(/login\.html/);
    await page.fill('#email', printed.email);
    await page.fill('#password', printed.password);
    await page.click('#login-submit');
    await page.waitForURL(/#chat/);
    await page.waitForFunction(() => document.body.dataset.role !== undefined);
    expect(await page.evaluate(() => document.body.dataset.role)).toBe('admin');

    // On first start `serve` generates the demo dataset, trains the starter model and rolls it out to
    // line-3 in the background; the terminal says "Demo ready" only once devices serve that model, so
    // a quick user never meets "no model deployed".
    await expect
      .poll(() => stdout, { timeout: 180_000, message: 'Demo ready printed' })
      .toMatch(
        /Demo ready: dataset helmets-demo, 3 simulated Jetson\(s\) on line-3, starter model helmets-demo-starter@1 serving/,
      );
    expect(stdout.indexOf('Preparing the demo')).toBeLessThan(stdout.indexOf('Demo ready'));
    expect(stdout).toContain(HEADLINE);
    const { rollouts } = (await (await page.request.get(`${printed.url}/api/rollouts`)).json()) as {
      rollouts: Array<{ state: string }>;
    };
    expect(rollouts.map((r) => r.state)).toEqual(['completed']);
    const { devices } = (await (await page.request.get(`${printed.url}/api/devices`)).json()) as {
      devices: Array<{ model: string | null }>;
    };
    expect(devices.map((d) => d.model)).toEqual(Array(3).fill('helmets-demo-starter@1'));

    await page.fill('#chat-input', HEADLINE);
    await page.click('#chat-send');
    const card = page.locator('.approval-card[data-risk="write"]');
    await card.waitFor();
    await card.locator('button[data-action="edit"]').click();
    await card.locator('form.edit-form input[name="epochs"]').fill('2');
    await card.locator('form.edit-form input[name="imgsz"]').fill('64');
    await card.locator('form.edit-form button[type="submit"]').click();
    await page.locator('#training-card[data-epochs="2"]').waitFor({ timeout: 90_000 });

    const deploy = page.locator('.approval-card[data-risk="critical"]');
    await deploy.waitFor({ timeout: 60_000 });
    expect(await deploy.locator('code.tool').textContent()).toBe('start_rollout');
    await deploy.locator('button[data-action="approve"]').click();
    const report = page.locator('#chat-log .msg', { hasText: /updated of \d+/ });
    await report.waitFor({ timeout: 120_000 }).catch(async (err: Error) => {
      await page.screenshot({ path: path.join(ARTIFACTS, 'npm-start-journey-failed.png'), fullPage: true });
      const rollout =
        (await page
          .locator('#rollout-card')
          .textContent()
          .catch(() => '')) ?? '';
      throw new Error(
        `${err.message}\nchat: ${await page.locator('#chat-log').textContent()}\nrollout card: ${rollout}\nserve output (tail): ${(stdout + stderr).slice(-3000)}`,
      );
    });
    await page.screenshot({ path: path.join(ARTIFACTS, 'npm-start-journey.png'), fullPage: true });
    const chat = (await page.locator('#chat-log').textContent())!;
    expect(chat, chat).toMatch(/completed/);
    expect(chat).toMatch(/3 devices updated of 3/);
    await context.close();
  }, 360_000);
});
