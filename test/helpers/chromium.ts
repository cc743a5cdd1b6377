import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BrowserContext } from 'playwright-core';

/** Debian's chromium, which the dashboard tests drive through playwright-core. */
export const CHROMIUM = '/usr/bin/chromium';

/** A headless chromium with its own profile folder (remove `userDir` when done). */
export async function launchChromium(viewport = { width: 1400, height: 1000 }): Promise<{ context: BrowserContext; userDir: string }> {
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'modelprint-chromium-'));
  const { chromium } = await import('playwright-core');
  const context = await chromium.launchPersistentContext(userDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  return { context, userDir };
}
