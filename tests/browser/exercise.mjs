#!/usr/bin/env node
// Browser check of the Chokepoint exercise console, driven with playwright-core and a system
// Chromium (never a downloaded browser). Three players log in with their tokens in separate
// browser contexts and a control cell in a fourth, and they play three turns:
//
//  1. a stale tab's bad token fails again and again, and another player's good token still gets
//     in (all from one address);
//  2. turn 1: BB's invalid order shows its error next to it, then BB seals an export ban on CC
//     and a buy; CC seals a buy at a high limit (filled) and one far too low (not filled) and
//     messages BB with markup; DD types a message and keeps it through several refreshes; DD
//     seals nothing; control fires the "mine accident" template and resolves the turn now;
//  3. each player sees its situation report first, CC's with a filled and an unfilled order;
//     BB's page shows CC's message as text; nobody sees another's books; the charts have axes
//     with units and a legend, one colour per series;
//  4. turn 2: BB lifts its ban from the form's lift target list; the restriction is gone;
//  5. turn 3: control rolls the exercise back to the start of turn 2, and the ban is back.
//
// Screenshots of every page are taken after each step (SCREENSHOT_DIR/NN-step-role.png).
//
//   node exercise.mjs BASE_URL TOKENS_JSON [SCREENSHOT_DIR]
//
// TOKENS_JSON maps "BB", "CC", "DD" and "control" to their access tokens. Prints one summary line
// and exits 0, or prints what failed and exits 1.

