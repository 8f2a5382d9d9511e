#!/usr/bin/env node
// A full-page screenshot of one page, to look at what users will see:
//   node shot.mjs URL OUT.png [WIDTH] [SELECTOR]   (with SELECTOR: the viewport there, not the page)
import { launchChromium } from './chromium.mjs';

const [url, out, width, selector] = process.argv.slice(2);
if (!url || !out) { console.error('usage: node shot.mjs URL OUT.png [WIDTH]'); process.exit(2); }
const browser = await launchChromium();
try {
  const page = await (await browser.newContext({ viewport: { width: Number(width || 1200), height: 900 } })).newPage();
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  await page.goto(url);
  await page.waitForTimeout(800);
  if (selector) {
    await page.locator(selector).first().scrollIntoViewIfNeeded();
    await page.screenshot({ path: out });
  } else {
    await page.screenshot({ path: out, fullPage: true });
  }
} finally {
  await browser.close();
}
