// The dashboard's model of one symbol: what the API and the push stream
// said, kept exact (decimal strings from the wire, BigInt sums for what is
// aggregated here). It does no DOM work: views read it on the next
// animation frame.

import { parse, format, floorTo } from './dec.js';

const MAX_BARS = 600;
const MAX_TAPE = 400;
const MAX_FRAMES = 1800;
const MAX_PATH = 20000;
const MAX_LARGE = 300;
const MAX_SIGNALS = 1000; // absorption, divergence, exhaustion, stacked imbalances
const MAX_WALL_SIGNALS = 200; // walls pulled or filled: many more of them

// SymbolStore holds one symbol's bars, tape, book, heatmap frames,
// metrics and signals.
export class SymbolStore {
  constructor(symbol) {
    this.symbol = symbol;
    this.closed = new Map(); // start ms -> closed bar from the API (authoritative)
    this.open = null; // the open bar, built here exactly from trades after the API's snapshot
    this.lastTradeId = 0; // last trade applied to the bars
    this.tapeLastId = 0; // last trade on the tape
    this.lastTime = 0; // latest exchange time seen, ms
    this.tape = []; // newest last
    this.newTape = []; // trades not yet drawn
    this.book = null;
    this.frames = []; // heatmap: {t, id, src: 'history' | 'live', bids: [[p, q]], asks}; time increasing, id never decreasing
    this.history = null; // the last book history taken: {frames, from, to, firstId, lastId, depth}
    this.walls = null; // GET /walls: current walls of both sides and the recently ended ones
    this.wallsOff = false; // the service answered 409 (book metrics off)
    this.path = []; // [t, price] of trades, thinned, for the heatmap's price line
    this.large = new Map(); // trade id -> large trade (server-flagged)
    this.signals = []; // by time, oldest first
    this.wallSignals = []; // wall_pulled, wall_filled, by time
    this.metrics = null;
    this.counts = { trades: 0, dupTrades: 0, badValues: 0, barPushes: 0, barMismatch: 0, lateTrades: 0, dropped: 0, footprintFetch: 0, signalFetch: 0, dupFrames: 0 };
    this.dirty = new Set(['all']);
  }

  touch(...parts) {
    for (const p of parts) this.dirty.add(p);
  }

  // loadBars takes GET /bars?footprint=true: closed bars and the open one.
  // They replace what was held: after a reconnect the service may be a new
  // process whose bars and CVD started afresh.
  loadBars(resp) {
    this.closed.clear();
    this.open = null;
    this.lastTradeId = 0;
    for (const b of resp.bars || []) if (b.closed) this.closed.set(b.start, b);
    this.trimBars();
    if (resp.current) {
      this.open = openFromBar(resp.current);
      if (resp.current.last_id > this.lastTradeId) this.lastTradeId = resp.current.last_id;
    }
    const last = this.lastClosed();
    if (last && last.last_id > this.lastTradeId) this.lastTradeId = last.last_id;
    this.touch('bars', 'footprint');
  }

  // loadTrades takes GET /trades (oldest first) for the tape. Trades the
  // open bar already holds are not counted again.
  loadTrades(resp) {
    this.tape = (resp.trades || []).slice(-MAX_TAPE);
    this.newTape = [];
    this.tapeLastId = this.tape.length ? this.tape[this.tape.length - 1].id : 0;
    for (const t of this.tape) this.notePath(t);
    const last = this.tape[this.tape.length - 1];
    if (last && last.time > this.lastTime) this.lastTime = last.time;
    this.touch('tape', 'heatmap');
  }

  // addTrade applies one pushed trade: tape, price path, and the open bar
  // (exact). Trades at or below the last id seen are duplicates (the push
  // and the REST snapshot overlap) and are counted, not applied.
  addTrade(t) {
    const price = parse(t.price);
    const qty = parse(t.qty);
    if (price === null || qty === null) {
      this.counts.badValues++;
      return;
    }
    if (t.time > this.lastTime) this.lastTime = t.time;
    if (t.id > this.tapeLastId) {
      this.tapeLastId = t.id;
      this.tape.push(t);
      this.newTape.push(t);
      if (this.tape.length > MAX_TAPE * 2) this.tape = this.tape.slice(-MAX_TAPE);
      if (this.newTape.length > MAX_TAPE) this.newTape = this.newTape.slice(-MAX_TAPE);
      this.notePath(t);
      this.touch('tape', 'heatmap');
    }
    if (t.id <= this.lastTradeId) {
      this.counts.dupTrades++;
      return;
    }
    this.lastTradeId = t.id;
    this.counts.trades++;
    const start = Math.floor(t.time / 60000) * 60000;
    const last = this.lastClosed();
    if (last && start <= last.start) {
      // A late trade: its bar closed on the service's watermark; the
      // revised bar is pushed and replaces it.
      this.counts.lateTrades++;
      this.touch('tape');
      return;
    }
    if (!this.open || start > this.open.start) {
      this.open = emptyOpen(start, this.prevCVD());
    }
    if (start === this.open.start) applyTrade(this.open, t, price, qty);
    this.touch('bars', 'footprint');
  }

