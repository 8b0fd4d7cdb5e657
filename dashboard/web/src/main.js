// The dashboard: wires the API, the push stream, the model and the views.
//
// Updates arrive as fast as the busiest symbol trades; each message only
// changes the model (store.js) and marks what it touched. One
// requestAnimationFrame callback draws what is marked, so the DOM and the
// canvases change at most once per frame whatever the message rate, and
// not at all in a hidden tab.

import { api, PushStream, setToken, ApiError, optional } from './api.js';
import { SymbolStore, regroup } from './store.js';
import { PriceChart, DEFINITIONS } from './price.js';
import { FootprintChart } from './footprint.js';
import { Heatmap } from './heatmap.js';
import { parse, pretty, format } from './dec.js';
import { hhmm, hhmmss } from './canvas.js';

const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const TOPICS = ['trades', 'large', 'bars', 'book', 'signals'];
const TAPE_ROWS = 80;

const app = {
  symbols: [],
  store: null,
  stream: null,
  conn: { state: 'connecting', attempt: 0 },
  connects: 0,
  status: null,
  statusError: null,
  messages: 0,
  renders: 0,
  syncing: false,
  pending: [],
  synced: 0, // completed resyncs
  window: localStorage.getItem('orderflow.window') || '5m',
  large: null, // user's threshold as BigInt, null: auto
  fpInFlight: false,
  fpAgain: false,
  sigInFlight: false,
  sigAgain: false,
  ladderScrolled: 0, // when the user last scrolled the ladder (it then stops centering the spread)
  preloaded: 0, // heatmap frames taken from the book history at the last resync
};

let price, footprint, heat;

function start() {
  price = new PriceChart($('price'));
  footprint = new FootprintChart($('footprint'));
  heat = new Heatmap($('heatmap'));
  $('symbol').addEventListener('change', (e) => selectSymbol(e.target.value));
  $('window').addEventListener('change', (e) => {
    app.window = e.target.value;
    localStorage.setItem('orderflow.window', app.window);
    if (app.store) app.store.touch('metrics');
  });
  $('large').addEventListener('change', (e) => {
    const v = e.target.value.trim();
    const d = v === '' ? null : parse(v);
    e.target.classList.toggle('bad', v !== '' && d === null);
    app.large = d;
    if (app.store) {
      localStorage.setItem('orderflow.large.' + app.store.symbol, d === null ? '' : v);
      app.store.touch('tape', 'heatmap');
    }
  });
  $('step').addEventListener('change', (e) => {
    footprint.step = Number(e.target.value);
    if (app.store) app.store.touch('footprint');
  });
  $('token-save').addEventListener('click', () => {
    setToken($('token-input').value.trim());
    $('token').hidden = true;
    boot();
  });
  window.addEventListener('hashchange', () => {
    const s = location.hash.slice(1).toUpperCase();
    if (s && app.store && s !== app.store.symbol && app.symbols.includes(s)) selectSymbol(s);
  });
  for (const ev of ['wheel', 'touchmove', 'mousedown']) $('ladder-wrap').addEventListener(ev, () => (app.ladderScrolled = Date.now()), { passive: true });
  window.addEventListener('resize', () => app.store && app.store.touch('all'));
  requestAnimationFrame(frame);
  setInterval(pollStatus, 2000);
  setInterval(pollMetrics, 1000);
  setInterval(pollDepth, 500);
  setInterval(pollWalls, 1000);
  boot();
}

// boot loads the symbol list, retrying with the same backoff as the push
// stream while the service is down.
async function boot(delay = 500) {
  try {
    const r = await api.symbols();
    app.symbols = (r.symbols || []).map((s) => s.symbol);
    $('symbol').innerHTML = app.symbols.map((s) => `<option>${esc(s)}</option>`).join('');
    const want = location.hash.slice(1).toUpperCase();
    selectSymbol(app.symbols.includes(want) ? want : app.symbols[0]);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      $('token').hidden = false;
      return;
    }
    app.conn = { state: 'retrying', attempt: 0, retryAt: Date.now() + delay, error: String(e.message || e) };
    renderConn();
    setTimeout(() => boot(Math.min(delay * 2, 15000)), delay);
  }
}

