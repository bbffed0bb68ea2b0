// Drives the dashboard in Debian's headless Chromium through playwright-core (no browser download) and
// prints one JSON document of what the page showed; tests/integration/test_dashboard_browser.py checks
// it against the API.
//
// mode "apikey": signs in with the API key, waits for the charts, reads the page, takes a screenshot,
// changes the date range and reads again, then opens the bare page (default range) and reads it.
// mode "entra": opens the page without a session (it must send the browser to /.auth/login/aad), then
// with App Service Authentication's principal headers on every request (what Easy Auth adds).
//
// Optional stand-ins for what other parts of the API may or may not serve yet:
//   "anomalies": a JSON body for GET /api/anomalies, or 404 (the route is absent);
//   "usageTotals": fields merged into the totals of every /api/usage page (null removes one: an API
//   without the price as-of date or the cost split).
//
// usage: node tests/browser/dashboard.mjs '{"base": "http://127.0.0.1:PORT", "mode": "apikey", ...}'
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const options = JSON.parse(process.argv[2]);
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const profile = mkdtempSync(join(tmpdir(), 'chargeback-chromium-'));
const external = [];
const problems = [];
const requested = [];
const signIns = [];

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

const read = (page) => page.evaluate(() => {
  const value = (id) => document.getElementById(id).dataset.value;
  const text = (id) => document.getElementById(id).textContent.trim();
  const rows = (id, attr) => [...document.querySelectorAll(`#${id} tbody tr`)].map((tr) => ({
    key: tr.dataset[attr], tokens: tr.dataset.tokens ? Number(tr.dataset.tokens) : null,
    cost: tr.dataset.cost ? Number(tr.dataset.cost) : null,
    cells: [...tr.querySelectorAll('td')].map((td) => td.textContent.trim()),
  }));
  const chartSums = (id) => {
    const chart = Chart.getChart(document.getElementById(id));
    return chart ? chart.data.datasets.map((d) => ({ label: d.label ?? null,
      total: d.data.reduce((a, v) => a + (v === null ? 0 : typeof v === 'number' ? v : v.y), 0),
      points: d.data.length, data: d.data.map((v) => (v === null || typeof v === 'number' ? v : v.y)) })) : null;
  };
  const probe = Chart.getChart(document.getElementById('chart-probe'));
  const probeTicks = probe ? probe.scales.x.ticks.map((t) => ({ value: t.value, label: t.label })) : [];
  const cost = Chart.getChart(document.getElementById('chart-cost'));
  const costTicks = cost ? cost.scales.y.ticks.map((t) => t.label) : [];
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
    modelHeadings: [...document.querySelectorAll('#table-models thead th')].map((th) => th.textContent.trim()),
    gauges: [...document.querySelectorAll('.gauge')].map((g) => ({ subscription: g.dataset.subscription,
      percent: Number(g.dataset.percent), period: g.dataset.period,
      otherPeriod: g.dataset.otherPeriod ?? null,
      otherPercent: g.dataset.otherPercent === undefined ? null : Number(g.dataset.otherPercent),
      pctText: g.querySelector('.pct').textContent.trim(),
      otherText: g.querySelector('.other') ? g.querySelector('.other').textContent.trim() : null,
      text: g.textContent.replace(/\s+/g, ' ').trim(),
      level: [...g.classList].find((c) => c.startsWith('level-')) })),
    probeVisible: !document.getElementById('probe-card').hidden,
    probes: rows('table-probe', 'deployment'),
    probeTicks,
    costTicks,
    charts: { tokens: chartSums('chart-tokens'), cost: chartSums('chart-cost'), subs: chartSums('chart-subs'),
      models: chartSums('chart-models'), probe: chartSums('chart-probe') },
    chartLabels: cost ? cost.data.labels : [],
    anomalies: [...document.querySelectorAll('#cost-anomalies li')].map((li) => ({
      subscription: li.dataset.subscription, day: li.dataset.day, text: li.textContent.trim() })),
    anomalyListVisible: !document.getElementById('cost-anomalies').hidden,
    costHint: text('cost-hint'),
    footerPrices: text('footer-prices'),
    priceAsOf: document.getElementById('footer-prices').dataset.asOf || null,
    costSplit: document.getElementById('cost-split').hidden ? null
      : Object.fromEntries([...document.querySelectorAll('#cost-split .split')].map((s) => [s.dataset.split,
        s.textContent.trim()])),
    who: document.getElementById('who').hidden ? null : text('who'),
    loginOpen: document.getElementById('login').open,
    signoutText: document.getElementById('signout').hidden ? null : text('signout'),
    filterOptions: [...document.querySelectorAll('#sub-options input')].map((i) => i.value),
    storedKey: sessionStorage.getItem('chargeback.apiKey') !== null,
    url: location.search,
  };
});

