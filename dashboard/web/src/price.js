// The price chart: 1m candles, with the bars' delta (histogram) and CVD
// (line) in panes below, drawn by lightweight-charts (canvas). Values
// handed to the chart are numbers for drawing; the exact strings stay in
// the store.

import { createChart, CandlestickSeries, HistogramSeries, LineSeries, ColorType, createSeriesMarkers } from 'lightweight-charts';

const UP = '#26a69a';
const DOWN = '#ef5350';

export class PriceChart {
  constructor(el) {
    this.chart = createChart(el, {
      autoSize: true,
      layout: {
        background: { type: ColorType.Solid, color: '#0f1419' },
        textColor: '#c9d1d9',
        fontSize: 11,
        panes: { separatorColor: '#2d333b', enableResize: true },
      },
      grid: { vertLines: { color: '#1b2129' }, horzLines: { color: '#1b2129' } },
      timeScale: { timeVisible: true, secondsVisible: false, borderColor: '#2d333b', rightOffset: 2, barSpacing: 16, minBarSpacing: 3 },
      rightPriceScale: { borderColor: '#2d333b' },
      crosshair: { mode: 0 },
    });
    this.candles = this.chart.addSeries(CandlestickSeries, {
      upColor: UP, downColor: DOWN, borderVisible: false, wickUpColor: UP, wickDownColor: DOWN,
      priceFormat: { type: 'price', precision: 2, minMove: 0.01 },
    }, 0);
    this.delta = this.chart.addSeries(HistogramSeries, { priceFormat: { type: 'volume' }, title: 'delta' }, 1);
    this.cvd = this.chart.addSeries(LineSeries, { color: '#d29922', lineWidth: 2, priceFormat: { type: 'volume' }, title: 'CVD' }, 2);
    const panes = this.chart.panes();
    panes[0].setStretchFactor(3);
    panes[1].setStretchFactor(1);
    panes[2].setStretchFactor(1);
    this.markers = createSeriesMarkers(this.candles, []);
    this.shown = []; // [start, last_id, closed] of each bar given to the chart
    this.signals = [];
    this.marked = []; // the markers set, grouped: {time (s), kind, side, n, signals}
    this.bySecond = new Map(); // bar time (s) -> its groups, for the tooltip
    // The tooltip: the signals of the bar under the pointer, defined.
    this.tip = document.createElement('div');
    this.tip.className = 'sig-tip';
    this.tip.hidden = true;
    el.appendChild(this.tip);
    this.chart.subscribeCrosshairMove((p) => this.showTip(p));
  }

  // setBars draws bars (API shape, oldest first, the open bar last).
  // When only the last bar changed or one was appended, it updates in
  // place: a full setData per trade would be too slow at the busiest pace.
  setBars(bars) {
    const key = bars.map((b) => [b.start, b.last_id, b.closed]);
    const n = this.shown.length;
    const eq = (x, y) => x[0] === y[0] && x[1] === y[1] && x[2] === y[2];
    let incremental = n > 0 && (key.length === n || key.length === n + 1) && key[n - 1][0] === this.shown[n - 1][0];
    for (let i = 0; incremental && i < n - 1; i++) if (!eq(this.shown[i], key[i])) incremental = false;
    if (incremental) {
      for (let i = n - 1; i < bars.length; i++) {
        const b = bars[i];
        this.candles.update(candle(b));
        this.delta.update(deltaBar(b));
        this.cvd.update(cvdPoint(b));
      }
    } else {
      this.candles.setData(bars.map(candle));
      this.delta.setData(bars.map(deltaBar));
      this.cvd.setData(bars.map(cvdPoint));
    }
    const grew = key.length !== n || !incremental;
    this.shown = key;
    if (grew) this.applyMarkers();
  }

  // setSignals marks the combined signals on the candles: delta
  // divergences, exhausted extremes and absorption, one marker per bar,
  // kind and direction (×n when several). A book signal (absorption) sits
  // on the 1m bar its time falls in. Stacked imbalances come by the dozen
  // per bar at raw prices: they are listed in the signals panel and drawn
  // on the footprint, not here; walls pulled or filled show on the heatmap.
  setSignals(signals) {
    this.signals = signals;
    this.applyMarkers();
  }

  applyMarkers() {
    const bars = new Set(this.shown.map((k) => k[0]));
    const groups = new Map();
    for (const s of this.signals) {
      const g = GROUP[s.kind];
      if (!g) continue;
      const start = s.bar_start || Math.floor(s.time / 60000) * 60000;
      if (!bars.has(start)) continue; // its bar is not on the chart
      const bull = g.bull(s);
      const k = start + ' ' + g.kind + ' ' + bull;
      const m = groups.get(k);
      if (m) {
        m.n++;
        m.signals.push(s);
      } else groups.set(k, { time: start / 1000, kind: g.kind, bull, n: 1, signals: [s] });
    }
    this.marked = [...groups.values()].sort((a, b) => a.time - b.time || (a.kind < b.kind ? -1 : 1));
    this.bySecond = new Map();
    for (const m of this.marked) {
      if (!this.bySecond.has(m.time)) this.bySecond.set(m.time, []);
      this.bySecond.get(m.time).push(m);
    }
    this.markers.setMarkers(
      this.marked.map((m) => ({
        time: m.time,
        position: m.bull ? 'belowBar' : 'aboveBar',
        color: m.kind === 'abs' ? (m.bull ? '#58a6ff' : '#d2a8ff') : m.bull ? UP : DOWN,
        shape: m.kind === 'abs' ? 'circle' : m.bull ? 'arrowUp' : 'arrowDown',
        // Absorption comes several a bar: its circle (see the legend) and a
        // count say enough; the arrows keep their short name.
        text: m.kind === 'abs' ? (m.n > 1 ? String(m.n) : '') : m.kind + (m.n > 1 ? '×' + m.n : ''),
      })),
    );
  }