function selectSymbol(symbol) {
  if (!symbol) return;
  if (app.stream) app.stream.close();
  app.store = new SymbolStore(symbol);
  app.ladderScrolled = 0;
  app.preloaded = 0;
  app.pending = [];
  $('symbol').value = symbol;
  if (location.hash.slice(1) !== symbol) history.replaceState(null, '', '#' + symbol);
  const saved = localStorage.getItem('orderflow.large.' + symbol) || '';
  $('large').value = saved;
  app.large = saved ? parse(saved) : null;
  price.reset();
  const store = app.store;
  app.stream = new PushStream({
    symbol,
    topics: TOPICS,
    onState: (s) => {
      if (store !== app.store) return;
      app.conn = s;
      renderConn();
      if (s.state === 'live') {
        app.connects++;
        resync(store);
      }
    },
    onMessage: (m) => {
      if (store !== app.store) return;
      app.messages++;
      if (app.syncing) app.pending.push(m);
      else handle(store, m);
    },
  });
}

// resync reloads the symbol's state after the push stream (re)connects:
// whatever was pushed while it was down is gone, so the REST snapshot is
// the base and the messages queued meanwhile are applied on top (duplicates
// are recognized by trade id).
async function resync(store) {
  app.syncing = true;
  try {
    const [bars, trades, large, signals, book, history, walls] = await Promise.all([
      api.bars(store.symbol, 120, true),
      api.trades(store.symbol, TAPE_ROWS * 2),
      api.large(store.symbol, 200),
      api.signals(store.symbol),
      api.book(store.symbol, 10),
      // The heatmap's recent past, and the walls: null when the service
      // has them turned off (409), undefined when the read failed; neither
      // fails the resync (the heatmap then fills live only, the walls poll
      // tries again).
      optional(api.bookHistory(store.symbol)).catch(soft('book history')),
      optional(api.walls(store.symbol)).catch(soft('walls')),
    ]);
    if (store !== app.store) return;
    store.loadTrades(trades);
    store.loadBars(bars);
    for (const l of large.trades || []) store.addLarge(l);
    store.loadSignals(signals);
    store.setBook(book);
    app.preloaded = history ? store.loadHistory(history) : 0;
    store.wallsOff = walls === null;
    if (walls) store.setWalls(walls);
    app.synced++;
  } catch (e) {
    console.warn('orderflow: resync failed', e);
    if (app.stream) app.stream.ctl && app.stream.ctl.abort(new Error('resync failed: ' + e.message));
  } finally {
    app.syncing = false;
    const q = app.pending;
    app.pending = [];
    for (const m of q) handle(store, m);
    store.touch('all');
  }
}

function handle(store, m) {
  switch (m.type) {
    case 'trade':
      store.addTrade(m.data);
      break;
    case 'bar':
      if (store.addBar(m.data)) refreshFootprints(store);
      break;
    case 'book':
      store.setBook(m.data);
      break;
    case 'large':
      store.addLarge(m.data);
      break;
    case 'signal':
      store.addSignal(m.data);
      break;
    case 'dropped':
      // The service skipped messages because we read too slowly: the open
      // bar built here may miss trades, so take the server's bars again;
      // a skipped signal is only found by asking again.
      store.counts.dropped += m.count || 0;
      refreshFootprints(store);
      refreshSignals(store);
      break;
  }
}

// soft returns a catch handler that logs a failed optional read and
// answers undefined.
function soft(what) {
  return (e) => {
    console.warn(`orderflow: ${what} not loaded`, e);
    return undefined;
  };
}

