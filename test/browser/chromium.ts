import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';

/** Debian's Chromium, driven by playwright-core. */
export const CHROMIUM = '/usr/bin/chromium';

/** Where screenshots go (gitignored). */
export const ARTIFACTS = path.resolve(import.meta.dirname, '../../test-artifacts');

/** True (with a warning) when Chromium is missing; throws instead under REQUIRE_SERVICES=1. */
export function chromiumMissing(): boolean {
  if (existsSync(CHROMIUM)) return false;
  if (process.env.REQUIRE_SERVICES === '1')
    throw new Error(`${CHROMIUM} is missing and REQUIRE_SERVICES=1: install Debian's chromium package`);
  console.warn(
    `skipping browser tests: ${CHROMIUM} not found (install Debian's chromium package to run them)`,
  );
  return true;
}

/** Launches headless Chromium with a throw-away profile folder; `close` removes it. */
export async function launchChromium(): Promise<{ browser: Browser; close(): Promise<void> }> {
  const profile = mkdtempSync(path.join(tmpdir(), 'vchrome-'));
  // playwright gives every launch a fresh --user-data-dir of its own (it refuses the flag); TMPDIR points it at ours.
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
    env: { ...process.env, TMPDIR: profile },
  });
  return {
    browser,
    async close() {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
