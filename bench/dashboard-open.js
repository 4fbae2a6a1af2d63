'use strict';
// Opens the agent's dashboard in Debian's chromium (headless, playwright-core from
// tests/browser) and keeps it open, refreshing every 5 s as it does, for SECONDS; prints
// the page's load time and the time to its first cards and timeline.
//   node bench/dashboard-open.js URL TOKEN SECONDS
const { chromium } = require(require('node:path').join(__dirname, '../tests/browser/node_modules/playwright-core'));
(async () => {
  const [url, token, seconds] = process.argv.slice(2);
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
  const page = await browser.newPage({ viewport: { width: 1024, height: 768 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  const t0 = Date.now();
  await page.goto(url, { waitUntil: 'load' });
  const load = Date.now() - t0;
  await page.fill('#token', token);
  const t1 = Date.now();
  await page.click('#login button[type=submit]');
  await page.waitForSelector('#timeline .tick');
  const firstData = Date.now() - t1;
  console.log(JSON.stringify({ load_ms: load, cards_and_timeline_ms: firstData }));
  await page.waitForTimeout(Number(seconds) * 1000);
  console.log(JSON.stringify({ errors }));
  await browser.close();
})().catch((e) => { console.error(e); process.exit(1); });
