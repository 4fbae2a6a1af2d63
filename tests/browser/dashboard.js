'use strict';

// Drives the agent's dashboard in Debian's chromium (headless, through playwright-core) as
// a person would, and prints what happened as JSON for Lifeboat's Rust tests:
//
//   node dashboard.js URL TOKEN PLAN SCREENSHOT_DIR
//
// Gives the token, reads the status cards, runs PLAN's backup with its button, picks the
// oldest restore point on the timeline and restores a copy as it was then, runs PLAN's
// drill and waits for the outcome, then looks again on a phone-sized screen.
// Screenshots: desktop.png, phone.png. {"load_ms", "cards": [{source, state, text}],
// "backup", "ticks": [time], "picked", "restore": {text, className}, "drill": text,
// "drill_class", "console_errors", "outside_requests", "overflow_px": {desktop, phone}}

const path = require('node:path');
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const TIMEOUT_MS = 120000;

async function overflow(page) {
  return page.evaluate(() => Math.max(0, document.documentElement.scrollWidth - window.innerWidth));
}

async function main() {
  const [url, token, plan, shots] = process.argv.slice(2);
  if (!shots) {
    console.error('usage: node dashboard.js URL TOKEN PLAN SCREENSHOT_DIR');
    process.exit(2);
  }
  const origin = new URL(url).origin;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30000,
    args: ['--no-sandbox'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1024, height: 768 } });
    page.setDefaultTimeout(TIMEOUT_MS);
    const consoleErrors = [];
    const outside = [];
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    page.on('request', (r) => { if (!r.url().startsWith(origin)) outside.push(r.url()); });

    const started = Date.now();
    await page.goto(url, { waitUntil: 'load' });
    const loadMs = Date.now() - started;
    await page.fill('#token', token);
    await page.click('#login button[type=submit]');
    await page.waitForSelector('.card');
    const cards = await page.$$eval('.card', (all) => all.map((c) => ({
      source: c.dataset.source, state: c.dataset.state, text: c.innerText,
    })));

    const planBox = `.plan[data-plan="${plan}"]`;
    const line = `${planBox} .action.good, ${planBox} .action.bad`;
    const ticksShown = () => page.$$eval('#timeline .tick', (all) => all.map((t) => t.dataset.time));
    await page.waitForSelector('#timeline .tick');
    const ticksBefore = (await ticksShown()).length;
    await page.click(`${planBox} button[data-action=backup]`);
    await page.waitForSelector(line);
    const backup = await page.$eval(line, (e) => e.innerText);
    await page.waitForFunction((n) => document.querySelectorAll('#timeline .tick').length > n, ticksBefore);
    const ticks = await ticksShown();
    await page.click('#timeline .tick >> nth=0');
    const picked = await page.$eval('#picked', (e) => e.dataset.time);
    await page.click('#restore');
    await page.waitForSelector('#restore-result.good, #restore-result.bad');
    const restore = await page.$eval('#restore-result', (e) => ({ text: e.innerText, className: e.className }));

    await page.click(`${planBox} button[data-action=drill]`);
    await page.waitForFunction((selector) => {
      const shown = document.querySelector(selector);
      return shown && shown.textContent.startsWith('drill');
    }, line);
    const drill = await page.$eval(line, (e) => ({ text: e.innerText, className: e.className }));
    // The card shows the drill once the page has read it back.
    await page.waitForFunction(() => [...document.querySelectorAll('.card')]
      .some((c) => c.innerText.includes('Last drill')));
    const cardsAfter = await page.$$eval('.card', (all) => all.map((c) => c.innerText));
    const desktop = await overflow(page);
    await page.screenshot({ path: path.join(shots, 'desktop.png'), fullPage: true });

    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(300);
    const phone = await overflow(page);
    await page.screenshot({ path: path.join(shots, 'phone.png'), fullPage: true });

    console.log(JSON.stringify({
      load_ms: loadMs,
      cards,
      cards_after: cardsAfter,
      backup,
      ticks,
      picked,
      restore,
      drill: drill.text,
      drill_class: drill.className,
      console_errors: consoleErrors,
      outside_requests: outside,
      overflow_px: { desktop, phone },
    }));
  } finally {
    await browser.close();
  }
}

main().catch((error) => {
  console.error(String(error && error.stack || error));
  process.exit(1);
});
