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
    this.shown = key;
  }

  // setSignals marks delta divergences and exhausted extremes on the
  // candles, one marker per bar and kind.
  setSignals(signals) {
    const byKey = new Map();
    for (const s of signals) {
      // Stacked imbalances at raw prices come by the dozen per bar: they are
      // listed in the signals panel and drawn on the footprint, not here.
      if (s.kind.startsWith('stacked')) continue;
      const k = s.bar_start + ' ' + s.kind;
      const m = byKey.get(k);
      if (m) m.n++;
      else byKey.set(k, { s, n: 1 });
    }
    const ms = [...byKey.values()].map(({ s, n }) => {
      const bull = s.kind.startsWith('bullish') || s.kind === 'low_exhausted' || s.kind === 'stacked_buy_imbalance';
      return {
        time: s.bar_start / 1000,
        position: bull ? 'belowBar' : 'aboveBar',
        color: bull ? UP : DOWN,
        shape: bull ? 'arrowUp' : 'arrowDown',
        text: (SHORT[s.kind] || s.kind) + (n > 1 ? '×' + n : ''),
      };
    });
    ms.sort((a, b) => a.time - b.time);
    this.markers.setMarkers(ms);
  }

  reset() {
    this.shown = [];
    this.candles.setData([]);
    this.delta.setData([]);
    this.cvd.setData([]);
    this.markers.setMarkers([]);
  }

  // data returns what the chart holds, for the browser test.
  data() {
    return { candles: this.candles.data(), delta: this.delta.data(), cvd: this.cvd.data() };
  }
}

const SHORT = {
  bearish_divergence: 'div', bullish_divergence: 'div', high_exhausted: 'exh', low_exhausted: 'exh',
  stacked_buy_imbalance: 'stk', stacked_sell_imbalance: 'stk',
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
