/* APIM Chargeback dashboard. Calls the JSON API with the caller's own credentials:
 * API_AUTH=apikey  -> the key is asked once and kept in sessionStorage (this tab only), sent as x-api-key;
 * API_AUTH=functionkey -> the page was opened with ?code=<function key>, passed on to every call;
 * API_AUTH=entra -> App Service Authentication's session cookie (no key, nothing in the URL); a 401
 *   sends the browser to /.auth/login/aad and back here.
 * Optional API fields (price list as-of date, cost split, /api/anomalies) are shown when present.
 * Nothing is loaded from anywhere but this app. */
(() => {
  'use strict';

  const body = document.body;
  const AUTH = body.dataset.auth;
  const pageParams = new URLSearchParams(location.search);
  const CODE = AUTH === 'functionkey' ? pageParams.get('code') : null;
  const KEY_STORE = 'chargeback.apiKey';
  const SIGN_IN_STORE = 'chargeback.signInAt';  // entra: when this tab last went to sign in (no loops)
  const SHORT_MONTH_DAYS = 7;  // month to date shorter than this: open on the last 30 days instead
  const DAY_MS = 86400000;
  const MAX_PROBE_DAYS = 31;
  const TOP_SERIES = 8;
  const TOP_GAUGES = 12;
  const PALETTE = ['#2563eb', '#16a34a', '#f59e0b', '#dc2626', '#7c3aed', '#0891b2', '#db2777', '#65a30d',
    '#ea580c', '#475569'];
  const OTHER = '#94a3b8';

  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (name === 'class') node.className = value;
      else if (name === 'style') node.style.cssText = value;
      else if (name.startsWith('data-') || name.startsWith('aria-')) node.setAttribute(name, value);
      else node[name] = value;
    }
    for (const child of children) node.append(child instanceof Node ? child : String(child));
    return node;
  };

  // -- formatting ------------------------------------------------------------------------------
  const intFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
  const compactFormat = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });
  const pctFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
  let currency = 'USD';
  const fmtInt = (n) => intFormat.format(Number(n) || 0);
  const fmtCompact = (n) => compactFormat.format(Number(n) || 0);
  const fmtPct = (n) => `${pctFormat.format(Number(n) || 0)} %`;
  /** Money, one way everywhere: 2 decimals; below a cent, enough decimals for 2 significant digits. */
  const moneyDecimals = (n) => {
    const size = Math.abs(n);
    return size === 0 || size >= 0.01 ? 2 : Math.min(8, Math.floor(-Math.log10(size)) + 2);
  };
  const fmtMoney = (value) => {
    const n = Number(value) || 0;
    const digits = moneyDecimals(n);
    return new Intl.NumberFormat(undefined, { style: 'currency', currency, minimumFractionDigits: 2,
      maximumFractionDigits: digits }).format(n);
  };

  // -- dates (UTC days, as the API counts them) -----------------------------------------------
  const isoDay = (d) => d.toISOString().slice(0, 10);
  const parseDay = (s) => { const [y, m, d] = s.split('-').map(Number); return new Date(Date.UTC(y, m - 1, d)); };
  const todayUtc = () => { const n = new Date(); return new Date(Date.UTC(n.getUTCFullYear(), n.getUTCMonth(), n.getUTCDate())); };
  const addDays = (d, k) => new Date(d.getTime() + k * DAY_MS);
  const dayLabel = (s) => parseDay(s).toLocaleDateString(undefined, { month: 'short', day: 'numeric', timeZone: 'UTC' });
  const validDay = (s) => /^\d{4}-\d{2}-\d{2}$/.test(s || '') && !Number.isNaN(parseDay(s).getTime());

  function preset(name) {
    const today = todayUtc();
    if (name === 'mtd') return [new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), 1)), today];
    if (name === 'last-month') {
      const first = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth() - 1, 1));
      return [first, addDays(new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), 1)), -1)];
    }
    return [addDays(today, -(Number(name) - 1)), today];
  }

  // -- API ---------------------------------------------------------------------------------------
  class HttpError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(path, query = []) {
    const url = new URL(path, location.origin);
    for (const [name, value] of query) url.searchParams.append(name, value);
    if (CODE) url.searchParams.set('code', CODE);
    const headers = { Accept: 'application/json' };
    if (AUTH === 'apikey') headers['x-api-key'] = sessionStorage.getItem(KEY_STORE) || '';
    // entra: the session cookie goes with every same-origin call; a redirect (an expired session
    // sent to the login page) is not followed but read as "sign in again"
    const response = await fetch(url, { headers, credentials: 'same-origin', cache: 'no-store',
      redirect: AUTH === 'entra' ? 'manual' : 'follow' });
    if (response.type === 'opaqueredirect') throw new HttpError(401, 'your sign-in has expired');
    if (!response.ok) {
      let message = `${response.status} ${response.statusText}`;
      try { message = (await response.json()).error.message || message; } catch (_) { /* not JSON */ }
      throw new HttpError(response.status, message);
    }
    return response.json();
  }

  /** Every page of a usage query, following the signed `next` tokens. */
  async function usageAll(query) {
    let rows = [];
    let first = null;
    let next = null;
    let pages = 0;
    do {
      const page = await api('/api/usage', next ? [...query, ['next', next]] : query);
      first = first || page;
      rows = rows.concat(page.rows);
      next = page.next;
      pages += 1;
    } while (next && pages < 200);
    return { ...first, rows, next: null, pages };
  }

  async function limited(items, size, work) {
    const results = new Array(items.length);
    let index = 0;
    const runners = Array.from({ length: Math.min(size, items.length) }, async () => {
      while (index < items.length) {
        const mine = index++;
        results[mine] = await work(items[mine]);
      }
    });
    await Promise.all(runners);
    return results;
  }

  // -- state -------------------------------------------------------------------------------------
  const known = new Set();
  const selected = new Set(pageParams.getAll('subscription').flatMap((s) => s.split(',')).filter(Boolean));
  const charts = {};
  const subscriptionColors = new Map();
  let loads = 0;
  let me = null;

  function setState(state) { body.dataset.state = state; }

  function showMessage(text) {
    const box = $('message');
    box.textContent = text;
    box.hidden = !text;
  }

  function chart(id, config) {
    if (charts[id]) charts[id].destroy();
    charts[id] = new Chart($(id), config);
    return charts[id];
  }

  // -- subscription filter -------------------------------------------------------------------
  function renderSubscriptionOptions() {
    const box = $('sub-options');
    box.replaceChildren();
    for (const name of [...known].sort()) {
      const input = el('input', { type: 'checkbox', value: name, checked: selected.has(name) });
      input.addEventListener('change', () => {
        if (input.checked) selected.add(name); else selected.delete(name);
        updateSubscriptionSummary();
      });
      box.append(el('label', {}, input, name));
    }
    if (!known.size) box.append(el('p', { class: 'empty' }, 'No subscriptions in range'));
    updateSubscriptionSummary();
  }

  function updateSubscriptionSummary() {
    const names = [...selected];
    $('sub-summary').textContent = names.length === 0 ? 'All subscriptions'
      : names.length <= 2 ? names.join(', ') : `${names.length} subscriptions`;
  }

  /** An optional route: its JSON, or null when this deployment does not have it (404). */
  async function optional(path, query) {
    try {
      return await api(path, query);
    } catch (error) {
      if (error instanceof HttpError && (error.status === 404 || error.status === 405)) return null;
      throw error;
    }
  }

  // -- rendering -------------------------------------------------------------------------------
  function sum(rows, keyOf, valueOf) {
    const totals = new Map();
    for (const row of rows) {
      const key = keyOf(row);
      totals.set(key, (totals.get(key) || 0) + valueOf(row));
    }
    return totals;
  }

  function renderKpis(totals) {
    const set = (id, text, value) => { const node = $(id); node.textContent = text; node.dataset.value = value; };
    set('kpi-tokens', fmtInt(totals.totalTokens), totals.totalTokens);
    $('kpi-tokens-sub').textContent = `prompt ${fmtInt(totals.promptTokens)} · completion ${fmtInt(totals.completionTokens)}`
      + ` · cached ${fmtInt(totals.cachedTokens)}`;
    set('kpi-cost', fmtMoney(totals.cost), totals.cost);
    $('kpi-cost-sub').textContent = totals.unpricedTokens
      ? `${fmtInt(totals.unpricedTokens)} tokens of unpriced models not included (${(totals.unpricedModels || []).join(', ')})`
      : `${currency}, exact cost rounded for display`;
    set('kpi-requests', fmtInt(totals.requests), totals.requests);
    const errorRate = totals.requests ? (100 * totals.errorRequests) / totals.requests : 0;
    $('kpi-errors').textContent = `${fmtInt(totals.errorRequests)} failed (${fmtPct(errorRate)})`;
    set('kpi-unmetered', fmtInt(totals.unmeteredRequests), totals.unmeteredRequests);
    $('kpi-unmetered-card').classList.toggle('alert', totals.unmeteredRequests > 0);

    const warning = $('unmetered');
    if (totals.unmeteredRequests > 0) {
      warning.replaceChildren(
        el('strong', {}, `${fmtInt(totals.unmeteredRequests)} successful requests had no token count`),
        ` and are not in the token or cost figures: ${fmtInt(totals.unmeteredStreamed)} streamed without`
        + ` stream_options.include_usage, ${fmtInt(totals.unmeteredTruncated)} with a logged response body cut`
        + ' before its usage object. Turn on include_usage, or log the LLM messages table.');
      warning.hidden = false;
    } else {
      warning.hidden = true;
    }
  }

  function stackedSeries(rows, days, valueOf, colors, top) {
    const index = new Map(days.map((d, i) => [d, i]));
    const series = new Map(top.map((name) => [name, new Array(days.length).fill(0)]));
    const other = new Array(days.length).fill(0);
    for (const row of rows) {
      const i = index.get(row.periodStart.slice(0, 10));
      if (i === undefined) continue;
      (series.get(row.subscriptionId) || other)[i] += valueOf(row);
    }
    const datasets = top.map((name) => ({ label: name, data: series.get(name), backgroundColor: colors.get(name),
      borderRadius: 3, maxBarThickness: 42 }));
    if (other.some((v) => v)) datasets.push({ label: 'Other', data: other, backgroundColor: OTHER, borderRadius: 3 });
    return datasets;
  }

  function barOptions(format, tooltipFormat) {
    return {
      responsive: true, maintainAspectRatio: false, animation: false,
      interaction: { mode: 'index', intersect: false },
      plugins: {
        legend: { position: 'bottom', labels: { boxWidth: 12, boxHeight: 12, usePointStyle: true } },
        tooltip: { filter: (c) => c.raw !== null,
          callbacks: { label: (c) => (c.dataset.describe ? c.dataset.describe(c.dataIndex)
            : `${c.dataset.label}: ${tooltipFormat(c.parsed.y)}`) } },
      },
      scales: {
        x: { stacked: true, grid: { display: false } },
        y: { stacked: true, beginAtZero: true, ticks: { callback: (v) => format(v) }, grid: { color: '#eef2f7' } },
      },
    };
  }

  function horizontalBar(id, labels, values, colors, format) {
    chart(id, {
      type: 'bar',
      data: { labels, datasets: [{ data: values, backgroundColor: colors, borderRadius: 4, maxBarThickness: 22 }] },
      options: {
        indexAxis: 'y', responsive: true, maintainAspectRatio: false, animation: false,
        plugins: { legend: { display: false }, tooltip: { callbacks: { label: (c) => format(c.parsed.x) } } },
        scales: { x: { beginAtZero: true, ticks: { callback: (v) => format(v), maxTicksLimit: 6 },
          grid: { color: '#eef2f7' } }, y: { grid: { display: false } } },
      },
    });
  }

  /** Names ranked by cost, then tokens (an unpriced model costs 0 but still shows its tokens). */
  function rankByCost(costs, tokens) {
    return [...tokens.keys()].sort((a, b) => (costs.get(b) || 0) - (costs.get(a) || 0)
      || tokens.get(b) - tokens.get(a) || a.localeCompare(b));
  }

  /** Spend anomalies as triangles over the day's cost bar, described in the tooltip and listed below. */
  function anomalyDataset(anomalies, days, dayTotals) {
    const byDay = new Map();
    for (const a of anomalies) {
      const i = days.indexOf(String(a.periodStart).slice(0, 10));
      if (i >= 0) byDay.set(i, [...(byDay.get(i) || []), a]);
    }
    if (!byDay.size) return null;
    const describe = (i) => (byDay.get(i) || []).map((a) => `Spend anomaly: ${a.subscriptionId} ${fmtMoney(a.cost)}`
      + (a.baselineCost ? ` (usual ${fmtMoney(a.baselineCost)})` : '')).join('; ');
    return { type: 'line', label: 'Spend anomaly', stack: 'anomalies', showLine: false, pointStyle: 'triangle',
      pointRadius: 8, pointHoverRadius: 10, borderColor: '#b91c1c', backgroundColor: '#dc2626', borderWidth: 1.5,
      data: days.map((_, i) => (byDay.has(i) ? dayTotals[i] : null)), describe, order: -1 };
  }

  function renderAnomalies(anomalies) {
    const list = $('cost-anomalies');
    list.replaceChildren(...anomalies.map((a) => el('li', { 'data-subscription': a.subscriptionId,
      'data-day': String(a.periodStart).slice(0, 10) },
    el('span', { class: 'mark', 'aria-hidden': 'true' }, '▲'),
    `${dayLabel(String(a.periodStart).slice(0, 10))} · ${a.subscriptionId} spent ${fmtMoney(a.cost)}`
      + (a.baselineCost ? ` against a usual ${fmtMoney(a.baselineCost)}` : ''))));
    list.hidden = anomalies.length === 0;
  }

  /** Token-kind columns of the models table: heading, and the usage fields summed into it. */
  const TOKEN_KIND_COLUMNS = [['Cached input', ['cachedTokens']], ['Reasoning', ['reasoningTokens']],
    ['Audio', ['audioPromptTokens', 'audioCompletionTokens']], ['Cache writes', ['cacheWriteTokens']]];

  function table(id, headings, rows) {
    const head = el('tr', {}, ...headings.map(([text, cls]) => el('th', { class: cls || '' }, text)));
    $(id).replaceChildren(el('thead', {}, head), el('tbody', {}, ...rows));
  }

  function renderUsage(usage, from, to, anomalies) {
    const days = [];
    for (let d = parseDay(from); d <= parseDay(to); d = addDays(d, 1)) days.push(isoDay(d));
    const rows = usage.rows;
    const tokensBySub = sum(rows, (r) => r.subscriptionId, (r) => r.totalTokens);
    const costBySub = sum(rows, (r) => r.subscriptionId, (r) => Number(r.cost));
    const requestsBySub = sum(rows, (r) => r.subscriptionId, (r) => r.requests);
    const subs = rankByCost(costBySub, tokensBySub);
    for (const name of subs) {  // a subscription keeps its colour across range changes
      if (!subscriptionColors.has(name)) subscriptionColors.set(name, PALETTE[subscriptionColors.size % PALETTE.length]);
    }
    const colors = subscriptionColors;
    const top = subs.slice(0, TOP_SERIES);
    const labels = days.map(dayLabel);

    chart('chart-tokens', { type: 'bar', data: { labels, datasets: stackedSeries(rows, days, (r) => r.totalTokens, colors, top) },
      options: barOptions(fmtCompact, fmtInt) });
    const costSeries = stackedSeries(rows, days, (r) => Number(r.cost), colors, top);
    const dayTotals = days.map((_, i) => costSeries.reduce((total, d) => total + d.data[i], 0));
    const shown = anomalies.filter((a) => subs.includes(a.subscriptionId));
    const marks = anomalyDataset(shown, days, dayTotals);
    chart('chart-cost', { type: 'bar', data: { labels, datasets: marks ? [...costSeries, marks] : costSeries },
      options: barOptions(fmtMoney, fmtMoney) });
    renderAnomalies(shown.filter((a) => days.includes(String(a.periodStart).slice(0, 10)))
      .sort((a, b) => String(a.periodStart).localeCompare(String(b.periodStart))
        || a.subscriptionId.localeCompare(b.subscriptionId)));
    $('cost-hint').textContent = `per day, stacked by subscription · ${currency}`
      + (marks ? ' · ▲ spend anomaly' : '');

    const totalCost = Number(usage.totals.cost) || 0;
    const topSubs = subs.slice(0, 10);
    horizontalBar('chart-subs', topSubs, topSubs.map((s) => costBySub.get(s)), topSubs.map((s) => colors.get(s)), fmtMoney);
    table('table-subs', [['Subscription'], ['Cost', 'num'], ['Tokens', 'num'], ['Requests', 'num'], ['Share of cost', 'num']],
      topSubs.map((name) => el('tr', { 'data-subscription': name, 'data-tokens': tokensBySub.get(name),
        'data-cost': costBySub.get(name) },
      el('td', {}, el('span', { class: 'swatch', style: `background:${colors.get(name)}` }), name),
      el('td', { class: 'num' }, fmtMoney(costBySub.get(name))),
      el('td', { class: 'num' }, fmtInt(tokensBySub.get(name))),
      el('td', { class: 'num' }, fmtInt(requestsBySub.get(name))),
      el('td', { class: 'num' }, fmtPct(totalCost ? (100 * costBySub.get(name)) / totalCost : 0)))));

    const tokensByModel = sum(rows, (r) => r.model, (r) => r.totalTokens);
    const costByModel = sum(rows, (r) => r.model, (r) => Number(r.cost));
    const requestsByModel = sum(rows, (r) => r.model, (r) => r.requests);
    const models = rankByCost(costByModel, tokensByModel).slice(0, 10);
    const modelColors = models.map((_, i) => PALETTE[(i + 4) % PALETTE.length]);
    horizontalBar('chart-models', models, models.map((m) => costByModel.get(m)), modelColors, fmtMoney);
    // Token kinds inside the totals, as the API counts them: cached input (cache reads), reasoning
    // (inside output, billed as output), audio in + out, cache writes. Each is priced by its own meter.
    const kindsByModel = new Map(TOKEN_KIND_COLUMNS.map(([, fieldsOf]) => [fieldsOf,
      sum(rows, (r) => r.model, (r) => fieldsOf.reduce((total, field) => total + (r[field] || 0), 0))]));
    table('table-models', [['Model'], ['Cost', 'num'], ['Tokens', 'num'], ['Requests', 'num'],
      ...TOKEN_KIND_COLUMNS.map(([heading]) => [heading, 'num kind'])],
    models.map((name, i) => el('tr', { 'data-model': name, 'data-tokens': tokensByModel.get(name),
      'data-cost': costByModel.get(name) },
    el('td', {}, el('span', { class: 'swatch', style: `background:${modelColors[i]}` }), name),
    el('td', { class: 'num' }, fmtMoney(costByModel.get(name))),
    el('td', { class: 'num' }, fmtInt(tokensByModel.get(name))),
    el('td', { class: 'num' }, fmtInt(requestsByModel.get(name))),
    ...TOKEN_KIND_COLUMNS.map(([, fieldsOf]) => el('td', { class: 'num kind' },
      fmtInt(kindsByModel.get(fieldsOf).get(name) || 0))))));
    return subs;
  }

  function level(pct, thresholds) {
    const sorted = [...thresholds].sort((a, b) => a - b);
    if (pct >= 100) return 'over';
    if (sorted.length > 1 && pct >= sorted[sorted.length - 2]) return 'warn';
    if (sorted.length && pct >= sorted[0]) return 'notice';
    return 'ok';
  }

  const LEVEL_COLORS = { ok: '#16a34a', notice: '#eab308', warn: '#f59e0b', over: '#dc2626' };

  async function renderQuotas(subs, to) {
    const month = to.slice(0, 7);
    const chosen = subs.slice(0, TOP_GAUGES);
    const summaries = await limited(chosen, 4, (name) => api(`/api/usage/${encodeURIComponent(name)}/summary`, [['month', month]]));
    const box = $('gauges');
    for (const id of Object.keys(charts).filter((k) => k.startsWith('gauge-'))) {
      charts[id].destroy();
      delete charts[id];
    }
    box.replaceChildren();
    let thresholds = [];
    let shown = 0;
    for (const summary of summaries) {
      thresholds = summary.thresholds;
      // the quota closest to (or over) its limit leads; the other period is shown beside it
      const quotas = [summary.quota.day, summary.quota.month].filter(Boolean)
        .sort((a, b) => b.usedPercent - a.usedPercent);
      if (!quotas.length) continue;
      const [quota, other] = quotas;
      shown += 1;
      const pct = quota.usedPercent;
      const lvl = level(pct, summary.thresholds);
      const canvas = el('canvas');
      const limits = [];
      if (quota.tokens) limits.push(`${fmtCompact(quota.usedTokens)} of ${fmtCompact(quota.tokens)} tokens`);
      if (quota.cost) limits.push(`${fmtMoney(quota.usedCost)} of ${fmtMoney(quota.cost)}`);
      const notes = [`${quota.period === 'day' ? 'today' : 'this month'} · ${quota.source} quota`];
      if (quota.projectedPercent && quota.projectedPercent > 100) notes.push(`projected ${fmtPct(quota.projectedPercent)}`);
      const otherLevel = other ? level(other.usedPercent, summary.thresholds) : null;
      const card = el('div', { class: `gauge level-${lvl}`, 'data-subscription': summary.subscriptionId,
        'data-percent': pct, 'data-period': quota.period,
        ...(other ? { 'data-other-period': other.period, 'data-other-percent': other.usedPercent } : {}) },
      el('h3', { title: summary.subscriptionId }, summary.subscriptionId),
      el('div', { class: 'dial' }, canvas, el('div', { class: 'pct' }, fmtPct(pct))),
      el('div', { class: 'period' }, `${quota.period} quota`),
      el('div', { class: 'limit' }, limits.join(' · ')),
      ...(other ? [el('div', { class: `other level-${otherLevel}` },
        `${other.period === 'day' ? 'Today' : 'Month'}: ${fmtPct(other.usedPercent)} of its ${other.period} quota`)] : []),
      el('div', { class: 'badge' }, notes.join(' · ')));
      box.append(card);
      const shownPct = Math.min(pct, 100);
      charts[`gauge-${shown}`] = new Chart(canvas, {
        type: 'doughnut',
        data: { datasets: [{ data: [shownPct, 100 - shownPct], backgroundColor: [LEVEL_COLORS[lvl], '#e9eef5'],
          borderWidth: 0 }] },
        options: { rotation: -90, circumference: 180, cutout: '74%', responsive: true, maintainAspectRatio: false,
          animation: false, events: [], plugins: { legend: { display: false }, tooltip: { enabled: false } } },
      });
    }
    $('no-quotas').hidden = shown > 0;
    const monthLabel = parseDay(`${month}-01`).toLocaleDateString(undefined, { month: 'long', year: 'numeric', timeZone: 'UTC' });
    $('quota-hint').textContent = thresholds.length
      ? `${monthLabel} · the quota nearest its limit, day or month · alerts at ${thresholds.join(' / ')} %`
      : monthLabel;
  }

  // -- probe time axis: ticks on round UTC times, labelled by what changes between them ----------
  const MINUTE_MS = 60000;
  const TICK_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080].map((m) => m * MINUTE_MS);

  function timeTicks(min, max, most = 8) {
    const span = Math.max(max - min, MINUTE_MS);
    const step = TICK_STEPS.find((s) => span / s <= most) || TICK_STEPS[TICK_STEPS.length - 1];
    const ticks = [];
    for (let v = Math.ceil(min / step) * step; v <= max; v += step) ticks.push(v);
    return { step, ticks };
  }

  function timeLabel(value, step, previous) {
    const at = new Date(value);
    const day = at.toLocaleDateString(undefined, { month: 'short', day: 'numeric', timeZone: 'UTC' });
    if (step >= DAY_MS) return day;
    const time = at.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', hour12: false, timeZone: 'UTC' });
    const newDay = previous === null || isoDay(new Date(previous)) !== isoDay(at);
    return newDay ? `${day} ${time}` : time;
  }

  async function renderProbes(from, to) {
    let start = from;
    if ((parseDay(to) - parseDay(from)) / DAY_MS >= MAX_PROBE_DAYS) start = isoDay(addDays(parseDay(to), -(MAX_PROBE_DAYS - 1)));
    const report = await api('/api/probes', [['from', start], ['to', to]]);
    const card = $('probe-card');
    const deployments = report.deployments.filter((d) => d.attempts > 0);
    card.hidden = deployments.length === 0;
    if (!deployments.length) return;
    $('probe-hint').textContent = `${dayLabel(start)} – ${dayLabel(to)} · ${fmtInt(report.attempts.length)} attempts`;
    const datasets = deployments.map((d, i) => ({
      label: d.deployment, showLine: true, borderColor: PALETTE[i % PALETTE.length],
      backgroundColor: PALETTE[i % PALETTE.length], pointRadius: 2, borderWidth: 1.5, tension: 0.2,
      data: report.attempts.filter((a) => a.deployment === d.deployment && a.success)
        .map((a) => ({ x: Date.parse(a.at), y: a.latencyMs })),
    }));
    const failures = report.attempts.filter((a) => !a.success).map((a) => ({ x: Date.parse(a.at), y: a.latencyMs }));
    const times = report.attempts.map((a) => Date.parse(a.at));
    const axisMin = Math.min(...times);
    const axisMax = Math.max(...times);
    const { step, ticks } = timeTicks(axisMin, axisMax);
    if (failures.length) {
      datasets.push({ label: 'failed', data: failures, showLine: false, pointStyle: 'crossRot', pointRadius: 6,
        borderColor: '#dc2626', backgroundColor: '#dc2626' });
    }
    chart('chart-probe', {
      type: 'scatter', data: { datasets },
      options: { responsive: true, maintainAspectRatio: false, animation: false,
        plugins: { legend: { position: 'bottom', labels: { boxWidth: 12, usePointStyle: true } },
          tooltip: { callbacks: { title: (items) => (items.length ? `${new Date(items[0].parsed.x).toISOString()
            .slice(0, 16).replace('T', ' ')} UTC` : ''),
          label: (c) => `${c.dataset.label}: ${fmtInt(c.parsed.y)} ms` } } },
        scales: {
          x: { type: 'linear', min: axisMin, max: axisMax,
            title: { display: true, text: 'time (UTC)' },
            afterBuildTicks: (axis) => { axis.ticks = ticks.map((value) => ({ value })); },
            ticks: { autoSkip: false, maxRotation: 0,
              callback: (v, i) => timeLabel(v, step, i > 0 ? ticks[i - 1] : null) },
            grid: { color: '#eef2f7' } },
          y: { beginAtZero: true, title: { display: true, text: 'latency (ms)' }, grid: { color: '#eef2f7' } },
        } },
    });
    const ms = (v) => (v === null || v === undefined ? '–' : `${fmtInt(v)} ms`);
    table('table-probe', [['Deployment'], ['Availability', 'num'], ['p50', 'num'], ['p95', 'num'], ['Status']],
      deployments.map((d) => {
        const failing = (d.incident && d.incident.open) || d.consecutiveFailures > 0;
        const status = d.incident && d.incident.open ? 'Incident' : failing ? 'Failing' : 'Healthy';
        return el('tr', { 'data-deployment': d.deployment },
          el('td', {}, d.deployment),
          el('td', { class: 'num' }, d.availabilityPct === null ? '–' : fmtPct(d.availabilityPct)),
          el('td', { class: 'num' }, ms(d.latencyP50Ms)),
          el('td', { class: 'num' }, ms(d.latencyP95Ms)),
          el('td', {}, el('span', { class: `pill ${failing ? 'bad' : 'ok'}` }, status)));
      }));
  }

  // -- price list and cost split (fields of /api/usage's totals; nothing shown when absent) -------
  const SPLITS = [
    ['meter', 'By meter', { costInput: 'input', costCachedInput: 'cached input', costOutput: 'output',
      costAudio: 'audio', costCacheWrite: 'cache writes', costPtu: 'PTU hours' }],
    ['deployment', 'By deployment type', { costGlobal: 'Global', costDataZone: 'Data Zone', costRegional: 'Regional',
      costUncatalogued: 'uncatalogued' }],
    ['basis', 'By cost basis', { costPayg: 'pay-as-you-go', costBatch: 'batch', costPtuAllocated: 'PTU allocated',
      costOverride: 'negotiated rate' }],
  ];

  function renderPrices(totals) {
    const asOf = totals.priceAsOf || null;
    const prices = $('footer-prices');
    prices.textContent = asOf ? `Prices as of ${asOf}` : 'Cost is computed at read time from the price table in force on each day.';
    prices.dataset.asOf = asOf || '';
    const box = $('cost-split');
    const groups = [];
    for (const [kind, title, fields] of SPLITS) {
      const parts = Object.entries(fields).filter(([field]) => Number(totals[field]))
        .map(([field, label]) => [label, Number(totals[field])]).sort((a, b) => b[1] - a[1]);
      if (!parts.length) continue;
      groups.push(el('span', { class: 'split', 'data-split': kind }, el('strong', {}, `${title}: `),
        parts.map(([label, value]) => `${label} ${fmtMoney(value)}`).join(' · ')));
    }
    box.replaceChildren(...groups);
    box.hidden = groups.length === 0;
  }

  // -- the load cycle --------------------------------------------------------------------------
  function syncUrl(from, to) {
    const params = new URLSearchParams();
    if (CODE) params.set('code', CODE);
    params.set('from', from);
    params.set('to', to);
    for (const name of selected) params.append('subscription', name);
    history.replaceState(null, '', `${location.pathname}?${params}`);
  }

  async function load() {
    const from = $('from').value;
    const to = $('to').value;
    if (!validDay(from) || !validDay(to)) { showMessage('Pick a valid date range.'); return; }
    setState('loading');
    showMessage('');
    syncUrl(from, to);
    try {
      if (!me) {
        me = await api('/api/access/me');
        for (const name of me.subscriptions || []) known.add(name);
        if (AUTH === 'entra') {
          sessionStorage.removeItem(SIGN_IN_STORE);
          $('who').textContent = String(me.caller || '').replace(/^principal:/, '');
          $('who').hidden = false;
        }
      }
      const query = [['from', from], ['to', to], ['granularity', 'day'], ['groupBy', 'subscription,model'],
        ['pageSize', '5000'], ...[...selected].map((s) => ['subscription', s])];
      const [usage, anomalyReport] = await Promise.all([usageAll(query),
        optional('/api/anomalies', [['from', from], ['to', to], ['limit', '1000']]).catch(() => null)]);
      currency = usage.totals.currency || currency;
      for (const row of usage.rows) known.add(row.subscriptionId);
      renderSubscriptionOptions();
      renderKpis(usage.totals);
      renderPrices(usage.totals);
      const anomalies = ((anomalyReport && anomalyReport.anomalies) || [])
        .filter((a) => !selected.size || selected.has(a.subscriptionId));
      const subs = renderUsage(usage, from, to, anomalies);
      $('footer-range').textContent = `${from} – ${to} (UTC) · ${fmtInt(subs.length)} subscriptions · `
        + `${fmtInt(usage.rowCount)} rows in ${usage.pages} page${usage.pages === 1 ? '' : 's'}`;
      await Promise.all([renderQuotas(subs, to), renderProbes(from, to)]);
      loads += 1;
      body.dataset.loads = String(loads);
      setState('ready');
    } catch (error) {
      fail(error);
    }
  }

  function fail(error) {
    if (error instanceof HttpError && error.status === 401 && AUTH === 'apikey') {
      sessionStorage.removeItem(KEY_STORE);
      askForKey('That key was not accepted. Try again.');
      return;
    }
    if (error instanceof HttpError && error.status === 401 && AUTH === 'entra') {
      signIn();
      return;
    }
    if (error instanceof HttpError && error.status === 401) {
      showMessage('This page needs the function key: open it as /api/dashboard?code=<function key>.');
    } else {
      showMessage(error.message || String(error));
    }
    setState('error');
  }

  /** entra: off to App Service Authentication's sign-in, back to this very view; at most once a minute,
   * so a sign-in that does not take ends on a message rather than a loop. */
  function signIn() {
    const last = Number(sessionStorage.getItem(SIGN_IN_STORE) || 0);
    if (Date.now() - last < 60000) {
      showMessage('Signing in did not give this page access: reload it, or ask an admin to check App Service '
        + 'Authentication.');
      setState('error');
      return;
    }
    sessionStorage.setItem(SIGN_IN_STORE, String(Date.now()));
    setState('signing-in');
    const back = `${location.pathname}${location.search}`;
    location.assign(`/.auth/login/aad?post_login_redirect_uri=${encodeURIComponent(back)}`);
  }

  function askForKey(problem) {
    setState('login');
    $('login-error').textContent = problem || '';
    $('signout').hidden = true;
    const dialog = $('login');
    if (!dialog.open) dialog.showModal();
    $('api-key').focus();
  }

  // -- wiring ------------------------------------------------------------------------------------
  /** Month to date, unless the month is only days old: then the last 30 days (a range worth reading). */
  function defaultRange() {
    return todayUtc().getUTCDate() < SHORT_MONTH_DAYS ? preset('30') : preset('mtd');
  }

  function start() {
    const [defaultFrom, defaultTo] = defaultRange();
    $('from').value = validDay(pageParams.get('from')) ? pageParams.get('from') : isoDay(defaultFrom);
    $('to').value = validDay(pageParams.get('to')) ? pageParams.get('to') : isoDay(defaultTo);
    for (const name of selected) known.add(name);
    renderSubscriptionOptions();
    Chart.defaults.font.family = getComputedStyle(document.documentElement).fontFamily;
    Chart.defaults.color = '#475569';

    $('filters').addEventListener('submit', (event) => {
      event.preventDefault();
      $('sub-filter').open = false;
      load();
    });
    for (const button of document.querySelectorAll('[data-preset]')) {
      button.addEventListener('click', () => {
        const [from, to] = preset(button.dataset.preset);
        $('from').value = isoDay(from);
        $('to').value = isoDay(to);
        load();
      });
    }
    $('sub-all').addEventListener('click', () => { selected.clear(); renderSubscriptionOptions(); });
    $('login-form').addEventListener('submit', () => {
      const key = $('api-key').value.trim();
      if (!key) return;
      sessionStorage.setItem(KEY_STORE, key);
      $('api-key').value = '';
      $('signout').hidden = false;
      load();
    });
    $('signout').addEventListener('click', () => {
      if (AUTH === 'entra') {
        location.assign(`/.auth/logout?post_logout_redirect_uri=${encodeURIComponent(location.pathname)}`);
        return;
      }
      sessionStorage.removeItem(KEY_STORE);
      me = null;
      askForKey('');
    });

    if (AUTH === 'apikey' && !sessionStorage.getItem(KEY_STORE)) {
      askForKey('');
      return;
    }
    if (AUTH === 'entra') $('signout').textContent = 'Sign out';
    $('signout').hidden = AUTH !== 'apikey' && AUTH !== 'entra';
    load();
  }

  start();
})();