// refreshSignals takes the service's signals again after pushed messages
// were skipped, at most one request at a time; they are added to those
// held (the service's ring of book signals may no longer have older ones).
async function refreshSignals(store) {
  if (app.sigInFlight) {
    app.sigAgain = true;
    return;
  }
  app.sigInFlight = true;
  try {
    const r = await api.signals(store.symbol);
    store.counts.signalFetch++;
    if (store === app.store) store.mergeSignals(r);
  } catch (e) {
    console.warn('orderflow: signals fetch failed', e);
  } finally {
    app.sigInFlight = false;
    if (app.sigAgain) {
      app.sigAgain = false;
      setTimeout(() => refreshSignals(app.store), 250);
    }
  }
}

// refreshFootprints fetches the latest bars with footprints (pushes carry
// none), at most one request at a time.
async function refreshFootprints(store) {
  if (app.fpInFlight) {
    app.fpAgain = true;
    return;
  }
  app.fpInFlight = true;
  try {
    const r = await api.bars(store.symbol, 3, true);
    store.counts.footprintFetch++;
    if (store === app.store) {
      for (const b of r.bars || []) store.setFootprint(b);
      if (r.current) store.setFootprint(r.current);
    }
  } catch (e) {
    console.warn('orderflow: footprint fetch failed', e);
  } finally {
    app.fpInFlight = false;
    if (app.fpAgain) {
      app.fpAgain = false;
      setTimeout(() => refreshFootprints(app.store), 250);
    }
  }
}

let statusBusy = false;
async function pollStatus() {
  if (statusBusy) return;
  statusBusy = true;
  try {
    app.status = await api.status();
    app.statusError = null;
  } catch (e) {
    app.statusError = String(e.message || e);
  } finally {
    statusBusy = false;
    renderConn();
  }
}

let metricsBusy = false;
async function pollMetrics() {
  const store = app.store;
  if (metricsBusy || !store || document.hidden) return;
  metricsBusy = true;
  try {
    const m = await api.metrics(store.symbol);
    if (store === app.store) {
      store.metrics = m;
      store.touch('metrics', 'tape');
    }
  } catch {
    // shown through the connection state
  } finally {
    metricsBusy = false;
  }
}

let wallsBusy = false;
async function pollWalls() {
  const store = app.store;
  if (wallsBusy || !store || store.wallsOff || document.hidden || app.conn.state !== 'live') return;
  wallsBusy = true;
  try {
    const w = await optional(api.walls(store.symbol));
    if (store === app.store) {
      if (w) store.setWalls(w);
      else store.wallsOff = true; // book metrics off: asked again at the next resync
    }
  } catch {
    // the next read tries again
  } finally {
    wallsBusy = false;
  }
}

let depthBusy = false;
async function pollDepth() {
  const store = app.store;
  if (depthBusy || !store || document.hidden || app.conn.state !== 'live') return;
  depthBusy = true;
  try {
    const b = await api.book(store.symbol, 250);
    if (store === app.store) store.addFrame(b);
  } catch {
    // the next read tries again
  } finally {
    depthBusy = false;
  }
}

// largeQty is the tape's emphasis threshold: the user's, else the
// service's adaptive one once it is ready.
function largeQty(store) {
  if (app.large !== null) return app.large;
  const t = store.metrics && store.metrics.large_threshold;
  return t && t.ready ? parse(t.qty) : null;
}

function isLarge(store, t, thr) {
  if (app.large === null && store.large.has(t.id)) return true;
  const q = parse(t.qty);
  return thr !== null && q !== null && q >= thr;
}

function frame() {
  requestAnimationFrame(frame);
  const store = app.store;
  if (!store || store.dirty.size === 0) return;
  const d = store.dirty;
  const all = d.has('all');
  store.dirty = new Set();
  app.renders++;
  if (all || d.has('bars')) renderBars(store);
  if (all || d.has('footprint') || d.has('bars')) renderFootprint(store);
  if (all || d.has('heatmap')) renderHeatmap(store);
  if (all || d.has('tape')) renderTape(store);
  if (all || d.has('ladder')) renderLadder(store);
  if (all || d.has('metrics') || d.has('ladder')) renderMetrics(store);
  if (all || d.has('signals')) renderSignals(store);
  if (store.lastTime) $('clock').textContent = new Date(store.lastTime).toISOString().slice(0, 19).replace('T', ' ') + ' UTC';
}

