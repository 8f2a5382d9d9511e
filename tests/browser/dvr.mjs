#!/usr/bin/env node
// Browser check of the Chokepoint debrief ("DVR") page, driven with playwright-core and a
// system Chromium (never a downloaded browser).
//
//   node dvr.mjs BASE_URL STATE_JSON TICK NATION [SCREENSHOT_DIR]
//
// STATE_JSON holds the ground-truth world at TICK (the shape of GET /api/world?tick=TICK, which is
// also what `chokepoint state --json` writes). Prints one summary line and exits 0, or prints what
// failed and exits 1. See README.md.

import { launchChromium } from './chromium.mjs';
import { readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const WAIT_MS = 15_000;      // any single wait in the page
const OVERALL_MS = 120_000;  // the whole run

class Failure extends Error {}
const fail = (msg) => { throw new Failure(msg); };

// ---- formatting: must match dvr.html's money() ----
function group(intString) {
  return intString.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}
function money(cents) {
  const n = Number(cents);
  const neg = n < 0;
  const a = Math.abs(Math.trunc(n));
  const whole = Math.floor(a / 100);
  const frac = a % 100;
  return (neg ? '-' : '') + group(String(whole)) + '.' + (frac < 10 ? '0' : '') + frac;
}
const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
// A figure as a whole token: not part of a longer number.
function containsFigure(text, figure) {
  return new RegExp(`(?<![\\d.,])${escapeRe(figure)}(?![\\d]|[.,]\\d)`).test(text);
}

function parseArgs(argv) {
  const [base, stateFile, tickArg, nation, shotDir] = argv;
  if (!base || !stateFile || tickArg === undefined || !nation) {
    fail('usage: node dvr.mjs BASE_URL STATE_JSON TICK NATION [SCREENSHOT_DIR]');
  }
  let baseUrl;
  try { baseUrl = new URL(base); } catch { fail(`BASE_URL is not a URL: ${base}`); }
  if (!/^\d+$/.test(tickArg)) fail(`TICK must be a non-negative integer, got ${tickArg}`);
  let state;
  try { state = JSON.parse(readFileSync(stateFile, 'utf8')); } catch (e) { fail(`cannot read STATE_JSON ${stateFile}: ${e.message}`); }
  for (const k of ['markets', 'nations', 'agents']) {
    if (!Array.isArray(state[k])) fail(`STATE_JSON ${stateFile} has no "${k}" array; is it a world view?`);
  }
  const tick = Number(tickArg);
  if (state.tick !== undefined && Number(state.tick) !== tick) {
    fail(`STATE_JSON is for tick ${state.tick}, not ${tick}`);
  }
  if (!state.nations.some((n) => n.nation === nation)) {
    fail(`nation ${nation} is not in STATE_JSON (nations: ${state.nations.map((n) => n.nation).join(', ')})`);
  }
  return { baseUrl, state, tick, nation, shotDir };
}

// Wait until tick `tick` is on screen in view `view` (or any view if null); fail fast with the
// page's #error text if loading it failed.
async function waitRendered(page, tick, view, what) {
  let res;
  try {
    const handle = await page.waitForFunction(([tick, view]) => {
      const label = document.getElementById('tick-label');
      if (!label || label.hasAttribute('data-loading')) return false;
      const err = document.getElementById('error');
      if (err && !err.hidden && err.textContent.trim()) return { error: err.textContent.trim() };
      const text = label.textContent.trim();
      const okTick = tick === null ? /^Tick \d+$/.test(text) : text === `Tick ${tick}`;
      const okView = view === null || label.getAttribute('data-view') === view;
      return okTick && okView ? { tick: Number(text.slice(5)) } : false;
    }, [tick, view], { timeout: WAIT_MS, polling: 25 });
    res = await handle.jsonValue();
  } catch (e) {
    const label = await page.locator('#tick-label').textContent().catch(() => '?');
    const err = await page.locator('#error').textContent().catch(() => '');
    fail(`${what}: #tick-label never showed "Tick ${tick ?? 'N'}"${view ? ` in view ${view}` : ''} ` +
      `(it shows "${label}"${err ? `; #error: ${err}` : ''}): ${e.message.split('\n')[0]}`);
  }
  if (res.error) fail(`${what}: the page shows an error: ${res.error}`);
  return res.tick;
}

async function marketCents(page) {
  return page.$$eval('#markets tr[data-market]', (rows) => rows.map((r) => {
    const cell = r.querySelector('.price');
    return [r.getAttribute('data-market'), cell ? cell.getAttribute('data-cents') : null];
  }));
}

async function checkMarkets(page, state, where) {
  const rows = await marketCents(page);
  const shown = new Map();
  for (const [key, cents] of rows) {
    if (shown.has(key)) fail(`${where}: market row "${key}" appears twice`);
    shown.set(key, cents);
  }
  for (const m of state.markets) {
    const key = `${m.commodity} ${m.stage}`;
    if (!shown.has(key)) fail(`${where}: market "${key}" is missing from #markets (rows: ${rows.map((r) => r[0]).join(', ')})`);
    const cents = shown.get(key);
    if (cents !== String(m.price_cents_per_kg)) {
      fail(`${where}: market "${key}" shows data-cents=${cents}, ground truth is ${m.price_cents_per_kg}`);
    }
    shown.delete(key);
  }
  if (shown.size) fail(`${where}: #markets has rows not in the ground truth: ${[...shown.keys()].join(', ')}`);
  return state.markets.length;
}

// Everything a reader (or a tooltip) could see: text of the document minus scripts and styles,
// plus attribute values.
async function pageText(page) {
  return page.evaluate(() => {
    const clone = document.documentElement.cloneNode(true);
    clone.querySelectorAll('script, style').forEach((n) => n.remove());
    const attrs = [];
    clone.querySelectorAll('*').forEach((n) => {
      for (const a of n.attributes) attrs.push(a.value);
    });
    return clone.textContent + '\n' + attrs.join('\n');
  });
}

async function main() {
  const { baseUrl, state, tick, nation, shotDir } = parseArgs(process.argv.slice(2));
  const origin = baseUrl.origin;
  if (shotDir) mkdirSync(shotDir, { recursive: true });

  const browser = await launchChromium();
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const requests = [];
    const foreign = [];
    const pageErrors = [];
    const nationBodies = [];
    // Record every request; let only same-origin ones out (the page must be self-contained).
    await context.route('**/*', (route) => {
      const url = route.request().url();
      let sameOrigin = false;
      try { sameOrigin = new URL(url).origin === origin; } catch { /* unparsable: foreign */ }
      if (sameOrigin || /^(data|blob|about):/.test(url)) return route.continue();
      foreign.push(url);
      return route.abort('blockedbyclient');
    });
    const page = await context.newPage();
    page.on('request', (r) => {
      const url = r.url();
      requests.push(url);
      if (/^(data|blob|about):/.test(url)) return;
      let o = null;
      try { o = new URL(url).origin; } catch { /* foreign */ }
      if (o !== origin && !foreign.includes(url)) foreign.push(url);
    });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('response', (r) => {
      if (new URL(r.url()).pathname.startsWith('/api/nation/') && r.ok()) {
        nationBodies.push({ url: r.url(), text: r.text().catch(() => '') });
      }
    });

    // 1. Open the page and wait for its first tick.
    const resp = await page.goto(baseUrl.href, { waitUntil: 'domcontentloaded', timeout: WAIT_MS });
    if (!resp || !resp.ok()) fail(`GET ${baseUrl.href} answered ${resp ? resp.status() : 'nothing'}`);
    const firstShown = await waitRendered(page, null, 'control', 'initial load');
    const title = (await page.locator('h1').first().textContent()) || '';
    if (!title.startsWith('Chokepoint debrief — run ')) fail(`unexpected header "${title}"`);
    const min = Number(await page.locator('#tick-slider').getAttribute('min'));
    const max = Number(await page.locator('#tick-slider').getAttribute('max'));
    if (!(min <= tick && tick <= max)) fail(`TICK ${tick} is outside the run's ticks ${min}..=${max}`);

    // 2. Ground truth at TICK.
    await page.locator('#tick-slider').fill(String(tick));
    await waitRendered(page, tick, 'control', `slider to ${tick}`);
    const nMarkets = await checkMarkets(page, state, `control view, tick ${tick}`);
    if (state.digest) {
      const digest = ((await page.locator('#digest').textContent()) || '').trim();
      if (digest !== state.digest) fail(`control view, tick ${tick}: #digest shows "${digest}", ground truth is "${state.digest}"`);
    }
    const nationRows = await page.$$eval('#nations tr[data-nation]', (rs) => rs.map((r) => [r.getAttribute('data-nation'), r.textContent]));
    if (nationRows.length !== state.nations.length) {
      fail(`control view: #nations has ${nationRows.length} rows, ground truth has ${state.nations.length} nations`);
    }
    for (const n of state.nations) {
      const row = nationRows.find(([code]) => code === n.nation);
      if (!row) fail(`control view: no #nations row for ${n.nation}`);
      if (!row[1].includes(money(n.treasury_cents))) {
        fail(`control view: ${n.nation}'s row does not show its treasury as "${money(n.treasury_cents)}": ${row[1]}`);
      }
    }
    // Names are shown as text: one holding "<" or "&" must read the same on the page (escaping).
    const controlText = await pageText(page);
    const unshown = state.agents.filter((a) => a.name && !controlText.includes(a.name));
    if (unshown.length) fail(`control view: agent names not shown as text: ${unshown.map((a) => JSON.stringify(a.name)).join(', ')}`);
    const agentCount = await page.locator('#agents tr[data-agent]').count();
    if (agentCount !== state.agents.length) {
      fail(`control view: #agents has ${agentCount} rows, ground truth has ${state.agents.length} agents`);
    }
    if (shotDir) await page.screenshot({ path: join(shotDir, 'control.png'), fullPage: true });

    // Step buttons.
    let stepped = 'no step (single-tick run)';
    if (tick < max) {
      await page.locator('#fwd1').click();
      await waitRendered(page, tick + 1, 'control', '#fwd1');
      await page.locator('#back1').click();
      await waitRendered(page, tick, 'control', '#back1');
      stepped = `fwd1 to ${tick + 1} and back`;
    } else if (tick > min) {
      await page.locator('#back1').click();
      await waitRendered(page, tick - 1, 'control', '#back1');
      await page.locator('#fwd1').click();
      await waitRendered(page, tick, 'control', '#fwd1');
      stepped = `back1 to ${tick - 1} and forward`;
    }
    await checkMarkets(page, state, `control view, tick ${tick} after stepping`);

    // 3. The nation's view at TICK.
    const requestsBeforeView = requests.length;
    await page.locator('#view-select').selectOption(nation);
    await waitRendered(page, tick, nation, `view ${nation}`);
    const shownNations = await page.$$eval('#nations tr[data-nation]', (rs) => rs.map((r) => r.getAttribute('data-nation')));
    if (shownNations.length !== 1 || shownNations[0] !== nation) {
      fail(`view ${nation}: #nations should hold exactly one row, for ${nation}; it holds [${shownNations.join(', ')}]`);
    }
    const shownAgents = await page.$$eval('#agents tr[data-agent]', (rs) => rs.map((r) => [r.getAttribute('data-agent'), r.getAttribute('data-nation')]));
    const strangers = shownAgents.filter(([, n]) => n !== nation);
    if (strangers.length) {
      fail(`view ${nation}: #agents shows other nations' agents: ${strangers.map(([id, n]) => `${id} (${n})`).join(', ')}`);
    }
    const ownAgents = state.agents.filter((a) => a.nation === nation);
    if (shownAgents.length !== ownAgents.length) {
      fail(`view ${nation}: #agents has ${shownAgents.length} rows, ${nation} has ${ownAgents.length} agents in the ground truth`);
    }
    await checkMarkets(page, state, `view ${nation}, tick ${tick} (public prices)`);
    const text = await pageText(page);
    if (state.digest && text.includes(state.digest)) fail(`view ${nation}: the ground-truth digest is on the page`);

    // Figures a nation may legitimately see: its own, and public market data.
    const own = state.nations.find((n) => n.nation === nation);
    const allowed = new Set(['0', money(0), String(own.treasury_cents), money(own.treasury_cents)]);
    for (const m of state.markets) {
      for (const c of [m.price_cents_per_kg, ...(m.domestic_prices || []).map((p) => p[1])]) {
        allowed.add(money(c));
        allowed.add(String(c));
      }
      allowed.add(String(m.volume_kg));
    }
    for (const a of ownAgents) {
      allowed.add(money(a.cash_cents)).add(String(a.cash_cents));
      for (const [, c] of a.forecasts || []) allowed.add(money(c)).add(String(c));
    }
    const secrets = [];
    let skipped = 0;
    for (const n of state.nations) {
      if (n.nation === nation || Number(n.treasury_cents) === 0) continue;
      // Below US$100 a figure is too short to tell a leak from a coincidence (ids, days, prices).
      if (Math.abs(Number(n.treasury_cents)) < 10000) { skipped++; continue; }
      for (const figure of [money(n.treasury_cents), String(n.treasury_cents)]) {
        if (allowed.has(figure)) { skipped++; continue; }
        secrets.push({ what: `${n.nation}'s treasury ${figure}`, figure });
      }
    }
    for (const { what, figure } of secrets) {
      if (containsFigure(text, figure)) fail(`view ${nation}: the page shows ${what}`);
    }
    const ownTexts = [own.name || '', ...ownAgents.map((a) => a.name)].join('\n');
    const foreignNames = state.agents
      .filter((a) => a.nation !== nation && a.name && !ownTexts.includes(a.name))
      .map((a) => a.name);
    for (const name of foreignNames) {
      if (text.includes(name)) fail(`view ${nation}: the page shows another nation's agent "${name}"`);
    }

    // What the server sent for the nation view must not hold more than the nation knew either.
    const viewRequests = requests.slice(requestsBeforeView).map((u) => new URL(u));
    const worldAfter = viewRequests.filter((u) => u.pathname === '/api/world');
    if (worldAfter.length) fail(`view ${nation}: the page fetched ground truth (${worldAfter[0].href}) for a nation view`);
    const mine = nationBodies.filter((b) => new URL(b.url).pathname === `/api/nation/${encodeURIComponent(nation)}`);
    if (!mine.length) fail(`view ${nation}: the page never fetched /api/nation/${nation}`);
    for (const b of mine) {
      b.text = await b.text;
      if (!b.text) continue; // superseded before its body was read
      let body;
      try { body = JSON.parse(b.text); } catch { fail(`${b.url} did not answer JSON`); }
      if (body.nation !== nation || !body.own || body.own.nation !== nation) {
        fail(`${b.url}: the answer is not ${nation}'s view (nation=${body.nation}, own.nation=${body.own && body.own.nation})`);
      }
      const others = (body.own.agents || []).filter((a) => a.nation !== nation);
      if (others.length) fail(`${b.url}: own.agents holds other nations' agents: ${others.map((a) => a.name).join(', ')}`);
      if (new URL(b.url).searchParams.get('tick') === String(tick)) {
        for (const { what, figure } of secrets.filter((s) => /^\d+$/.test(s.figure))) {
          if (containsFigure(b.text, figure)) fail(`${b.url}: the answer holds ${what}`);
        }
        for (const name of foreignNames) {
          if (b.text.includes(JSON.stringify(name).slice(1, -1))) fail(`${b.url}: the answer holds another nation's agent "${name}"`);
        }
      }
    }
    if (shotDir) await page.screenshot({ path: join(shotDir, `nation-${nation}.png`), fullPage: true });

    // 4. Nothing but BASE_URL's host was asked for anything.
    if (foreign.length) fail(`the page requested other hosts: ${[...new Set(foreign)].join(', ')}`);
    if (pageErrors.length) fail(`the page threw: ${pageErrors.join(' | ')}`);

    console.log(`dvr: ok — started at tick ${firstShown}; tick ${tick}: ${nMarkets} market prices match, ` +
      `${state.nations.length} nations, ${state.agents.length} agents, ${stepped}; view ${nation}: 1 nation row, ` +
      `${ownAgents.length} own agents, ${secrets.length} other treasury figures and ${foreignNames.length} other agents' names absent` +
      `${skipped ? ` (${skipped} coinciding figures skipped)` : ''}; ${requests.length} requests, all to ${baseUrl.host}` +
      `${shotDir ? `; screenshots in ${shotDir}` : ''}`);
  } finally {
    await browser.close().catch(() => {});
  }
}

const watchdog = setTimeout(() => {
  console.error(`dvr: FAIL — gave up after ${OVERALL_MS / 1000} s`);
  process.exit(1);
}, OVERALL_MS);

main().then(() => {
  clearTimeout(watchdog);
  process.exit(0);
}, (e) => {
  clearTimeout(watchdog);
  console.error(`dvr: FAIL — ${e instanceof Failure ? e.message : (e && e.stack) || e}`);
  process.exit(1);
});
