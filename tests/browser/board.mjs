#!/usr/bin/env node
// Drives the supervision board (duban serve) in headless Chromium (Debian's /usr/bin/chromium
// through playwright-core) the way its users do, and reports what it saw as JSON lines on stdout.
//
//   node board.mjs --url URL --supervisor TOKEN --unit TOKEN --unit-name NAME --alert ID
//                  --other ID --screenshot OUT.png [--timeout-ms 30000]
//
// Steps: the supervisor logs in and sees the planted yellow alert ID, opens its evidence; prints
// {"step":"ready"} and waits for a line `go ID2` on stdin (the test plants a new alert ID2 then),
// and waits for ID2 to appear without a reload; the unit logs in (its own window), sees only its
// own alerts (never OTHER), and gives feedback on ID; the supervisor's page shows the feedback
// live, the supervisor verifies, the card moves to the green column without a reload; screenshot
// of the board (distinct colours and pixel variance measured in the browser); the dashboard
// renders its charts. The last line is {"step":"done", ...results}.
// Exit codes: 0 done, 2 bad arguments, 3 Chromium missing or failing to start, 4 a step failed.
import { chromium } from 'playwright-core';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';

function fail(code, msg) {
  process.stderr.write(`duban-board-check: ${msg}\n`);
  process.exit(code);
}

