import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FirebaseEmulatorStandIn } from '../../services/infra/auth/firebase-emulator.fixtures.js';
import { startTestServer, type TestServer } from '../../web-chat/server.fixtures.js';
import { chromiumMissing, launchChromium } from './chromium.js';

// Firebase mode in the browser: the sign-in page loads the Firebase Web SDK (compat builds served from
// node_modules), signs in with email and password, and trades the ID token for the platform's session
// cookie. There is no Firebase emulator on this machine, so both the Web SDK (connectAuthEmulator, via
// the compat useEmulator) and firebase-admin (FIREBASE_AUTH_EMULATOR_HOST) talk to a local STAND-IN that
// speaks the emulator's REST protocol (services/infra/auth/firebase-emulator.fixtures.ts).
const PROJECT = 'vision-web-test';

describe.skipIf(chromiumMissing())('Firebase sign-in page in Chromium', () => {
  const emulator = new FirebaseEmulatorStandIn({ projectId: PROJECT });
  let t: TestServer;
  let chromium: Awaited<ReturnType<typeof launchChromium>>;
  let browser: Browser;

  beforeAll(async () => {
    emulator.users.set('uid_ana', {
      email: 'ana@example.com',
      password: 'firebase password 1',
      name: 'Ana Kim',
      claims: { role: 'approver' },
    });
    emulator.users.set('uid_off', {
      email: 'off@example.com',
      password: 'firebase password 2',
      disabled: true,
    });
    const host = await emulator.start();
    // firebase-admin reads the emulator host from the environment; the page gets it from the server config
    process.env.FIREBASE_AUTH_EMULATOR_HOST = host;
    t = await startTestServer({
      env: {
        FIREBASE_PROJECT_ID: PROJECT,
        FIREBASE_API_KEY: 'stand-in-web-api-key',
        FIREBASE_AUTH_EMULATOR_HOST: host,
      },
    });
    chromium = await launchChromium();
    browser = chromium.browser;
  }, 60_000);

  afterAll(async () => {
    await chromium?.close();
    await t?.close();
    delete process.env.FIREBASE_AUTH_EMULATOR_HOST;
    await emulator.stop();
  });

  it('signs in with the Firebase Web SDK and ends with the session cookie and the role from the claim', async () => {
    const context = await browser.newContext({ locale: 'en-US' });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(msg.text());
    });
    const vendor: Array<{ url: string; status: number }> = [];
    page.on('response', (r) => {
      if (r.url().includes('/vendor/firebase/'))
        vendor.push({ url: new URL(r.url()).pathname, status: r.status() });
    });
    await page.goto(`${t.url}/`);
    await page.waitForURL(/login\.html/);
    await page.waitForFunction(() => document.body.dataset.authMode === 'firebase');
    await page.locator('#firebase-note:not(.d-none)').waitFor();
    await page.fill('#email', 'ana@example.com');
    await page.fill('#password', 'firebase password 1');
    await page.click('#login-submit');
    await page.waitForURL(/#chat/);
    await page.waitForFunction(() => document.body.dataset.role !== undefined);
    expect(await page.evaluate(() => document.body.dataset.role)).toBe('approver');

    const me = await page.evaluate(async () => (await fetch('/api/me')).json());
    expect(me).toMatchObject({
      via: 'cookie',
      authMode: 'firebase',
      user: { email: 'ana@example.com', name: 'Ana Kim', role: 'approver' },
    });
    const cookies = await context.cookies();
    expect(cookies.find((c) => c.name === 'via_session')).toMatchObject({ httpOnly: true });
    expect(vendor).toEqual([
      { url: '/vendor/firebase/firebase-app-compat.js', status: 200 },
      { url: '/vendor/firebase/firebase-auth-compat.js', status: 200 },
    ]);
    // the SDK signed in on the stand-in; firebase-admin on the server looked the user up there
    expect(emulator.requests).toContain(
      'POST /identitytoolkit.googleapis.com/v1/accounts:signInWithPassword',
    );
    expect(emulator.lookups).toContain('uid_ana');
    expect(errors.filter((e) => /Content Security Policy|Refused/.test(e))).toEqual([]);
    await context.close();
  }, 60_000);

  it('shows an actionable message for a wrong password and for a disabled account, and signs nobody in', async () => {
    const context = await browser.newContext({ locale: 'en-US' });
    const page = await context.newPage();
    await page.goto(`${t.url}/login.html`);
    await page.waitForFunction(() => document.body.dataset.authMode === 'firebase');
    await page.fill('#email', 'ana@example.com');
    await page.fill('#password', 'not the password');
    await page.click('#login-submit');
    await page.locator('#login-error:not(.d-none)').waitFor();
    expect(await page.locator('#login-error').textContent()).toContain(
      'Firebase did not accept that email and password',
    );

    await page.fill('#email', 'off@example.com');
    await page.fill('#password', 'firebase password 2');
    await page.click('#login-submit');
    await expect
      .poll(() => page.locator('#login-error').textContent())
      .toContain('This Firebase account is disabled');
    expect(page.url()).toMatch(/login\.html/);
    expect((await context.cookies()).some((c) => c.name === 'via_session')).toBe(false);
    await context.close();
  }, 60_000);
});