  notePath(t) {
    const last = this.path[this.path.length - 1];
    // One point per 100 ms of exchange time is plenty for a line.
    if (last && t.time - last[0] < 100) {
      last[1] = Number(t.price);
      return;
    }
    this.path.push([t.time, Number(t.price)]);
    if (this.path.length > MAX_PATH) this.path = this.path.slice(-MAX_PATH / 2);
  }

  // prevCVD is the CVD a new open bar starts from: the previous open bar's
  // (it has every trade so far), else the last closed bar's.
  prevCVD() {
    if (this.open) return this.open.cvd;
    const last = this.lastClosed();
    return (last && parse(last.cvd)) ?? 0n;
  }

  // addBar applies a pushed bar. A closed bar is authoritative and kept;
  // its footprint is fetched separately (pushes carry none), so the caller
  // is told with the return value. An open bar checks the local one: when
  // both have seen the same last trade, every figure must agree exactly,
  // and a disagreement is counted and the server's figures win.
  //
  // A revised bar (late trades amended it after it closed) replaces the
  // one with the same start; its footprint changed, so it is fetched again.
  addBar(b) {
    this.counts.barPushes++;
    if (b.closed) {
      const had = this.closed.get(b.start);
      const keep = had && had.footprint && !b.revised ? Object.assign({}, b, { footprint: had.footprint }) : b;
      this.closed.set(b.start, keep);
      if (this.open && this.open.start <= b.start) {
        this.open = null;
      }
      if (b.last_id > this.lastTradeId) this.lastTradeId = b.last_id;
      this.trimBars();
      this.touch('bars', 'footprint', 'signals');
      return !(had && had.footprint) || !!b.revised;
    }
    const o = this.open;
    if (!o || b.start > o.start || b.last_id > o.last_id) {
      // The local bar is behind (trades were dropped or the push stream
      // started after the snapshot): take the server's figures; the
      // footprint is refreshed by the caller.
      this.open = openFromBar(b);
      if (b.last_id > this.lastTradeId) this.lastTradeId = b.last_id;
      this.touch('bars', 'footprint');
      return true;
    }
    if (b.start === o.start && b.last_id === o.last_id) {
      if (format(o.delta) !== b.delta || format(o.volume) !== b.volume || o.close !== b.close || format(o.cvd) !== b.cvd) {
        // Pushed trades were skipped (the service reports how many): take
        // the server's figures, and its footprint (the caller fetches it).
        this.counts.barMismatch++;
        this.open = openFromBar(b);
        this.touch('bars', 'footprint');
        return true;
      }
    }
    return false;
  }

  // setFootprint stores a closed bar's footprint from GET /bars.
  setFootprint(b) {
    const had = this.closed.get(b.start);
    if (b.closed) this.closed.set(b.start, Object.assign({}, had || {}, b));
    else if (this.open && this.open.start === b.start && b.last_id >= this.open.last_id) this.open = openFromBar(b);
    this.touch('footprint', 'bars');
  }

  trimBars() {
    if (this.closed.size <= MAX_BARS) return;
    const keys = [...this.closed.keys()].sort((a, b) => a - b);
    for (const k of keys.slice(0, keys.length - MAX_BARS)) this.closed.delete(k);
  }

  // bars returns the closed bars oldest first.
  bars() {
    return [...this.closed.values()].sort((a, b) => a.start - b.start);
  }

  lastClosed() {
    let best = null;
    for (const b of this.closed.values()) if (!best || b.start > best.start) best = b;
    return best;
  }

