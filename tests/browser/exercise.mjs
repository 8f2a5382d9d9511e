#!/usr/bin/env node
// Browser check of the Chokepoint exercise console, driven with playwright-core and a system
// Chromium (never a downloaded browser). Three players log in with their tokens in separate
// browser contexts; BB and CC submit orders (BB first gets a validation error shown next to the
// order), DD submits nothing and misses the deadline; control fires an inject; the turn
// resolves; each page shows its own results and not the others' private data; markup in a
// message or comment is shown as text; the pages load nothing from elsewhere.
//
//   node exercise.mjs BASE_URL TOKENS_JSON [SCREENSHOT_DIR]
//
// TOKENS_JSON maps "BB", "CC", "DD" and "control" to their access tokens. Prints one summary line
// and exits 0, or prints what failed and exits 1.

import { launchChromium } from './chromium.mjs';
import { readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const WAIT_MS = 45_000;
const OVERALL_MS = 150_000;

class Failure extends Error {}
const fail = (msg) => { throw new Failure(msg); };

async function main() {
  const [base, tokenFile, shotDir] = process.argv.slice(2);
  if (!base || !tokenFile) fail('usage: node exercise.mjs BASE_URL TOKENS_JSON [SCREENSHOT_DIR]');
  const origin = new URL(base).origin;
  const tokens = JSON.parse(readFileSync(tokenFile, 'utf8'));
  if (shotDir) mkdirSync(shotDir, { recursive: true });
  const browser = await launchChromium();
  const foreign = [];
  const problems = [];
  try {
    const open = async (role) => {
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      await context.route('**/*', (route) => {
        const url = route.request().url();
        let same = false;
        try { same = new URL(url).origin === origin; } catch { /* foreign */ }
        if (same) return route.continue();
        foreign.push(url);
        return route.abort();
      });
      const page = await context.newPage();
      page.setDefaultTimeout(WAIT_MS);
      page.on('pageerror', (e) => problems.push(`${role}: page error ${e.message}`));
      page.on('dialog', (d) => { problems.push(`${role}: a dialog opened (${d.message()}): markup ran`); d.dismiss(); });
      await page.goto(base);
      await page.fill('#token', tokens[role]);
      await page.click('#enter');
      await page.waitForSelector(role === 'control' ? '#clock-panel' : '#books');
      return page;
    };
    const [bb, cc, dd, control] = [await open('BB'), await open('CC'), await open('DD'), await open('control')];

    // A wrong token is refused on the page.
    {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(base);
      await page.fill('#token', 'wrong-token');
      await page.click('#enter');
      await page.waitForFunction(() => document.querySelector('#login-error').textContent.length > 0);
      if ((await page.isVisible('#app'))) fail('a wrong token opened the console');
    }

    // BB: an invalid order shows its error next to it and submits nothing; then valid orders.
    await bb.selectOption('#order-kind', 'buy');
    await bb.selectOption('#order-commodity', 'co');
    await bb.fill('#order-quantity', '-5');
    await bb.fill('#order-limit', '60');
    await bb.click('#order-add');
    await bb.click('#order-submit');
    await bb.waitForFunction(() => document.querySelector('#order-0-error').textContent.includes('quantity_t'));
    await bb.click('#draft button');
    await bb.fill('#order-quantity', '5');
    await bb.click('#order-add');
    await bb.selectOption('#order-kind', 'export_ban');
    await bb.selectOption('#order-commodity', 'dy');
    await bb.fill('#order-limit', '');
    await bb.fill('#order-to', 'CC');
    await bb.click('#order-add');
    await bb.fill('#order-comment', '<img src=x onerror="alert(1)"> tighten dy');
    await bb.click('#order-submit');
    await bb.waitForFunction(() => document.querySelector('#order-result').textContent.startsWith('Sealed'));

    // CC: a reserve release and a message with markup in it.
    await cc.selectOption('#order-kind', 'stockpile_release');
    await cc.selectOption('#order-commodity', 'dy');
    await cc.fill('#order-quantity', '1');
    await cc.click('#order-add');
    await cc.click('#order-submit');
    await cc.waitForFunction(() => document.querySelector('#order-result').textContent.startsWith('Sealed'));
    await cc.fill('#msg-to', 'BB');
    await cc.fill('#msg-text', '<b>please</b> <script>alert(2)</script> lift it');
    await cc.click('#msg-send');

    // Control fires an inject from the library.
    await control.selectOption('#inject-template', 'mine accident');
    await control.click('#inject-fire');
    await control.waitForFunction(() => document.querySelector('#inject-result').textContent.includes('scheduled'));

    // DD does nothing: the turn resolves at the deadline.
    await control.waitForFunction(() => /turn 2 /.test(document.querySelector('#clock').textContent), null, { timeout: 90_000 });
    await control.click('header');
    await control.waitForFunction(() => document.body.textContent.includes('turn 1 DD'));
    for (const p of [bb, cc, dd]) {
      await p.click('header');
      await p.waitForFunction(() => document.body.textContent.includes('BB-export_ban'));
    }
    // Each page shows its own books and not the others'.
    const text = async (p) => p.evaluate(() => document.body.innerText);
    const [tb, tc, td] = [await text(bb), await text(cc), await text(dd)];
    if (!tb.includes('Refiner (BB) — own books') || tb.includes('Consumer (CC) — own books')) fail('BB sees the wrong books');
    if (!tc.includes('Consumer (CC) — own books') || tc.includes('Refiner (BB) — own books')) fail('CC sees the wrong books');
    if (!td.includes('Second consumer (DD) — own books')) fail('DD sees the wrong books');
    if (td.includes('lift it')) fail("DD sees CC's message to BB");
    for (const [who, t] of [['BB', tb], ['CC', tc], ['DD', td]]) {
      if (t.includes('ground truth') || t.includes('Ground truth')) fail(`${who} sees ground truth`);
    }
    // Markup is text: the message shows its tags, and no element came from it.
    await bb.waitForFunction(() => document.querySelector('#messages').textContent.includes('<b>please</b>'));
    if (await bb.evaluate(() => document.querySelector('#messages b, #messages script') !== null)) fail('a message was rendered as HTML');
    const truth = await text(control);
    if (!truth.includes('AA co mine #1 shut')) fail('the inject did not take effect');
    if (shotDir) {
      for (const [name, p] of [['BB', bb], ['CC', cc], ['DD', dd], ['control', control]]) {
        await p.screenshot({ path: join(shotDir, `exercise-${name}.png`), fullPage: true });
      }
    }
    if (foreign.length) fail(`the console asked for outside resources: ${foreign.join(', ')}`);
    if (problems.length) fail(problems.join('; '));
    console.log('exercise console ok: 3 players and control, one invalid order refused in place, DD missed the deadline, inject applied, no leaks, markup shown as text');
  } finally {
    await browser.close();
  }
}

const timer = setTimeout(() => { console.error(`timed out after ${OVERALL_MS} ms`); process.exit(1); }, OVERALL_MS);
main().then(() => { clearTimeout(timer); process.exit(0); }).catch((e) => {
  clearTimeout(timer);
  console.error(e instanceof Failure ? `FAILED: ${e.message}` : e.stack || String(e));
  process.exit(1);
});