function chartBars(store) {
  const bars = store.bars();
  const open = store.openBar();
  if (open && (!bars.length || open.start > bars[bars.length - 1].start)) bars.push(open);
  return bars;
}

function renderBars(store) {
  const bars = chartBars(store);
  price.setBars(bars);
  const last = store.lastClosed();
  const el = $('lastbar');
  if (last) {
    el.dataset.start = last.start;
    el.dataset.delta = last.delta;
    el.dataset.cvd = last.cvd;
    el.dataset.close = last.close;
    el.textContent = `last closed ${hhmm(last.start)}  Δ ${pretty(last.delta, 4)}  CVD ${pretty(last.cvd, 4)}  close ${pretty(last.close)}`;
  }
}

function renderFootprint(store) {
  const bars = store.bars();
  const open = store.openBar();
  if (open && (!bars.length || open.start > bars[bars.length - 1].start)) bars.push(open);
  footprint.draw(bars);
}

function renderHeatmap(store) {
  const thr = largeQty(store);
  const bubbles = [];
  const seen = new Set();
  for (const l of store.large.values()) {
    if (app.large !== null) break;
    bubbles.push({ time: l.time, price: Number(l.price), qty: Number(l.qty), side: l.side });
    seen.add(l.id);
  }
  if (thr !== null) {
    for (const t of store.tape) {
      if (!seen.has(t.id) && isLarge(store, t, thr)) bubbles.push({ time: t.time, price: Number(t.price), qty: Number(t.qty), side: t.side });
    }
  }
  heat.draw(store.frames, store.path, bubbles, store.lastTime, store.walls);
}

function renderTape(store) {
  const thr = largeQty(store);
  const rows = store.tape.slice(-TAPE_ROWS).reverse();
  store.newTape = [];
  $('tape').tBodies[0].innerHTML = rows
    .map((t) => {
      const cls = t.side + (isLarge(store, t, thr) ? ' large' : '');
      return `<tr class="${cls}" data-id="${t.id}"><td>${hhmmss(t.time).slice(0, 12)}</td><td>${esc(pretty(t.price))}</td><td>${esc(t.qty)}</td></tr>`;
    })
    .join('');
  $('large-info').textContent = thr === null ? 'large: waiting for the adaptive threshold' : `large ≥ ${format(thr)}${app.large === null ? ' (auto)' : ''}`;
}