try {
  const base = new URL(options.base);
  // Only the app under test may be reached: anything else is recorded and refused.
  await context.route('**/*', async (route) => {
    const request = route.request();
    const url = new URL(request.url());
    if (url.protocol === 'data:') return route.continue();
    if (url.host !== base.host) {
      external.push(request.url());
      return route.abort();
    }
    requested.push(url.pathname + url.search);
    if (url.pathname.startsWith('/.auth/login/')) {  // App Service Authentication's sign-in, stood in for
      signIns.push(url.pathname + url.search);
      return route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>sign in</title>' });
    }
    if (url.pathname === '/api/anomalies' && options.anomalies !== undefined) {
      return options.anomalies === 404
        ? route.fulfill({ status: 404, contentType: 'application/json', body: '{"detail":"Not Found"}' })
        : route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(options.anomalies) });
    }
    if (url.pathname === '/api/usage' && options.usageTotals) {
      const response = await route.fetch();
      const page = await response.json();
      page.totals = { ...page.totals, ...options.usageTotals };
      for (const [name, value] of Object.entries(options.usageTotals)) if (value === null) delete page.totals[name];
      return route.fulfill({ response, json: page });
    }
    return route.continue();
  });
  const page = context.pages()[0] || await context.newPage();
  page.on('console', (message) => { if (message.type() === 'error') problems.push(`console: ${message.text()}`); });
  page.on('pageerror', (error) => problems.push(`page: ${error.message}`));
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`HTTP ${response.status()} ${new URL(response.url()).pathname}`);
  });
  const started = Date.now();
  const result = {};

  if (options.mode === 'entra') {
    // no session: the page loads (it holds no data) and sends the browser to sign in
    await page.goto(`${options.base}/api/dashboard?from=${options.from}&to=${options.to}`);
    await page.waitForURL(/\/\.auth\/login\/aad/, { timeout: 10000 });
    result.signIns = [...signIns];
    // signed in: App Service Authentication puts the principal on every request
    await context.setExtraHTTPHeaders(options.principal);
    await page.goto(`${options.base}/api/dashboard?from=${options.from}&to=${options.to}`);
    await page.waitForSelector('body[data-state="ready"][data-loads="1"]', { timeout: 15000 });
    result.first = await read(page);
    await page.screenshot({ path: options.screenshot, fullPage: true });
  } else {
    await page.goto(`${options.base}/api/dashboard?from=${options.from}&to=${options.to}`);
    await page.waitForSelector('#login[open]', { timeout: 10000 });
    result.beforeLogin = await page.evaluate(() => document.body.dataset.state);
    await page.fill('#api-key', options.key);
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('body[data-state="ready"][data-loads="1"]', { timeout: 15000 });
    result.first = await read(page);
    await page.screenshot({ path: options.screenshot, fullPage: true });
    if (options.gaugesShot) await page.locator('#quota-card').screenshot({ path: options.gaugesShot });
    if (options.costShot) await page.locator('#chart-cost').locator('xpath=../..').screenshot({ path: options.costShot });
    if (options.probeShot) await page.locator('#probe-card').screenshot({ path: options.probeShot });

    // a new date range through the form
    await page.fill('#from', options.from2);
    await page.fill('#to', options.to2);
    await page.click('#apply');
    await page.waitForSelector('body[data-state="ready"][data-loads="2"]', { timeout: 15000 });
    result.second = await read(page);
    if (options.screenshot2) await page.screenshot({ path: options.screenshot2, fullPage: true });

    // the bare page (the key is still in this tab): the default range
    await page.goto(`${options.base}/api/dashboard`);
    await page.waitForSelector('body[data-state="ready"][data-loads="1"]', { timeout: 15000 });
    result.bare = await read(page);
  }
  console.log(JSON.stringify({ ...result, external, problems, requested, ms: Date.now() - started }));
} catch (error) {
  console.error(JSON.stringify({ problems, requested: requested.slice(-10) }));  // what the page saw before failing
  throw error;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
