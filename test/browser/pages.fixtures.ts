import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import type { CallContext, Role } from '../../core/context.js';
import { makeEnvelope, type MessagePayload } from '../../protocol/envelope.js';
import { jpeg, writeTree } from '../../services/datasets/datasets.fixtures.js';
import { TEST_PASSWORD, type TestServer } from '../../web-chat/server.fixtures.js';
import { ARTIFACTS } from './chromium.js';

/** A call context of one of the test server's users. */
export function userCtx(t: TestServer, role: Role): CallContext {
  const u = t.users[role];
  return {
    user: { userId: u.id, email: u.email, name: role[0]!.toUpperCase() + role.slice(1), role, kind: 'user' },
    projectId: 'default',
    requestId: `seed-${role}`,
    log: t.platform.log,
  };
}

/**
 * Seeds the real registry and fleet of a test server: helmets@1 (mAP50 0.61) and helmets@2 (0.74),
 * a small dataset helmets-demo, and two line-3 devices serving helmets@1. Returns the version ids.
 */
export async function seedModelsAndDevices(t: TestServer): Promise<{ v1: string; v2: string }> {
  const ids: Record<string, string> = {};
  for (const [version, mAP50] of [
    [1, 0.61],
    [2, 0.74],
  ] as const) {
    const jobId = `job_seed${version}`;
    const put = await t.platform.infra.storage.put(
      `jobs/${jobId}/1/model.onnx`,
      Buffer.from(`onnx-${version}`),
    );
    const { version: v } = await t.platform.models.registerFromArtifact({
      projectId: 'default',
      name: 'helmets',
      job: {
        id: jobId,
        attempt: 1,
        runnerId: 'gpu-1',
        config: { backend: 'builtin', model: 'tiny', epochs: 1, imgsz: 320, batch: 4 },
        dataset: { name: 'helmets-demo', version: 1 },
      },
      artifact: {
        jobId,
        attempt: 1,
        runnerId: 'gpu-1',
        artifacts: [{ name: 'model.onnx', key: put.key, sha256: put.sha256, size: put.size }],
        model: { layout: 'ultralytics', inputSize: 320, classNames: ['helmet', 'head'] },
        metrics: { mAP50, precision: 0.8 },
      },
      createdBy: t.users.operator.id,
    });
    ids[`v${version}`] = v.id;
  }
  for (const id of ['jetson-l3-a', 'jetson-l3-b']) await heartbeat(t, id, ids.v1!);
  const dir = mkdtempSync(path.join(tmpdir(), 'vseed-'));
  await writeTree(dir, {
    'data.yaml': 'names: [helmet, head]\n',
    'images/train/a.jpg': await jpeg(200, 120, 1),
    'labels/train/a.txt': '0 0.5 0.5 0.4 0.5\n1 0.2 0.2 0.1 0.1\n',
    'images/val/b.jpg': await jpeg(160, 120, 2),
    'labels/val/b.txt': '0 0.5 0.5 0.3 0.3\n',
  });
  await t.platform.datasets.import(userCtx(t, 'operator'), {
    name: 'helmets-demo',
    description: 'hard hats',
    source: { kind: 'folder', path: dir },
  });
  rmSync(dir, { recursive: true, force: true });
  return { v1: ids.v1!, v2: ids.v2! };
}

/**
 * Signs `email` in through the sign-in page in a new page of `context` (closed by the caller). From
 * `start` "/" the app itself must send the person to the sign-in page first.
 */
export async function signInAt(
  context: BrowserContext,
  url: string,
  email: string,
  label: string,
  start: '/' | '/login.html' = '/login.html',
  password = TEST_PASSWORD,
): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (err) => console.error(`page error (${label}): ${err.message}`));
  await page.goto(`${url}${start}`);
  if (start === '/') await page.waitForURL(/login\.html/);
  await page.fill('#email', email);
  await page.fill('#password', password);
  await page.click('#login-submit');
  await page.waitForURL(/#chat/);
  await page.waitForFunction(() => document.body.dataset.role !== undefined);
  return page;
}

/** Signs a role of the test server in through the sign-in page in a new browser context (closed by the caller). */
export function signInPage(context: BrowserContext, t: TestServer, role: Role): Promise<Page> {
  return signInAt(context, t.url, t.users[role].email, role);
}

/** Where a failing test's screenshot goes. */
export function screenshotPath(prefix: string, name: string): string {
  return path.join(ARTIFACTS, `${prefix}-${name.replace(/\W+/g, '-').slice(0, 60)}.png`);
}

/** A heartbeat of a seeded line-3 Jetson serving `modelVersionId`; `over` changes figures. */
export async function heartbeat(
  t: TestServer,
  id: string,
  modelVersionId: string,
  over: Partial<MessagePayload<'device.heartbeat'>> = {},
): Promise<void> {
  await t.platform.fleet.handleTelemetry(
    makeEnvelope(
      'device.heartbeat',
      {
        deviceId: id,
        name: id,
        tags: ['line-3', 'jetson'],
        hardware: 'jetson-orin',
        runtime: {},
        provider: 'tensorrt',
        modelVersionId,
        state: 'serving',
        fps: 29.6,
        latencyP50Ms: 8.2,
        latencyP95Ms: 12.44,
        meanTopConfidence: 0.8123,
        cpuPercent: 41.6,
        memoryMb: 812.4,
        temperatureC: 50,
        ...over,
      },
      { source: id },
    ),
  );
}
