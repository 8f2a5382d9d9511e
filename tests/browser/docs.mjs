#!/usr/bin/env node
// Makes the screenshots in docs/: a four-player exercise on baseline-2024 as analysts and the
// control cell see it, then (with a run database) its after-action report, the DVR and a diff
// with a fork. Not a test: it plays a short scripted exercise and photographs the pages.
//
//   node docs.mjs CHOKEPOINT_BIN OUT_DIR
//
// CHOKEPOINT_BIN is a built `chokepoint` (target/release/chokepoint); OUT_DIR receives the PNG
// files and a scratch run database.

import { launchChromium } from './chromium.mjs';
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';

const [bin, outArg] = process.argv.slice(2);
if (!bin || !outArg) { console.error('usage: node docs.mjs CHOKEPOINT_BIN OUT_DIR'); process.exit(2); }
const out = resolve(outArg);
const db = join(out, 'db');
rmSync(db, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const scenario = resolve(new URL('../../scenarios/baseline-2024.toml', import.meta.url).pathname);

function startExercise() {
  return new Promise((ok, fail) => {
    const child = spawn(bin, ['--db', db, 'exercise', scenario, '--players', 'US,CN,EU,JP', '--turn', '13', '--deadline', '20m',
      '--listen', '127.0.0.1:0', '--grpc-listen', '127.0.0.1:0', '--out', join(out, 'exercise-out')], { stdio: ['ignore', 'pipe', 'inherit'] });
    const tokens = {};
    let url = null;
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = line.match(/^Console: (\S+)/);
      if (m) url = m[1];
      const t = line.match(/^ {2}(\S+)\s+([0-9a-f]{32})$/);
      if (t) tokens[t[1]] = t[2];
      if (t && t[1] === 'control') ok({ child, url, tokens });
    });
    child.on('exit', (code) => fail(new Error(`the exercise exited (${code})`)));
  });
}

async function call(url, token, path, body) {
  const r = await fetch(new URL(path, url), {
    method: body ? 'POST' : 'GET',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await r.json();
  if (r.status !== 200) throw new Error(`${path}: ${r.status} ${JSON.stringify(data)}`);
  return data;
}

async function waitTurn(url, control, turn) {
  for (let i = 0; i < 600; i++) {
    const v = await call(url, control, '/api/control');
    if (v.status.turn >= turn) return v;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`turn ${turn} never came`);
}

async function exercise(browser) {
  const { child, url, tokens } = await startExercise();
  const c = tokens.control;
  // Turn 1: the US builds its rare-earth reserve (one bid too low to fill), China bans
  // dysprosium exports to the US, Japan messages the US, the EU buys cobalt.
  await call(url, tokens.US, '/api/orders', { orders: [
    { type: 'buy', commodity: 'dy', quantity_t: 2, limit_usd_per_kg: 900 },
    { type: 'buy', commodity: 'nd', quantity_t: 20, limit_usd_per_kg: 40 },
    { type: 'policy', event: { action: 'stockpile_target', commodity: 'dy', target_days: 180 } },
  ], comment: 'rebuild the Dy reserve before CN moves' });
  await call(url, tokens.CN, '/api/orders', { orders: [{ type: 'policy', event: { action: 'export_ban', commodity: 'dy', to: ['US'] } }], comment: 'signal' });
  await call(url, tokens.EU, '/api/orders', { orders: [{ type: 'buy', commodity: 'co', quantity_t: 50, limit_usd_per_kg: 60 }] });
  await call(url, tokens.JP, '/api/message', { to: ['US'], text: 'Shall we coordinate Dy purchases through the quarter?' });
  await call(url, c, '/api/control/inject', { toml: '[[events]]\ntick = 0\naction = "demand_shock"\ncommodity = "nd"\npct = 40\nnote = "EV subsidy surge"', name: 'ev-surge' });
  await call(url, c, '/api/control', { action: 'resolve' });
  await waitTurn(url, c, 2);
  await call(url, tokens.US, '/api/orders', { orders: [{ type: 'buy', commodity: 'nd', quantity_t: 20, limit_usd_per_kg: 400 }] });
  await call(url, c, '/api/control/note', { text: 'Turn 2: CN ban in force; US scrambles for Nd', bookmark: true });
  await call(url, c, '/api/control', { action: 'resolve' });
  await waitTurn(url, c, 3);
  await call(url, tokens.CN, '/api/orders', { orders: [{ type: 'buy', commodity: 'co', quantity_t: 100, limit_usd_per_kg: 80 }] });
  const shot = async (role, file) => {
    const page = await (await browser.newContext({ viewport: { width: 1400, height: 1000 } })).newPage();
    await page.goto(url);
    await page.fill('#token', tokens[role]);
    await page.click('#enter');
    await page.waitForSelector(role === 'control' ? '#report-body .report' : '#sitrep-body .report');
    await page.waitForTimeout(500);
    await page.screenshot({ path: join(out, file), fullPage: true });
  };
  await shot('US', 'exercise-player.png');
  await shot('control', 'exercise-control.png');
  await call(url, c, '/api/control', { action: 'end' });
  await new Promise((r) => child.on('exit', r));
}

// A screenshot of the top `height` pixels of a page (the whole page when it is shorter).
async function top(browser, url, file, width, height, view) {
  const page = await (await browser.newContext({ viewport: { width, height } })).newPage();
  await page.goto(url);
  if (view) {
    await page.waitForFunction((v) => {
      const l = document.getElementById('tick-label');
      return l && !l.hasAttribute('data-loading') && l.textContent === 'Tick 20' && l.getAttribute('data-view') === v;
    }, view, { timeout: 60_000 });
  }
  await page.waitForTimeout(600);
  await page.screenshot({ path: join(out, file) });
}

function debriefServer() {
  return new Promise((ok, fail) => {
    const child = spawn(bin, ['--db', db, 'debrief', '1', '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = line.match(/ at (\S+) /);
      if (m) ok({ child, url: m[1] });
    });
    child.on('exit', (code) => fail(new Error(`debrief exited (${code})`)));
  });
}

async function debriefs(browser) {
  const run = (...args) => execFileSync(bin, ['--db', db, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  run('report', '1', '--out', join(out, 'report'));
  await top(browser, pathToFileURL(join(out, 'report', 'index.html')).href, 'report.png', 1100, 2300);
  // The counterfactual: China lifts its dysprosium ban at tick 14.
  const lift = join(out, 'lift.toml');
  writeFileSync(lift, '[[events]]\ntick = 14\naction = "lift"\ntarget = "CN-export_ban-t0-0"\n');
  run('fork', '1', '--at', '13', '--events', lift, '--quiet', '--out', join(out, 'fork-out'));
  run('diff', '1', '2', '--out', join(out, 'diff'));
  await top(browser, pathToFileURL(join(out, 'diff', 'index.html')).href, 'diff.png', 1100, 1900);
  const { child, url } = await debriefServer();
  await top(browser, `${url}#tick=20`, 'dvr-control.png', 1300, 2000, 'control');
  await top(browser, `${url}#tick=20&view=US`, 'dvr-nation.png', 1300, 2600, 'US');
  child.kill();
}

const browser = await launchChromium();
try {
  await exercise(browser);
  await debriefs(browser);
  console.log(`screenshots in ${out}`);
} finally {
  await browser.close();
}
