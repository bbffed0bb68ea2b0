// Drives the dashboard in Debian's headless Chromium through playwright-core (no browser download):
// signs in with the API key, waits for the charts, reads what the page shows, takes a screenshot,
// changes the date range and reads again. Prints one JSON document; tests/integration/test_dashboard_browser.py
// checks it against the API.
//
// usage: node tests/browser/dashboard.mjs '{"base": "http://127.0.0.1:PORT", "key": "...", "from": "...",
//        "to": "...", "from2": "...", "to2": "...", "screenshot": "test-artifacts/dashboard.png"}'
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const options = JSON.parse(process.argv[2]);
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const profile = mkdtempSync(join(tmpdir(), 'chargeback-chromium-'));
const external = [];
const problems = [];

const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  viewport: { width: 1440, height: 1000 },
  deviceScaleFactor: 1,
  locale: 'en-US',
  timezoneId: 'UTC',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', '--disable-quic', '--disable-dev-shm-usage'],
});

try {
  const base = new URL(options.base);
  // Only the app under test may be reached: anything else is recorded and refused.
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.protocol === 'data:' || url.host === base.host) return route.continue();
    external.push(route.request().url());
    return route.abort();
  });
  const page = context.pages()[0] || await context.newPage();
  page.on('console', (message) => { if (message.type() === 'error') problems.push(`console: ${message.text()}`); });
  page.on('pageerror', (error) => problems.push(`page: ${error.message}`));
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`HTTP ${response.status()} ${response.url()}`);
  });

  const read = () => page.evaluate(() => {
    const value = (id) => document.getElementById(id).dataset.value;
    const text = (id) => document.getElementById(id).textContent.trim();
    const rows = (id, attr) => [...document.querySelectorAll(`#${id} tbody tr`)].map((tr) => ({
      key: tr.dataset[attr], tokens: tr.dataset.tokens ? Number(tr.dataset.tokens) : null,
      cells: [...tr.querySelectorAll('td')].map((td) => td.textContent.trim()),
    }));
    const chartSums = (id) => {
      const chart = Chart.getChart(document.getElementById(id));
      return chart ? chart.data.datasets.map((d) => ({ label: d.label ?? null,
        total: d.data.reduce((a, v) => a + (typeof v === 'number' ? v : v.y), 0), points: d.data.length })) : null;
    };
    return {
      state: document.body.dataset.state,
      loads: Number(document.body.dataset.loads || 0),
      from: document.getElementById('from').value,
      to: document.getElementById('to').value,
      kpis: {
        tokens: { value: value('kpi-tokens'), text: text('kpi-tokens') },
        cost: { value: value('kpi-cost'), text: text('kpi-cost') },
        requests: { value: value('kpi-requests'), text: text('kpi-requests') },
        unmetered: { value: value('kpi-unmetered'), text: text('kpi-unmetered') },
      },
      unmeteredBanner: document.getElementById('unmetered').hidden ? null : text('unmetered'),
      message: document.getElementById('message').hidden ? null : text('message'),
      subscriptions: rows('table-subs', 'subscription'),
      models: rows('table-models', 'model'),
      gauges: [...document.querySelectorAll('.gauge')].map((g) => ({ subscription: g.dataset.subscription,
        percent: Number(g.dataset.percent), text: g.textContent.replace(/\s+/g, ' ').trim(),
        level: [...g.classList].find((c) => c.startsWith('level-')) })),
      probeVisible: !document.getElementById('probe-card').hidden,
      probes: rows('table-probe', 'deployment'),
      charts: { tokens: chartSums('chart-tokens'), cost: chartSums('chart-cost'), subs: chartSums('chart-subs'),
        models: chartSums('chart-models'), probe: chartSums('chart-probe') },
      filterOptions: [...document.querySelectorAll('#sub-options input')].map((i) => i.value),
      storedKey: sessionStorage.getItem('chargeback.apiKey') !== null,
      url: location.search,
    };
  });

  const started = Date.now();
  await page.goto(`${options.base}/api/dashboard?from=${options.from}&to=${options.to}`);
  await page.waitForSelector('#login[open]', { timeout: 10000 });
  const beforeLogin = await page.evaluate(() => document.body.dataset.state);
  await page.fill('#api-key', options.key);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('body[data-state="ready"][data-loads="1"]', { timeout: 15000 });
  const first = await read();
  await page.screenshot({ path: options.screenshot, fullPage: true });

  // a new date range through the form
  await page.fill('#from', options.from2);
  await page.fill('#to', options.to2);
  await page.click('#apply');
  await page.waitForSelector('body[data-state="ready"][data-loads="2"]', { timeout: 15000 });
  const second = await read();
  if (options.screenshot2) await page.screenshot({ path: options.screenshot2, fullPage: true });

  console.log(JSON.stringify({ beforeLogin, first, second, external, problems, ms: Date.now() - started }));
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
