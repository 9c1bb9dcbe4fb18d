#!/usr/bin/env node
// Renders one page in headless Chromium (Debian's /usr/bin/chromium through playwright-core) and
// prints what a person would check as JSON: drawn SVG marks, text overflowing the page, requests.
//
//   node check.mjs (--file PATH | --url URL) [--screenshot OUT.png] [--width 1280] [--height 900]
//                  [--wait-for CSS] [--timeout-ms 30000]
//
// Output (stdout, one JSON object):
//   title, viewport {width,height}, document {scrollWidth, clientWidth, scrollHeight},
//   svgs: [{id, classes, dataset, width, height, marks: {class: drawn count}, tags: {tag: count}}],
//   overflow: [{element, text, right, scrollWidth, clientWidth}] (text past the viewport or its box),
//   requests: [url] (everything fetched but the page itself and data: URLs),
//   console_errors: [text], screenshot: path
// Exit codes: 0 measured, 2 bad arguments, 3 Chromium missing or failing to start, 4 page failed.
// Chromium is never downloaded: DUBAN_CHROMIUM or /usr/bin/chromium must exist.
import { chromium } from 'playwright-core';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

function parseArgs(argv) {
  const opts = { width: 1280, height: 900, timeoutMs: 30000 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) fail(2, `${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--file': opts.url = pathToFileURL(resolve(next())).href; break;
      case '--url': opts.url = next(); break;
      case '--screenshot': opts.screenshot = resolve(next()); break;
      case '--width': opts.width = Number(next()); break;
      case '--height': opts.height = Number(next()); break;
      case '--wait-for': opts.waitFor = next(); break;
      case '--timeout-ms': opts.timeoutMs = Number(next()); break;
      default: fail(2, `unknown argument ${a}`);
    }
  }
  if (!opts.url) fail(2, 'give --file PATH or --url URL');
  return opts;
}

function fail(code, msg) {
  process.stderr.write(`duban-browser-check: ${msg}\n`);
  process.exit(code);
}

// Runs inside the page: measurements of every SVG and of text that does not fit.
function measure() {
  const vw = document.documentElement.clientWidth;
  const describe = (el) => {
    let s = el.tagName.toLowerCase();
    if (el.id) s += `#${el.id}`;
    const cls = el.getAttribute('class');
    if (cls) s += '.' + cls.trim().split(/\s+/).join('.');
    return s;
  };
  const drawn = (el) => {
    const b = el.getBBox ? el.getBBox() : el.getBoundingClientRect();
    const tag = el.tagName.toLowerCase();
    if (tag === 'circle') return Number(el.getAttribute('r')) > 0;
    if (tag === 'line' || tag === 'polyline' || tag === 'path') return b.width > 0 || b.height > 0;
    return b.width > 0 && b.height > 0;
  };
  const svgs = [...document.querySelectorAll('svg')].map((svg) => {
    const r = svg.getBoundingClientRect();
    const marks = {};
    const tags = {};
    for (const el of svg.querySelectorAll('*')) {
      const tag = el.tagName.toLowerCase();
      tags[tag] = (tags[tag] || 0) + 1;
      const cls = el.getAttribute('class');
      if (!cls) continue;
      for (const c of cls.trim().split(/\s+/)) {
        marks[c] = (marks[c] || 0) + (drawn(el) ? 1 : 0);
      }
    }
    return {
      id: svg.id || null,
      classes: (svg.getAttribute('class') || '').trim().split(/\s+/).filter(Boolean),
      dataset: { ...svg.dataset },
      width: r.width,
      height: r.height,
      left: r.left,
      right: r.right,
      marks,
      tags,
    };
  });
  const overflow = [];
  for (const el of document.body.querySelectorAll('*')) {
    const tag = el.tagName.toLowerCase();
    if (el.closest('svg') && tag !== 'svg') {
      // SVG text: it must stay inside its own SVG's box.
      if (tag !== 'text') continue;
      const box = el.closest('svg').getBoundingClientRect();
      const r = el.getBoundingClientRect();
      if (r.width > 0 && (r.left < box.left - 1 || r.right > box.right + 1)) {
        overflow.push({ element: describe(el), text: el.textContent.slice(0, 60),
          right: r.right, left: r.left, box_left: box.left, box_right: box.right });
      }
      continue;
    }
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    const style = getComputedStyle(el);
    const clipsX = style.overflowX !== 'visible';
    const ownText = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    const tooWide = el.scrollWidth > el.clientWidth + 1 && !clipsX && ownText;
    const pastPage = r.right > vw + 1 || r.left < -1;
    if (tooWide || pastPage) {
      overflow.push({ element: describe(el), text: (el.textContent || '').trim().slice(0, 60),
        right: r.right, left: r.left, scrollWidth: el.scrollWidth, clientWidth: el.clientWidth });
    }
  }
  return {
    title: document.title,
    viewport: { width: window.innerWidth, height: window.innerHeight },
    document: {
      scrollWidth: document.documentElement.scrollWidth,
      clientWidth: document.documentElement.clientWidth,
      scrollHeight: document.documentElement.scrollHeight,
    },
    svgs,
    overflow,
  };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const exe = process.env.DUBAN_CHROMIUM || '/usr/bin/chromium';
  if (!existsSync(exe)) {
    fail(3, `Chromium not found at ${exe} (apt-get install chromium, or set DUBAN_CHROMIUM)`);
  }
  let browser;
  try {
    browser = await chromium.launch({
      executablePath: exe,
      headless: true,
      // No background traffic: the machine's network is closed, and a check must not phone out.
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic',
        '--no-first-run', '--disable-background-networking', '--disable-component-update',
        '--disable-sync'],
      timeout: opts.timeoutMs,
    });
  } catch (e) {
    fail(3, `cannot start Chromium at ${exe}: ${e.message.split('\n')[0]}`);
  }
  const requests = [];
  const consoleErrors = [];
  try {
    const page = await browser.newPage({ viewport: { width: opts.width, height: opts.height } });
    page.on('request', (r) => {
      const u = r.url();
      if (u !== opts.url && !u.startsWith('data:')) requests.push(u);
    });
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    const resp = await page.goto(opts.url, { waitUntil: 'load', timeout: opts.timeoutMs });
    if (resp && !resp.ok() && !opts.url.startsWith('file:')) {
      throw new Error(`HTTP ${resp.status()} for ${opts.url}`);
    }
    if (opts.waitFor) await page.waitForSelector(opts.waitFor, { timeout: opts.timeoutMs });
    await page.evaluate(() => document.fonts.ready);
    const result = await page.evaluate(measure);
    if (opts.screenshot) {
      await page.screenshot({ path: opts.screenshot, fullPage: true });
      result.screenshot = opts.screenshot;
    }
    result.requests = requests;
    result.console_errors = consoleErrors;
    process.stdout.write(JSON.stringify(result) + '\n');
  } catch (e) {
    await browser.close();
    fail(4, `page ${opts.url}: ${e.message.split('\n')[0]}`);
  }
  await browser.close();
}

main();
