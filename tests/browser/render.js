'use strict';

// Renders one local HTML file in Debian's chromium (headless, through playwright-core)
// and prints what a reader would see, as JSON, for Lifeboat's Rust tests:
//
//   node render.js PAGE.html [SCREENSHOT.png]
//
// {"title", "headings": [...], "tables": n, "rows": n, "text", "console_errors": [...],
//  "requests": [...urls other than the page], "overflow_px": n}
//
// The page must stand alone: every request it makes besides itself is reported.

const path = require('node:path');
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const TIMEOUT_MS = 30000;

async function main() {
  const [file, screenshot] = process.argv.slice(2);
  if (!file) {
    console.error('usage: node render.js PAGE.html [SCREENSHOT.png]');
    process.exit(2);
  }
  const pageUrl = 'file://' + path.resolve(file);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: TIMEOUT_MS,
    args: ['--no-sandbox'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1024, height: 768 } });
    page.setDefaultTimeout(TIMEOUT_MS);
    const consoleErrors = [];
    const requests = [];
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    page.on('pageerror', (error) => consoleErrors.push(String(error)));
    page.on('request', (request) => {
      if (request.url() !== pageUrl) requests.push(request.url());
    });
    await page.goto(pageUrl, { waitUntil: 'load' });
    const seen = await page.evaluate(() => ({
      title: document.title,
      headings: [...document.querySelectorAll('h1, h2, h3')].map((h) => h.innerText.trim()),
      tables: document.querySelectorAll('table').length,
      rows: document.querySelectorAll('tr').length,
      text: document.body.innerText,
      overflow_px: Math.max(0, document.documentElement.scrollWidth - window.innerWidth),
    }));
    if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
    console.log(JSON.stringify({ ...seen, console_errors: consoleErrors, requests }));
  } finally {
    await browser.close();
  }
}

main().catch((error) => {
  console.error(`render.js: ${error.message}`);
  process.exit(1);
});