  // showTip lists the signals of the bar under the pointer with their
  // definitions.
  showTip(p) {
    const groups = p && p.point && p.time !== undefined ? this.bySecond.get(p.time) : null;
    if (!groups) {
      this.tip.hidden = true;
      return;
    }
    const esc = (x) => String(x).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
    this.tip.innerHTML = groups
      .map((m) => {
        const s = m.signals[m.signals.length - 1];
        const what = LONG[s.kind] || s.kind;
        const extra = s.kind === 'absorption'
          ? ` ${s.side} @ ${s.price}: ${s.volume} traded (threshold ${s.threshold}), ${s.replenished} replenished, ${Number(s.strength).toFixed(1)}× the average`
          : ` @ ${s.price}` + (s.cvd ? `, CVD ${s.cvd}` : '');
        return `<div class="${m.bull ? 'bull' : 'bear'}"><b>${esc(what)}${m.n > 1 ? ' ×' + m.n : ''}</b>${esc(extra)}` +
          `<div class="def">${esc(DEFINITIONS[s.kind])}</div></div>`;
      })
      .join('');
    this.tip.hidden = false;
    const w = this.tip.offsetWidth;
    const box = this.tip.parentElement.clientWidth;
    this.tip.style.left = Math.max(0, Math.min(box - w - 4, p.point.x + 12)) + 'px';
    this.tip.style.top = Math.max(0, p.point.y + 12) + 'px';
  }

  // markerPoint returns the page coordinates (CSS px) of marker i's bar,
  // at the middle of its candle, or null when it is not in view.
  markerPoint(i) {
    const m = this.marked[i];
    if (!m) return null;
    const x = this.chart.timeScale().timeToCoordinate(m.time);
    const c = this.candles.data().find((d) => d.time === m.time);
    const y = c ? this.candles.priceToCoordinate((c.high + c.low) / 2) : null;
    if (x === null || y === null) return null;
    const r = this.tip.parentElement.getBoundingClientRect();
    return { x: r.left + x, y: r.top + y };
  }

  // markerList returns the markers set, for the browser test.
  markerList() {
    return this.marked.map((m) => ({ time: m.time, kind: m.kind, bull: m.bull, n: m.n }));
  }

  reset() {
    this.shown = [];
    this.candles.setData([]);
    this.delta.setData([]);
    this.cvd.setData([]);
    this.signals = [];
    this.applyMarkers();
  }

  // data returns what the chart holds, for the browser test.
  data() {
    return { candles: this.candles.data(), delta: this.delta.data(), cvd: this.cvd.data() };
  }
}

// GROUP maps the signal kinds marked on the chart to their marker
// ("div", "exh", "abs") and direction.
const GROUP = {
  bearish_divergence: { kind: 'div', bull: () => false },
  bullish_divergence: { kind: 'div', bull: () => true },
  high_exhausted: { kind: 'exh', bull: () => false },
  low_exhausted: { kind: 'exh', bull: () => true },
  absorption: { kind: 'abs', bull: (s) => s.side === 'bid' },
};

const LONG = {
  bearish_divergence: 'bearish delta divergence', bullish_divergence: 'bullish delta divergence',
  high_exhausted: 'exhausted high', low_exhausted: 'exhausted low', absorption: 'absorption',
};

// DEFINITIONS says what each signal means, as the service computes it
// (flow.Bar and depthflow.Signal; the figures are the defaults).
export const DEFINITIONS = {
  bearish_divergence: 'Delta divergence (bearish, ▼ div): the bar made a new high over the previous 20 bars but its CVD did not (CVD at or below their highest).',
  bullish_divergence: 'Delta divergence (bullish, ▲ div): the bar made a new low over the previous 20 bars but its CVD did not (CVD at or above their lowest).',
  high_exhausted: 'Exhausted high (▼ exh): the volume traded at the bar\'s highest price is at most 20% of its average volume per price (bars of 5 prices or more): buyers ran out at the top.',
  low_exhausted: 'Exhausted low (▲ exh): the volume traded at the bar\'s lowest price is at most 20% of its average volume per price (bars of 5 prices or more): sellers ran out at the bottom.',
  absorption: 'Absorption (● abs): within 10 s, takers hit one resting price with at least 3× the last 1m bar\'s average volume per price, at least half of it was added back, and the price still holds. ▲ below the bar: bids absorbed selling; ▼ above: asks absorbed buying.',
  stacked_buy_imbalance: 'Stacked buy imbalance: 3 or more adjacent footprint prices where buying is at least 3× the selling one price below.',
  stacked_sell_imbalance: 'Stacked sell imbalance: 3 or more adjacent footprint prices where selling is at least 3× the buying one price above.',
  wall_pulled: 'Wall pulled: a wall (a resting level several times the mean of its neighbours, near the mid; see GET /walls) that had stood a while was cancelled.',
  wall_filled: 'Wall filled: a wall that had stood a while was traded away (trades took most of its decrease).',
};

function candle(b) {
  return { time: b.start / 1000, open: Number(b.open), high: Number(b.high), low: Number(b.low), close: Number(b.close) };
}

function cvdPoint(b) {
  return { time: b.start / 1000, value: Number(b.cvd) };
}

function deltaBar(b) {
  const v = Number(b.delta);
  return { time: b.start / 1000, value: v, color: v >= 0 ? UP : DOWN };
}
