import { mkdirSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** Where the browser tests write their screenshots (created on launch). */
export const SHOTS = new URL('../../test-results/', import.meta.url).pathname;

/** Debian's Chromium (or CHROMIUM_PATH), as the browser tests drive it. */
export async function launchBrowser(): Promise<Browser> {
  mkdirSync(SHOTS, { recursive: true });
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--no-sandbox'],
  });
}