import { launchChromium } from './chromium.mjs';
import { readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const WAIT_MS = 45_000;
const OVERALL_MS = 240_000;

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
  let step = 0;
  const pages = {};
  const shoot = async (name) => {
    step += 1;
    if (!shotDir) return;
    for (const [role, p] of Object.entries(pages)) {
      await p.screenshot({ path: join(shotDir, `${String(step).padStart(2, '0')}-${name}-${role}.png`), fullPage: true });
    }
  };
  try {
    const context = async () => {
      const c = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
      await c.route('**/*', (route) => {
        const url = route.request().url();
        let same = false;
        try { same = new URL(url).origin === origin; } catch { /* foreign */ }
        if (same) return route.continue();
        foreign.push(url);
        return route.abort();
      });
      return c;
    };
    const open = async (role) => {
      const page = await (await context()).newPage();
      page.setDefaultTimeout(WAIT_MS);
      page.on('pageerror', (e) => problems.push(`${role}: page error ${e.message}`));
      page.on('dialog', (d) => { problems.push(`${role}: a dialog opened (${d.message()}): markup ran`); d.dismiss(); });
      await page.goto(base);
      await page.fill('#token', tokens[role]);
      await page.click('#enter');
      await page.waitForSelector(role === 'control' ? '#clock-panel' : '#books-body table');
      pages[role] = page;
      return page;
    };

    // 1. A stale tab keeps failing with an old token; another player still gets in.
    {
      const stale = await (await context()).newPage();
      await stale.goto(base);
      const codes = await stale.evaluate(async () => {
        const out = [];
        for (let i = 0; i < 12; i++) out.push((await fetch('/api/whoami', { headers: { Authorization: 'Bearer stale-token' } })).status);
        return out;
      });
      if (!codes.slice(0, 10).every((c) => c === 401) || codes[11] !== 429) fail(`the stale token got ${codes.join(',')}`);
      await stale.fill('#token', 'wrong-token');
      await stale.click('#enter');
      await stale.waitForFunction(() => document.querySelector('#login-error').textContent.length > 0);
      if (await stale.isVisible('#app')) fail('a wrong token opened the console');
    }
    const [bb, cc, dd, control] = [await open('BB'), await open('CC'), await open('DD'), await open('control')];

    await shoot('logged-in');

    // 2. Turn 1. BB: an invalid order shows its error next to it and seals nothing; then valid ones.
    await bb.selectOption('#order-kind', 'buy');
    await bb.selectOption('#order-commodity', 'co');
    await bb.fill('#order-quantity', '-5');
    await bb.fill('#order-limit', '60');
    await bb.click('#order-add');
    await bb.click('#order-submit');
    await bb.waitForFunction(() => document.querySelector('#order-0-error').textContent.includes('quantity_t'));
    await bb.click('#draft button[data-remove="0"]');
    await bb.fill('#order-quantity', '5');
    await bb.click('#order-add');
    await bb.selectOption('#order-kind', 'export_ban');
    await bb.selectOption('#order-commodity', 'dy');
    await bb.fill('#order-to', 'CC');
    await bb.click('#order-add');
    await bb.fill('#order-comment', '<img src=x onerror="alert(1)"> tighten dy');
    const draftText = await bb.textContent('#draft');
    if (!draftText.includes('export ban') || draftText.includes('{')) fail(`drafts are not a readable table: ${draftText}`);
    await bb.click('#order-submit');
    await bb.waitForFunction(() => document.querySelector('#order-result').textContent.startsWith('Sealed'));
    await bb.waitForFunction(() => document.querySelector('#sealed').textContent.includes('export ban'));

    // CC: a buy that fills, one that cannot, and a message with markup in it.
    await cc.selectOption('#order-kind', 'buy');
    await cc.selectOption('#order-commodity', 'dy');
    await cc.fill('#order-quantity', '1');
    await cc.fill('#order-limit', '14000');
    await cc.click('#order-add');
    await cc.fill('#order-quantity', '2');
    await cc.fill('#order-limit', '11');
    await cc.click('#order-add');
    await cc.click('#order-submit');
    await cc.waitForFunction(() => document.querySelector('#order-result').textContent.startsWith('Sealed'));
    await cc.fill('#msg-to', 'BB');
    await cc.fill('#msg-text', '<b>please</b> <script>alert(2)</script> lift it');
    await cc.click('#msg-send');

    // DD types a message and keeps typing through several refreshes.
    await dd.click('#msg-text');
    await dd.keyboard.type('half a thought');
    await dd.waitForTimeout(4500);
    await dd.keyboard.type(', finished');
    const typed = await dd.inputValue('#msg-text');
    if (typed !== 'half a thought, finished') fail(`DD's typing was lost in a refresh: "${typed}"`);
    await dd.click('header');
    await dd.waitForTimeout(2500);
    if ((await dd.inputValue('#msg-text')) !== typed) fail('DD\'s unsent message was lost in a refresh without focus');

    // Control sees the sealed orders, fires the mine accident template, and resolves the turn.
    await control.waitForFunction(() => document.querySelector('#sealed-body').textContent.includes('export ban'));
    await control.selectOption('#inject-template', 'mine accident');
    if (!(await control.inputValue('#inject-name'))) fail('the template gives the inject no name');
    await control.click('#inject-fire');
    await control.waitForFunction(() => document.querySelector('#inject-result').textContent.includes('scheduled'));
    const templates = await control.$$eval('#inject-template option', (o) => o.map((x) => x.value));
    if (templates.includes('lane closure')) fail('the lane closure template is offered on a world without lanes');
    await shoot('turn1-sealed');
    await control.click('#resolve');
    await control.waitForFunction(() => /turn 2 /.test(document.querySelector('#clock').textContent));
    await control.waitForFunction(() => document.body.textContent.includes('turn 1 DD'));

    // 3. Each player sees its situation report first; CC's has a filled and an unfilled order.
    for (const p of [bb, cc, dd]) await p.waitForSelector('#sitrep-body .report[data-turn="1"]');
    await control.waitForSelector('#report-body .report');
    const report = await cc.$$eval('#sitrep-body .report tr', (rows) => rows.map((r) => r.textContent));
    if (!report.some((r) => r.includes('filled') && !r.includes('not filled') && r.includes('dy'))) fail(`CC's report has no filled order: ${report.join(' | ')}`);
    if (!report.some((r) => r.includes('not filled') && r.includes('outbid'))) fail(`CC's report has no unfilled, outbid order: ${report.join(' | ')}`);
    if (!(await cc.textContent('#sitrep-title')).includes('unread')) fail('the new report is not marked unread');
    await cc.click('#sitrep-read');
    await cc.waitForFunction(() => !document.querySelector('#sitrep-title').textContent.includes('unread'));
    if (!(await bb.textContent('#messages-title')).includes('unread')) fail("CC's message to BB is not marked unread");
    const text = async (p) => p.evaluate(() => document.body.innerText);
    const [tb, tc, td] = [await text(bb), await text(cc), await text(dd)];
    if (!tb.includes('Refiner (BB) — own books') || tb.includes('Consumer (CC) — own books')) fail('BB sees the wrong books');
    if (!tc.includes('Consumer (CC) — own books') || tc.includes('Refiner (BB) — own books')) fail('CC sees the wrong books');
    if (!td.includes('Second consumer (DD) — own books')) fail('DD sees the wrong books');
    if (td.includes('lift it')) fail("DD sees CC's message to BB");
    if (tc.includes('tighten dy')) fail("CC sees BB's comment");
    for (const [who, t] of [['BB', tb], ['CC', tc], ['DD', td]]) if (/ground truth/i.test(t)) fail(`${who} sees ground truth`);
    await bb.waitForFunction(() => document.querySelector('#messages').textContent.includes('<b>please</b>'));
    if (await bb.evaluate(() => document.querySelector('#messages b, #messages script') !== null)) fail('a message was rendered as HTML');
    if (!(await text(control)).includes('AA co mine #1 shut')) fail('the inject did not take effect');
    if (!(await text(bb)).includes('co ore (mine)') && !(await text(bb)).includes('dy ore (mine)')) fail('sites do not show their commodity');
    // Once a turn has run, the charts have axes with units, a legend and one colour per series.
    for (const [who, p] of [['CC', cc], ['control', control]]) {
      const chart = await p.evaluate(() => {
        const svg = document.querySelector('#prices-chart svg');
        if (!svg) return null;
        const colours = [...svg.querySelectorAll('polyline.series')].map((l) => l.getAttribute('stroke'));
        return {
          x: svg.querySelectorAll('.x-tick').length, y: svg.querySelectorAll('.y-tick').length,
          ylabel: (svg.querySelector('.y-label') || {}).textContent || '', xlabel: (svg.querySelector('.x-label') || {}).textContent || '',
          legend: document.querySelectorAll('#prices-chart .legend-item').length, colours,
        };
      });
      if (!chart) fail(`${who}: no price chart`);
      if (chart.x < 2 || chart.y < 2) fail(`${who}: the price chart has no axis labels (${chart.x} x, ${chart.y} y)`);
      if (!/index|US\$/.test(chart.ylabel) || !/tick/.test(chart.xlabel)) fail(`${who}: axis titles without units: "${chart.ylabel}", "${chart.xlabel}"`);
      if (chart.legend !== chart.colours.length || chart.legend < 2) fail(`${who}: legend of ${chart.legend} for ${chart.colours.length} series`);
      if (new Set(chart.colours).size !== chart.colours.length) fail(`${who}: colours repeat: ${chart.colours}`);
    }
    await cc.click('#sitrep-tabs button[data-turn="1"]');
    await shoot('turn1-reports');

    // 4. Turn 2: BB lifts its own ban, picked from the restrictions it has in force.
    await bb.selectOption('#order-kind', 'lift');
    const targets = await bb.$$eval('#order-target option', (o) => o.map((x) => x.value));
    const ban = targets.find((t) => t.startsWith('BB-export_ban'));
    if (!ban) fail(`BB's lift list holds no ban: ${targets}`);
    await bb.selectOption('#order-target', ban);
    await bb.click('#order-add');
    await bb.click('#order-submit');
    await bb.waitForFunction(() => document.querySelector('#order-result').textContent.startsWith('Sealed'));
    await control.click('#resolve');
    await control.waitForFunction(() => /turn 3 /.test(document.querySelector('#clock').textContent));
    await cc.waitForFunction((ban) => document.querySelector('#sitrep-body .report[data-turn="2"]') && !document.querySelector('#public-body').textContent.includes(ban), ban);
    for (const p of [bb, dd]) await p.waitForSelector('#sitrep-body .report[data-turn="2"]');
    await shoot('turn2-lifted');

    // 5. Control rolls the exercise back to the start of turn 2: the ban is in force again.
    await control.selectOption('#rollback-turn', '2');
    await control.click('#rollback');
    await control.waitForFunction(() => /turn 2 · tick 2 /.test(document.querySelector('#clock').textContent));
    await cc.waitForFunction((ban) => document.querySelector('#public-body').textContent.includes(ban), ban);
    await cc.waitForFunction(() => !document.querySelector('#sitrep-body .report[data-turn="2"]'));
    await cc.waitForFunction(() => document.querySelector('#sitrep-body .report[data-turn="1"]'));
    for (const p of [bb, dd]) await p.waitForFunction(() => /turn 2 · tick 2 /.test(document.querySelector('#clock').textContent));
    await cc.waitForFunction(() => document.querySelector('#messages').textContent.includes('rolled the exercise back'));
    await shoot('rolled-back');

    if (foreign.length) fail(`the console asked for outside resources: ${foreign.join(', ')}`);
    if (problems.length) fail(problems.join('; '));
    console.log('exercise console ok: a bad token blocked only itself, charts with axes and legend, a typed message kept through refreshes, CC\'s report with a filled and an unfilled order, a lift ended the ban, a rollback brought it back, no leaks, markup shown as text');
  } catch (e) {
    try { await shoot('failure'); } catch { /* the pages may be gone */ }
    throw e;
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