function parseArgs(argv) {
  const o = { timeoutMs: 30000 };
  const names = {
    '--url': 'url', '--supervisor': 'supervisor', '--unit': 'unit', '--unit-name': 'unitName',
    '--alert': 'alert', '--other': 'other', '--screenshot': 'screenshot', '--timeout-ms': 'timeoutMs',
  };
  for (let i = 0; i < argv.length; i++) {
    const k = names[argv[i]];
    if (!k) fail(2, `unknown argument ${argv[i]}`);
    const v = argv[++i];
    if (v === undefined) fail(2, `${argv[i - 1]} needs a value`);
    o[k] = k === 'timeoutMs' ? Number(v) : v;
  }
  for (const k of ['url', 'supervisor', 'unit', 'unitName', 'alert', 'other', 'screenshot']) {
    if (!o[k]) fail(2, `missing --${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
  }
  o.screenshot = resolve(o.screenshot);
  return o;
}

const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

const lines = createInterface({ input: process.stdin });
const stdinLines = lines[Symbol.asyncIterator]();
async function nextLine() {
  const r = await stdinLines.next();
  if (r.done) throw new Error('stdin closed before the test answered');
  return r.value.trim();
}

async function loginAs(page, url, token) {
  await page.goto(url, { waitUntil: 'load' });
  await page.fill('#token', token);
  await page.click('#login-submit');
  await page.waitForSelector('#board:not([hidden])');
  await page.waitForSelector('#live.on');
}

const card = (id) => `article.card[data-alert-id="${id}"]`;

async function cardsOf(page) {
  return page.$$eval('article.card', (els) => els.map((e) => ({
    id: e.dataset.alertId, level: e.dataset.level, status: e.dataset.status, unit: e.dataset.unit,
    column: e.closest('.column')?.dataset.level,
  })));
}

// Distinct colours and luminance variance of a PNG, measured on a canvas in the browser.
async function pixelStats(context, png) {
  const page = await context.newPage();
  const b64 = png.toString('base64');
  const stats = await page.evaluate(async (data) => {
    const img = new Image();
    img.src = `data:image/png;base64,${data}`;
    await img.decode();
    const c = document.createElement('canvas');
    c.width = img.naturalWidth;
    c.height = img.naturalHeight;
    const g = c.getContext('2d');
    g.drawImage(img, 0, 0);
    const px = g.getImageData(0, 0, c.width, c.height).data;
    const colours = new Set();
    let sum = 0; let sq = 0; let n = 0;
    for (let i = 0; i < px.length; i += 4) {
      colours.add((px[i] << 16) | (px[i + 1] << 8) | px[i + 2]);
      const y = 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2];
      sum += y; sq += y * y; n++;
    }
    const mean = sum / n;
    return { width: c.width, height: c.height, colours: colours.size, variance: sq / n - mean * mean };
  }, b64);
  await page.close();
  return stats;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const exe = process.env.DUBAN_CHROMIUM || '/usr/bin/chromium';
  if (!existsSync(exe)) fail(3, `Chromium not found at ${exe} (apt-get install chromium, or set DUBAN_CHROMIUM)`);
  let browser;
  try {
    browser = await chromium.launch({
      executablePath: exe, headless: true, timeout: o.timeoutMs,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic',
        '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  } catch (e) {
    fail(3, `cannot start Chromium at ${exe}: ${e.message.split('\n')[0]}`);
  }
  const out = { step: 'done', requests_elsewhere: [], console_errors: [] };
  const origin = new URL(o.url).origin;
  const watch = (page, who) => {
    page.setDefaultTimeout(o.timeoutMs);
    page.on('request', (r) => {
      const u = r.url();
      if (!u.startsWith(origin) && !u.startsWith('data:') && u !== 'about:blank') out.requests_elsewhere.push(u);
    });
    page.on('console', (m) => { if (m.type() === 'error') out.console_errors.push(`${who}: ${m.text()}`); });
    page.on('pageerror', (e) => out.console_errors.push(`${who}: ${e}`));
  };
  let step = 'start';
  try {
    // 1. The supervisor logs in and sees the planted yellow alert.
    step = 'supervisor login';
    const supCtx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const sup = await supCtx.newPage();
    watch(sup, 'supervisor');
    let navigations = 0;
    sup.on('framenavigated', (f) => { if (f === sup.mainFrame()) navigations++; });
    await loginAs(sup, o.url, o.supervisor);
    step = 'yellow alert on the board';
    await sup.waitForSelector(`#col-yellow ${card(o.alert)}`);
    out.who = await sup.textContent('#who-name');
    out.counts_before = {
      yellow: Number(await sup.textContent('#count-yellow')),
      red: Number(await sup.textContent('#count-red')),
      green: Number(await sup.textContent('#count-green')),
    };
    out.supervisor_cards = await cardsOf(sup);

    // 2. Its evidence: complaints, the issue's timeline, complainants' histories, transitions.
    step = 'open the evidence';
    await sup.click(card(o.alert));
    await sup.waitForSelector('#d-complaints li');
    out.evidence = {
      title: await sup.textContent('#d-title'),
      facts: await sup.$$eval('#d-facts dt', (l) => l.map((x) => `${x.textContent}=${x.nextElementSibling.textContent}`)),
      complaints: await sup.$$eval('#d-complaints li', (l) => l.map((x) => x.dataset.complaintId)),
      timeline_days: await sup.$$eval('#d-timeline li', (l) => l.length),
      people: await sup.$$eval('#d-people .pseudonym', (l) => l.map((x) => x.textContent)),
      history: await sup.$$eval('table.history tbody tr', (l) => l.map((r) => r.textContent)),
      actions: await sup.$$eval('#d-actions button[data-action]', (l) => l.map((b) => b.dataset.action)),
    };
    await sup.click('#d-close');

    // Filters: the other alert's district shows only it; clearing brings both back.
    step = 'filters';
    const district = await sup.$eval(card(o.other), (e) => e.querySelector('.meta').textContent.split(' · ')[1]);
    await sup.selectOption('#f-district', district);
    await sup.waitForFunction((id) => {
      const cards = [...document.querySelectorAll('article.card')];
      return cards.length === 1 && cards[0].dataset.alertId === id;
    }, o.other);
    out.filter_district = { district, note: await sup.textContent('#board-note') };
    await sup.click('#filters button[type="reset"]');
    await sup.waitForSelector(card(o.alert));
    await sup.waitForSelector(card(o.other));
    const marker = await sup.evaluate(() => { window.__boardMarker = Math.random(); return window.__boardMarker; });
    const navsBefore = navigations;

    // 3. A new alert appears without a reload.
    step = 'new alert live';
    emit({ step: 'ready' });
    const go = await nextLine();
    const fresh = go.split(/\s+/)[1];
    if (!go.startsWith('go') || !fresh) throw new Error(`unexpected line from the test: ${go}`);
    await sup.waitForSelector(`#col-yellow ${card(fresh)}`);
    out.fresh_seen = fresh;

    // 4. The unit logs in in its own window: only its own alerts; gives feedback.
    step = 'unit login';
    const unitCtx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const unit = await unitCtx.newPage();
    watch(unit, 'unit');
    await loginAs(unit, o.url, o.unit);
    await unit.waitForSelector(card(o.alert));
    await unit.waitForSelector(card(fresh));
    out.unit_who = await unit.textContent('#who-name');
    out.unit_cards = await cardsOf(unit);
    out.unit_sees_other = (await unit.$(card(o.other))) !== null;
    out.unit_unit_filter_hidden = await unit.$eval('#f-unit', (s) => s.closest('label').hidden);
    step = 'unit feedback';
    await unit.click(card(o.alert));
    await unit.waitForSelector('#d-actions button[data-action="feedback"]');
    out.unit_actions = await unit.$$eval('#d-actions button[data-action]', (l) => l.map((b) => b.dataset.action));
    await unit.click('#d-actions button[data-action="feedback"]');
    await unit.fill('#act-form textarea[name="reason"]', '已组织现场整治，清理占道经营并建立巡查机制');
    await unit.click('#act-submit');
    await unit.waitForSelector('#act-result.ok');
    out.unit_result = await unit.textContent('#act-result');

    // 5. The supervisor sees the feedback arrive live, verifies; the card turns green, no reload.
    step = 'feedback live on the supervisor page';
    await sup.waitForSelector(`#col-yellow ${card(o.alert)}[data-status="feedback_received"]`);
    step = 'verify';
    await sup.click(card(o.alert));
    await sup.waitForSelector('#d-actions button[data-action="verify"]');
    await sup.click('#d-actions button[data-action="verify"]');
    await sup.fill('#act-form textarea[name="reason"]', '现场核查整改到位');
    await sup.click('#act-submit');
    await sup.waitForSelector('#act-result.ok');
    await sup.click('#d-close');
    step = 'green without reload';
    await sup.waitForSelector(`#col-green ${card(o.alert)}`);
    out.in_yellow_after = (await sup.$(`#col-yellow ${card(o.alert)}`)) !== null;
    out.counts_after = {
      yellow: Number(await sup.textContent('#count-yellow')),
      red: Number(await sup.textContent('#count-red')),
      green: Number(await sup.textContent('#count-green')),
    };
    out.no_reload = navigations === navsBefore
      && (await sup.evaluate(() => window.__boardMarker)) === marker;

    // 6. Screenshot of the board, measured.
    step = 'screenshot';
    const png = await sup.screenshot({ path: o.screenshot, fullPage: true });
    out.screenshot = o.screenshot;
    out.pixels = await pixelStats(supCtx, readFileSync(o.screenshot));
    out.png_bytes = png.length;

    // 7. The dashboard: numbers, 30-day trend, by district, hottest issues.
    step = 'dashboard';
    await sup.click('#nav-dashboard');
    await sup.waitForSelector('#dash-trend svg');
    out.dashboard = {
      numbers: await sup.$$eval('#dash-numbers .num', (l) => l.map((n) => n.textContent)),
      trend_points: await sup.$$eval('#dash-trend circle.point', (l) => l.length),
      districts: await sup.$$eval('#dash-districts table tbody tr', (l) => l.map((r) => r.textContent)),
      hot: await sup.$$eval('#dash-hot table tbody tr', (l) => l.length),
    };
    await sup.screenshot({ path: o.screenshot.replace(/\.png$/, '-dashboard.png'), fullPage: true });
    emit(out);
  } catch (e) {
    emit({ step: 'failed', at: step, error: e.message.split('\n')[0], partial: out });
    await browser.close();
    fail(4, `step "${step}": ${e.message.split('\n')[0]}`);
  }
  await browser.close();
  lines.close();
}

main();