// renderLadder draws the top ten levels of each side and every current
// wall (GET /walls): a wall's row is highlighted with its age (how long it
// has stood); a wall beyond the top ten gets a row of its own in price
// order (marked "extra", its quantity the wall's). The ladder scrolls; it
// keeps the spread in the middle unless the user scrolled it lately.
function renderLadder(store) {
  const b = store.book;
  const t = $('ladder');
  if (!b) {
    t.innerHTML = '';
    return;
  }
  const walls = store.walls;
  const rowsOf = (levels, side, ws) => {
    const rows = levels.slice(0, 10).map((l) => ({ price: l.price, qty: l.qty, p: parse(l.price), extra: false, wall: null }));
    const at = new Map(rows.map((r) => [r.price, r]));
    for (const w of ws || []) {
      let r = at.get(w.price);
      if (!r) rows.push((r = { price: w.price, qty: w.qty, p: parse(w.price), extra: true, wall: null }));
      r.wall = w;
    }
    // asks ascending from the best, bids descending: both away from the spread
    rows.sort((x, y) => (x.p === y.p ? 0 : (x.p < y.p) === (side === 'ask') ? -1 : 1));
    return rows;
  };
  const asks = rowsOf(b.asks || [], 'ask', walls && walls.asks);
  const bids = rowsOf(b.bids || [], 'bid', walls && walls.bids);
  let max = 0;
  for (const r of asks.concat(bids)) if (!r.extra) max = Math.max(max, Number(r.qty));
  const row = (r, side) => {
    const w = r.wall;
    const cls = side + (w ? ' wall' : '') + (r.extra ? ' extra' : '');
    const attrs = w
      ? ` data-wall-qty="${esc(w.qty)}" data-stood="${w.stood_ms}" data-since="${w.since}" title="${esc(wallTitle(w))}"`
      : '';
    const width = Math.min(100, (100 * Number(r.qty)) / (max || 1)).toFixed(1);
    return `<tr class="${cls}" data-side="${side}" data-price="${esc(r.price)}" data-qty="${esc(r.qty)}"${attrs}><td class="q"><div class="bar" style="width:${width}%"></div>${esc(r.qty)}</td><td class="p">${esc(pretty(r.price))}</td><td class="c">${w ? esc(age(w.stood_ms)) : ''}</td></tr>`;
  };
  const spread = `<tr class="spread" id="ladder-spread"><td colspan="3">${b.spread ? `spread ${esc(b.spread)} · mid ${esc(pretty(b.mid, 3))}` : ''}</td></tr>`;
  t.innerHTML = asks.slice().reverse().map((r) => row(r, 'ask')).join('') + spread + bids.map((r) => row(r, 'bid')).join('');
  t.dataset.updateId = b.update_id;
  t.dataset.wallsTime = walls ? walls.time : '';
  const nw = walls ? (walls.bids || []).length + (walls.asks || []).length : 0;
  $('walls-info').textContent = walls ? `· ${nw} wall${nw === 1 ? '' : 's'} ·` : '';
  const wrap = $('ladder-wrap');
  if (Date.now() - app.ladderScrolled > 8000) {
    const sp = $('ladder-spread');
    wrap.scrollTop = sp.offsetTop - (wrap.clientHeight - sp.offsetHeight) / 2;
  }
  $('bands').innerHTML = (b.bands || [])
    .map((x) => {
      const imb = Number(x.imbalance);
      return `<span>±${x.bps}bp</span><div class="meter" title="bid ${esc(x.bid_qty)} / ask ${esc(x.ask_qty)}"><div style="width:${(((imb + 1) / 2) * 100).toFixed(1)}%"></div></div><span>${imb >= 0 ? '+' : ''}${imb.toFixed(3)}</span>`;
    })
    .join('');
}

