#!/usr/bin/env node
// Browser check of the DVR's "who knew what" view on an exercise where every nation wrote a
// secret comment and a message to one other nation: for each nation, at the given tick, the
// page shows its own comment and the messages it sent and received, and nowhere (text or
// attribute values) another nation's comment, a message it was not party to, or control's
// notes; the control view shows them all. Screenshots of every view go to SCREENSHOT_DIR.
//
//   node whoknew.mjs BASE_URL TICK EXPECT_JSON SCREENSHOT_DIR
//
// EXPECT_JSON maps each nation to {"known": [...], "unknown": [...]}. Prints one line and exits
// 0, or prints what failed and exits 1.

import { launchChromium } from './chromium.mjs';
import { readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

class Failure extends Error {}
const fail = (m) => { throw new Failure(m); };

async function main() {
  const [base, tickArg, expectFile, shotDir] = process.argv.slice(2);
  if (!base || !tickArg || !expectFile) fail('usage: node whoknew.mjs BASE_URL TICK EXPECT_JSON [SCREENSHOT_DIR]');
  const expect = JSON.parse(readFileSync(expectFile, 'utf8'));
  if (shotDir) mkdirSync(shotDir, { recursive: true });
  const browser = await launchChromium();
  const errors = [];
  try {
    const page = await (await browser.newContext({ viewport: { width: 1300, height: 900 } })).newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    const text = () => page.evaluate(() => {
      const clone = document.documentElement.cloneNode(true);
      clone.querySelectorAll('script, style').forEach((n) => n.remove());
      const attrs = [...clone.querySelectorAll('*')].flatMap((n) => [...n.attributes].map((a) => a.value));
      return clone.textContent + '\n' + attrs.join('\n');
    });
    const show = async (view) => {
      await page.goto(`${base}#tick=${tickArg}${view === 'control' ? '' : `&view=${view}`}`);
      await page.waitForFunction(([t, v]) => {
        const l = document.getElementById('tick-label');
        return l && !l.hasAttribute('data-loading') && l.textContent === `Tick ${t}` && l.getAttribute('data-view') === v;
      }, [tickArg, view], { timeout: 20_000 });
    };
    await show('control');
    const all = await text();
    for (const [n, e] of Object.entries(expect)) {
      for (const k of e.known) if (!all.includes(k)) fail(`control's view lacks ${n}'s ${k}`);
    }
    if (shotDir) await page.screenshot({ path: join(shotDir, 'dvr-control.png'), fullPage: true });
    for (const [nation, e] of Object.entries(expect)) {
      await show(nation);
      const t = await text();
      for (const k of e.known) if (!t.includes(k)) fail(`${nation}'s view does not show ${k}`);
      for (const u of e.unknown) if (t.includes(u)) fail(`${nation}'s view shows ${u}, which it never knew`);
      const reports = await page.$$eval('#sitreps .report', (rs) => rs.map((r) => r.getAttribute('data-nation')));
      if (!reports.length || reports.some((r) => r !== nation)) fail(`${nation}'s view shows reports of ${reports.join(', ')}`);
      if (shotDir) await page.screenshot({ path: join(shotDir, `dvr-${nation}.png`), fullPage: true });
    }
    if (errors.length) fail(`the page threw: ${errors.join(' | ')}`);
    console.log(`whoknew: ok — ${Object.keys(expect).length} nations each saw their own secrets and no other's at tick ${tickArg}`);
  } finally {
    await browser.close();
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(`whoknew: FAIL — ${e instanceof Failure ? e.message : (e && e.stack) || e}`);
  process.exit(1);
});