  // openBar returns the open bar in the API's shape (decimal strings).
  openBar() {
    const o = this.open;
    if (!o || o.trades === 0) return null;
    return {
      symbol: this.symbol, interval: '1m', start: o.start, end: o.start + 60000, closed: false,
      open: o.open, high: o.high, low: o.low, close: o.close, trades: o.trades,
      volume: format(o.volume), buy_volume: format(o.buy), sell_volume: format(o.sell),
      delta: format(o.delta), cvd: format(o.cvd), first_id: o.first_id, last_id: o.last_id,
      footprint: [...o.levels.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))
        .map(([p, l]) => ({ price: format(p), buy_volume: format(l.buy), sell_volume: format(l.sell) })),
    };
  }

  setBook(b) {
    this.book = b;
    this.touch('ladder');
  }

  // addFrame stores one deep book read for the heatmap, stamped with the
  // latest exchange time seen (book answers carry an update id, not a time).
  // A read that does not move both the time and the update id past the
  // newest frame held (the book history's last one after a preload, or the
  // previous read) is a duplicate: counted, not stored.
  addFrame(b) {
    if (!b || !b.synced || !this.lastTime) return false;
    const last = this.frames[this.frames.length - 1];
    if (last && (b.update_id <= last.id || this.lastTime <= last.t)) {
      this.counts.dupFrames++;
      return false;
    }
    this.frames.push({ t: this.lastTime, id: b.update_id, src: 'live', bids: levels(b.bids), asks: levels(b.asks) });
    if (this.frames.length > MAX_FRAMES) this.frames.splice(0, this.frames.length - MAX_FRAMES);
    this.touch('heatmap');
    return true;
  }

  // loadHistory takes GET /book/history (frames of the top of the book,
  // one per second of exchange time, oldest first) so the heatmap shows the
  // recent past at once. Two history frames may carry the same update id:
  // the book did not change from one second to the next (the service
  // records a frame at the first depth event of each second, applied or
  // not); both are kept, as they are columns of the same book over time.
  // Over the span the history covers its frames replace the ones held;
  // frames held from before it (an earlier service process) or after it
  // (live reads that came in meanwhile) stay only when their time lies
  // outside it and their update id does not go back (after it: moves on),
  // so time strictly increases and update ids never decrease: no duplicate
  // column, no seam. Returns the number of history frames taken.
  loadHistory(h) {
    const fr = [];
    for (const f of (h && h.frames) || []) {
      const last = fr[fr.length - 1];
      if (last && (f.time <= last.t || f.update_id < last.id)) {
        this.counts.dupFrames++;
        continue;
      }
      fr.push({ t: f.time, id: f.update_id, src: 'history', bids: levels(f.bids), asks: levels(f.asks) });
    }
    if (!fr.length) return 0;
    const first = fr[0];
    const last = fr[fr.length - 1];
    const before = this.frames.filter((f) => f.t < first.t && f.id <= first.id);
    const after = this.frames.filter((f) => f.t > last.t && f.id > last.id);
    this.counts.dupFrames += this.frames.length - before.length - after.length;
    this.frames = before.concat(fr, after);
    if (this.frames.length > MAX_FRAMES) this.frames.splice(0, this.frames.length - MAX_FRAMES);
    this.history = { frames: fr.length, from: first.t, to: last.t, firstId: first.id, lastId: last.id, depth: h.depth };
    if (last.t > this.lastTime) this.lastTime = last.t;
    this.touch('heatmap');
    return fr.length;
  }

  // setWalls takes GET /walls.
  setWalls(w) {
    this.walls = w;
    this.touch('ladder', 'heatmap');
  }

  addLarge(l) {
    this.large.set(l.id, l);
    if (this.large.size > MAX_LARGE) this.large.delete(this.large.keys().next().value);
    this.touch('tape', 'heatmap');
  }

  // loadSignals takes GET /signals as the base after a (re)connect, as
  // loadBars does for bars: a restarted service has its own.
  loadSignals(resp) {
    this.signals = [];
    this.wallSignals = [];
    this.mergeSignals(resp);
  }

  // mergeSignals adds the signals of a GET /signals answer to those held.
  mergeSignals(resp) {
    for (const x of (resp && resp.signals) || []) this.addSignal(x, false);
    this.signals.sort(byTime);
    this.wallSignals.sort(byTime);
    this.trimSignals();
    this.touch('signals');
  }

  // addSignal keeps one signal (pushed or from GET /signals); the same
  // kind, time, side and price again is a duplicate. sort false leaves the
  // ordering and trimming to the caller (mergeSignals).
  addSignal(s, sort = true) {
    const list = isWallSignal(s) ? this.wallSignals : this.signals;
    if (list.some((x) => x.kind === s.kind && x.time === s.time && x.side === s.side && x.price === s.price)) return;
    list.push(s);
    if (!sort) return;
    // Usually the newest: only then is it already in place.
    if (list.length > 1 && list[list.length - 2].time > s.time) list.sort(byTime);
    this.trimSignals();
    this.touch('signals');
  }

  trimSignals() {
    if (this.signals.length > MAX_SIGNALS) this.signals.splice(0, this.signals.length - MAX_SIGNALS);
    if (this.wallSignals.length > MAX_WALL_SIGNALS) this.wallSignals.splice(0, this.wallSignals.length - MAX_WALL_SIGNALS);
  }
}

const byTime = (a, b) => a.time - b.time;
const isWallSignal = (s) => s.kind === 'wall_pulled' || s.kind === 'wall_filled';