// age writes how long a wall has stood: "850ms", "42s", "3m05s", "1h02m".
function age(ms) {
  if (ms < 1000) return `${ms}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
}

function wallTitle(w) {
  return `${w.side} wall ${w.qty} @ ${pretty(w.price)} (peak ${w.peak_qty}), ${Number(w.ratio).toFixed(1)}× the mean of its neighbours; ` +
    `standing since ${hhmmss(w.since)} UTC, ${age(w.stood_ms)}`;
}

function renderMetrics(store) {
  const m = store.metrics;
  const sel = $('window');
  if (m && sel.options.length !== m.windows.length) {
    sel.innerHTML = m.windows.map((w) => `<option>${esc(w.window)}</option>`).join('');
    if (!m.windows.some((w) => w.window === app.window)) app.window = m.windows[Math.min(1, m.windows.length - 1)].window;
    sel.value = app.window;
  }
  if (!m) return;
  const w = m.windows.find((x) => x.window === app.window) || m.windows[0];
  const tot = m.totals;
  const b = store.book || {};
  const sign = (s) => (s && s[0] === '-' ? 'sell' : 'buy');
  const rows = [];
  if (w) {
    $('metrics-window').textContent = `${w.window} window${w.ready ? '' : ` (partial ${Math.round(w.covered_ms / 1000)} s)`}`;
    rows.push(
      ['trades', pretty(String(w.trades)), ''],
      ['buy volume', pretty(w.buy_volume, 4), 'buy'],
      ['sell volume', pretty(w.sell_volume, 4), 'sell'],
      ['delta', pretty(w.delta, 4), sign(w.delta)],
      ['VWAP', pretty(w.vwap, 2), ''],
      ['buy share', (Number(w.buy_ratio) * 100).toFixed(1) + '%', ''],
      ['trades/s', Number(w.trades_per_second).toFixed(2), ''],
      ['avg size', pretty(w.avg_trade_size, 5), ''],
    );
    if (w.largest) rows.push(['largest', `${w.largest.side} ${w.largest.qty} @ ${pretty(w.largest.price)}`, w.largest.side]);
  }
  rows.push(
    ['last', pretty(tot.last), ''],
    ['CVD', pretty(tot.cvd, 4), sign(tot.cvd)],
    ['session VWAP', pretty(tot.vwap, 2), ''],
    ['high / low', `${pretty(tot.high)} / ${pretty(tot.low)}`, ''],
  );
  if (b.microprice) rows.push(['microprice', pretty(b.microprice, 2), '']);
  $('metrics').innerHTML = rows.map(([k, v, c]) => `<tr><td>${esc(k)}</td><td class="${c}">${esc(v)}</td></tr>`).join('');
  $('metrics').dataset.cvd = tot.cvd;
}

const SIGNAL_TEXT = {
  bearish_divergence: 'bearish delta divergence', bullish_divergence: 'bullish delta divergence',
  high_exhausted: 'exhausted high', low_exhausted: 'exhausted low',
  stacked_buy_imbalance: 'stacked buy imbalance', stacked_sell_imbalance: 'stacked sell imbalance',
  absorption: 'absorption', wall_pulled: 'wall pulled', wall_filled: 'wall filled',
};

// bullish says which way a signal points: bids absorbing taker sells,
// a bullish divergence, exhausted sellers at the low, stacked buying.
export function bullish(s) {
  if (s.kind === 'absorption' || s.kind === 'wall_pulled' || s.kind === 'wall_filled') return s.side === 'bid';
  return s.kind.startsWith('bullish') || s.kind === 'low_exhausted' || s.kind === 'stacked_buy_imbalance';
}

function renderSignals(store) {
  const list = store.signals.concat(store.wallSignals).sort((a, b) => a.time - b.time).slice(-60).reverse();
  $('signals').innerHTML = list.length
    ? list
        .map((s) => {
          const at = s.high ? `${pretty(s.price)}–${pretty(s.high)} (${s.levels})` : pretty(s.price);
          const side = s.kind === 'absorption' || s.kind.startsWith('wall') ? ` ${s.side}` : '';
          return `<li class="${bullish(s) ? 'bull' : 'bear'}" title="${esc(DEFINITIONS[s.kind] || '')}">${hhmmss(s.time).slice(0, 8)} ${esc(SIGNAL_TEXT[s.kind] || s.kind)}${esc(side)} @ ${esc(at)}</li>`;
        })
        .join('')
    : '<li class="muted">none yet</li>';
  price.setSignals(store.signals);
}

// renderConn states the connection and the service's health plainly: the
// push stream to this dashboard, the service's state, each Binance stream
// and the symbol's book.
function renderConn() {
  const pill = $('conn');
  const c = app.conn;
  let text;
  if (c.state === 'live') text = 'live';
  else if (c.state === 'retrying') text = `disconnected · retry in ${Math.max(0, Math.ceil((c.retryAt - Date.now()) / 1000))} s`;
  else text = 'connecting…';
  pill.dataset.state = c.state;
  pill.textContent = text;
  const problems = [];
  let level = 'warn';
  if (c.state !== 'live') {
    level = 'error';
    problems.push(`Not connected to the orderflow service${c.error ? ` (${c.error})` : ''}: reconnecting by itself (attempt ${c.attempt || 1}). The data shown is frozen.`);
  } else if (app.statusError) {
    problems.push(`Service status unavailable: ${app.statusError}`);
  }
  const st = app.status;
  const sym = app.store && app.store.symbol;
  if (st && c.state === 'live') {
    if (st.state !== 'running') problems.push(`The service is ${st.state}.`);
    for (const s of st.streams || []) {
      if (s.state !== 'connected') problems.push(`Binance stream ${s.name} is ${s.state} (reconnects ${s.reconnects}).`);
    }
    const ss = (st.symbols || []).find((x) => x.symbol === sym);
    if (ss && !ss.book_synced) problems.push(`${sym} book is resyncing (${ss.book_state}): the ladder and the heatmap wait for it.`);
    const skipped = app.store ? app.store.counts.dropped : 0;
    $('svc').textContent = `service ${st.state} · ${(st.streams || []).length} stream(s)` +
      (skipped ? ` · ${skipped} push messages skipped by the service (this page read too slowly), figures re-read` : '');
    $('book-state').textContent = ss ? (ss.book_synced ? `synced · update ${ss.update_id}` : ss.book_state) : '';
  }
  const banner = $('banner');
  banner.hidden = problems.length === 0;
  banner.dataset.level = level;
  banner.textContent = problems.join('  ');
}
setInterval(() => app.conn.state === 'retrying' && renderConn(), 500);

// window.__orderflow exposes what the dashboard holds and shows, for the
// browser test and for anyone debugging in the console. It reads; it
// changes nothing.
window.__orderflow = {
  get symbol() { return app.store && app.store.symbol; },
  get conn() { return Object.assign({}, app.conn); },
  get connects() { return app.connects; },
  get synced() { return app.synced; },
  get messages() { return app.messages; },
  get renders() { return app.renders; },
  get status() { return app.status; },
  get banner() { return $('banner').hidden ? '' : $('banner').textContent; },
  counts: () => Object.assign({}, app.store && app.store.counts),
  lastTradeId: () => app.store && app.store.lastTradeId,
  closedBars: () => (app.store ? app.store.bars().map(({ footprint: _f, ...b }) => b) : []),
  closedBar: (start) => app.store && app.store.closed.get(start),
  openBar: () => {
    const o = app.store && app.store.openBar();
    if (o) delete o.footprint;
    return o;
  },
  chart: () => price.data(),
  shownLastBar: () => Object.assign({}, $('lastbar').dataset),
  footprintRows: () => footprint.lastRows,
  regroup: (levels, step) => regroup(levels, parse(step) ?? 0n).map((r) => ({ price: r.price, buy_imbalance: r.buyImb, sell_imbalance: r.sellImb, poc: !!r.poc })),
  tape: () => [...$('tape').tBodies[0].rows].map((r) => ({ id: Number(r.dataset.id), cls: r.className, cells: [...r.cells].map((c) => c.textContent) })),
  ladder: () => ({
    updateId: Number($('ladder').dataset.updateId || 0),
    wallsTime: Number($('ladder').dataset.wallsTime || 0),
    rows: [...$('ladder').rows].filter((r) => r.dataset.price).map((r) => ({
      side: r.dataset.side, price: r.dataset.price, qty: r.dataset.qty, extra: r.classList.contains('extra'),
      wall: r.classList.contains('wall') ? { qty: r.dataset.wallQty, stood_ms: Number(r.dataset.stood), since: Number(r.dataset.since), age: r.cells[2].textContent } : null,
    })),
  }),
  heatmap: () => Object.assign({ stored: app.store ? app.store.frames.length : 0, preloaded: app.preloaded,
    history: app.store && app.store.history }, heat.info),
  // frames returns the heatmap's frames (time, update id, source, levels).
  frameIds: () => (app.store ? app.store.frames.map((f) => [f.t, f.id, f.src]) : []),
  // frames returns the heatmap's frames in [from, to] (exchange ms) with their levels.
  frames: (from, to) => (app.store ? app.store.frames.filter((f) => f.t >= from && f.t <= to).map((f) => ({ time: f.t, update_id: f.id, src: f.src, bids: f.bids, asks: f.asks })) : []),
  markers: () => price.markerList(),
  // markerPoint returns where marker i's bar is on the page (CSS px), for
  // the test to move the mouse there; tip is the tooltip's text shown.
  markerPoint: (i) => price.markerPoint(i),
  get tip() { return price.tip.hidden ? '' : price.tip.textContent; },
  metricsCVD: () => $('metrics').dataset.cvd,
  select: (s) => selectSymbol(s),
};

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