// levels turns API levels into [price, qty] numbers for drawing.
function levels(ls) {
  return (ls || []).map((l) => [Number(l.price), Number(l.qty)]);
}

function emptyOpen(start, cvd) {
  return {
    start, open: null, high: null, low: null, close: null, hi: null, lo: null,
    trades: 0, volume: 0n, buy: 0n, sell: 0n, delta: 0n, cvd,
    first_id: 0, last_id: 0, levels: new Map(),
  };
}

// openFromBar makes the local open bar from the API's: figures exact, the
// footprint (if the answer has one) as BigInt sums per price.
function openFromBar(b) {
  const o = emptyOpen(b.start, parse(b.cvd) ?? 0n);
  o.open = b.open;
  o.high = b.high;
  o.low = b.low;
  o.close = b.close;
  o.hi = parse(b.high);
  o.lo = parse(b.low);
  o.trades = b.trades;
  o.volume = parse(b.volume) ?? 0n;
  o.buy = parse(b.buy_volume) ?? 0n;
  o.sell = parse(b.sell_volume) ?? 0n;
  o.delta = parse(b.delta) ?? 0n;
  o.first_id = b.first_id;
  o.last_id = b.last_id;
  for (const l of b.footprint || []) {
    o.levels.set(parse(l.price), { buy: parse(l.buy_volume) ?? 0n, sell: parse(l.sell_volume) ?? 0n });
  }
  o.hasFootprint = !!b.footprint;
  return o;
}

function applyTrade(o, t, price, qty) {
  if (o.trades === 0) {
    o.open = t.price;
    o.first_id = t.id;
  }
  if (o.hi === null || price > o.hi) {
    o.hi = price;
    o.high = t.price;
  }
  if (o.lo === null || price < o.lo) {
    o.lo = price;
    o.low = t.price;
  }
  o.close = t.price;
  o.trades++;
  o.last_id = t.id;
  o.volume += qty;
  let l = o.levels.get(price);
  if (!l) o.levels.set(price, (l = { buy: 0n, sell: 0n }));
  if (t.side === 'buy') {
    o.buy += qty;
    o.delta += qty;
    o.cvd += qty;
    l.buy += qty;
  } else {
    o.sell += qty;
    o.delta -= qty;
    o.cvd -= qty;
    l.sell += qty;
  }
}

// regroup turns a footprint (API levels, raw or grouped prices) into
// display rows of step (1e-8 units; 0n keeps the prices as they are), and
// marks diagonal imbalances, stacked runs and the POC by the same rules the
// service documents (flow.Bar): buy imbalance at row r when
// buy(r)*100 >= pct*sell(r-1) with buy(r) > 0, the neighbour exactly one row
// below (a missing neighbour counts as zero); sell imbalance mirrored with
// the row above; POC the largest total, the lowest on a tie; a stack is
// minStack or more adjacent rows with the same flag. All in BigInt, exact.
export function regroup(levels, step, pct = 300n, minStack = 3) {
  const rows = new Map();
  for (const l of levels) {
    const p = parse(l.price);
    const b = parse(l.buy_volume);
    const s = parse(l.sell_volume);
    if (p === null || b === null || s === null) continue;
    const k = step > 0n ? floorTo(p, step) : p;
    let r = rows.get(k);
    if (!r) rows.set(k, (r = { p: k, buy: 0n, sell: 0n }));
    r.buy += b;
    r.sell += s;
  }
  const out = [...rows.values()].sort((a, b) => (a.p < b.p ? -1 : a.p > b.p ? 1 : 0));
  const adjacent = (lo, hi) => step <= 0n || hi.p - lo.p === step;
  let poc = null;
  for (let i = 0; i < out.length; i++) {
    const r = out[i];
    const below = i > 0 && adjacent(out[i - 1], r) ? out[i - 1] : null;
    const above = i + 1 < out.length && adjacent(r, out[i + 1]) ? out[i + 1] : null;
    r.buyImb = i > 0 && r.buy > 0n && r.buy * 100n >= pct * (below ? below.sell : 0n);
    r.sellImb = i + 1 < out.length && r.sell > 0n && r.sell * 100n >= pct * (above ? above.buy : 0n);
    r.total = r.buy + r.sell;
    if (!poc || r.total > poc.total) poc = r;
    r.price = format(r.p);
  }
  for (const side of ['buyImb', 'sellImb']) {
    let i = 0;
    while (i < out.length) {
      if (!out[i][side]) {
        i++;
        continue;
      }
      let j = i + 1;
      while (j < out.length && out[j][side] && adjacent(out[j - 1], out[j])) j++;
      if (j - i >= minStack) for (let k = i; k < j; k++) out[k][side + 'Stacked'] = true;
      i = j;
    }
  }
  if (poc) poc.poc = true;
  return out;
}
