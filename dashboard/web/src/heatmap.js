// The liquidity heatmap, drawn by hand on a canvas: resting book quantity
// at each price (y) over exchange time (x), brighter where more rests, with
// the traded price drawn over it, large trades as bubbles sized by
// quantity, and walls as horizontal lines over the time they stood. Each
// column is one book frame: the service's book history (preloaded, the top
// levels once a second) then the dashboard's own deep book reads; levels
// are summed into the pixel row their price falls in, so a thousand levels
// cost one rectangle per lit row. Before the first trade loaded, the line
// is the frames' mid (dashed).

import { fitCanvas, hhmm } from './canvas.js';

const AXIS = 66;
const FOOT = 16;
const ROWPX = 3; // price rows of the heatmap, px: levels are summed into them

// A dark-to-bright ramp (deep blue, cyan, yellow, white) read by index.
const RAMP = (() => {
  const stops = [[0, [13, 17, 23]], [0.25, [24, 60, 130]], [0.5, [31, 160, 190]], [0.75, [240, 200, 60]], [1, [255, 255, 240]]];
  const out = [];
  for (let i = 0; i < 256; i++) {
    const t = i / 255;
    let k = 0;
    while (k < stops.length - 2 && t > stops[k + 1][0]) k++;
    const [t0, c0] = stops[k];
    const [t1, c1] = stops[k + 1];
    const f = (t - t0) / (t1 - t0);
    out.push(`rgb(${c0.map((c, j) => Math.round(c + (c1[j] - c) * f)).join(',')})`);
  }
  return out;
})();

export class Heatmap {
  constructor(canvas) {
    this.canvas = canvas;
    this.span = 10 * 60 * 1000; // exchange time shown
    this.info = null;
  }

  // draw renders frames ({t, bids, asks}), the price path ([t, price]),
  // bubbles ({time, price, qty, side}) and walls (GET /walls, or null); now
  // is the latest exchange time.
  draw(frames, path, bubbles, now, walls) {
    const { ctx, w, h } = fitCanvas(this.canvas);
    ctx.fillStyle = RAMP[0];
    ctx.fillRect(0, 0, w, h);
    ctx.font = '11px ui-monospace, SFMono-Regular, Menlo, monospace';
    ctx.textBaseline = 'middle';
    const pw = w - AXIS;
    const ph = h - FOOT;
    if (!now || (!frames.length && !path.length)) {
      ctx.fillStyle = '#8b949e';
      ctx.fillText('waiting for book reads…', 12, 20);
      this.info = { frames: 0 };
      return;
    }
    // Show up to span, but no more than the data covers (plus a little),
    // so a fresh dashboard is not mostly empty.
    const first = Math.min(frames.length ? frames[0].t : now, path.length ? path[0][0] : now);
    const span = Math.max(60000, Math.min(this.span, (now - first) * 1.05));
    const t0 = now - span;
    const xOf = (t) => ((t - t0) / span) * pw;
    // price range: the traded prices in view, padded, at least a few ticks
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = path.length - 1; i >= 0 && path[i][0] >= t0; i--) {
      lo = Math.min(lo, path[i][1]);
      hi = Math.max(hi, path[i][1]);
    }
    const vis = frames.filter((f) => f.t >= t0 - 5000);
    // and the best bid and ask of the frames in view (the preloaded past
    // has frames but no trade path)
    for (const f of vis) {
      if (f.t < t0 || !f.bids.length || !f.asks.length) continue;
      lo = Math.min(lo, f.bids[0][0]);
      hi = Math.max(hi, f.asks[0][0]);
    }
    if (!isFinite(lo)) {
      const f = vis[vis.length - 1];
      if (!f || !f.bids.length || !f.asks.length) return;
      lo = f.bids[0][0];
      hi = f.asks[0][0];
    }
    const pad = Math.max((hi - lo) * 0.15, hi * 0.0002);
    lo -= pad;
    hi += pad;
    const yOf = (p) => ((hi - p) / (hi - lo)) * ph;

    // Scale intensity to the 98th percentile of the summed rows, on a log
    // scale, so one huge wall does not darken everything else.
    const rows = new Float64Array(Math.ceil(ph) + 1);
    const cols = [];
    const all = [];
    for (let i = 0; i < vis.length; i++) {
      const f = vis[i];
      rows.fill(0);
      for (const side of [f.bids, f.asks]) {
        for (const [p, q] of side) {
          const y = Math.floor(yOf(p) / ROWPX) * ROWPX;
          if (y >= 0 && y < rows.length) rows[y] += q;
        }
      }
      const lit = [];
      for (let y = 0; y < rows.length; y++) {
        if (rows[y] > 0) {
          lit.push(y, rows[y]);
          all.push(rows[y]);
        }
      }
      const x = xOf(f.t);
      const next = i + 1 < vis.length ? xOf(vis[i + 1].t) : Math.min(pw, x + 4);
      cols.push({ x, wd: Math.max(1, next - x), lit });
    }
    all.sort((a, b) => a - b);
    const ref = all.length ? all[Math.floor(all.length * 0.98)] : 1;
    const lref = Math.log1p(ref);
    for (const c of cols) {
      for (let k = 0; k < c.lit.length; k += 2) {
        const v = Math.min(1, Math.log1p(c.lit[k + 1]) / lref);
        ctx.fillStyle = RAMP[Math.max(40, Math.round(v * 255))];
        ctx.fillRect(c.x, c.lit[k], c.wd + 0.5, ROWPX);
      }
    }

    // walls: current ones from when they qualified to now (solid, 2 px),
    // recently ended ones over the time they stood (dashed); green bids,
    // red asks. Walls outside the price range in view are listed, not drawn.
    const wallInfo = { time: walls ? walls.time : 0, drawn: [], outOfView: [], ended: 0 };
    if (walls) {
      const line = (w, to, current) => {
        const p = Number(w.price);
        if (!(p >= lo && p <= hi) || to < t0) return false;
        const y = Math.round(yOf(p)) + 0.5;
        ctx.strokeStyle = w.side === 'bid' ? (current ? 'rgba(86,211,100,0.95)' : 'rgba(86,211,100,0.5)') : current ? 'rgba(255,123,114,0.95)' : 'rgba(255,123,114,0.5)';
        ctx.lineWidth = current ? 2 : 1;
        ctx.setLineDash(current ? [] : [3, 3]);
        ctx.beginPath();
        ctx.moveTo(Math.max(0, xOf(w.since)), y);
        ctx.lineTo(Math.min(pw, xOf(to)), y);
        ctx.stroke();
        return true;
      };
      for (const w of walls.ended || []) if (line(w, w.end, false)) wallInfo.ended++;
      for (const w of (walls.bids || []).concat(walls.asks || [])) {
        (line(w, now, true) ? wallInfo.drawn : wallInfo.outOfView).push({ side: w.side, price: w.price });
      }
      ctx.setLineDash([]);
    }

    // the frames' mid before the first trade of the path (dashed)
    const pathStart = path.length ? path[0][0] : Infinity;
    ctx.strokeStyle = 'rgba(255,255,255,0.6)';
    ctx.lineWidth = 1;
    ctx.setLineDash([4, 3]);
    ctx.beginPath();
    let midStarted = false;
    for (const f of vis) {
      if (f.t < t0 || f.t >= pathStart || !f.bids.length || !f.asks.length) continue;
      const x = xOf(f.t);
      const y = yOf((f.bids[0][0] + f.asks[0][0]) / 2);
      if (!midStarted) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
      midStarted = true;
    }
    ctx.stroke();
    ctx.setLineDash([]);

    // traded price
    ctx.strokeStyle = '#ffffff';
    ctx.lineWidth = 1.25;
    ctx.beginPath();
    let started = false;
    for (const [t, p] of path) {
      if (t < t0) continue;
      const x = xOf(t);
      const y = yOf(p);
      if (!started) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
      started = true;
    }
    ctx.stroke();

    // large trades
    let qmax = 0;
    for (const b of bubbles) qmax = Math.max(qmax, b.qty);
    for (const b of bubbles) {
      if (b.time < t0) continue;
      const r = 2.5 + 8 * Math.sqrt(b.qty / (qmax || 1));
      ctx.beginPath();
      ctx.arc(xOf(b.time), yOf(b.price), r, 0, 2 * Math.PI);
      ctx.fillStyle = b.side === 'buy' ? 'rgba(63,185,80,0.55)' : 'rgba(248,81,73,0.55)';
      ctx.fill();
      ctx.strokeStyle = b.side === 'buy' ? '#56d364' : '#ff7b72';
      ctx.lineWidth = 1;
      ctx.stroke();
    }

    // axes
    ctx.fillStyle = '#0f1419';
    ctx.fillRect(pw, 0, AXIS, h);
    ctx.fillRect(0, ph, w, FOOT);
    ctx.fillStyle = '#8b949e';
    const ticks = 6;
    for (let i = 0; i <= ticks; i++) {
      const p = lo + ((hi - lo) * i) / ticks;
      ctx.fillText(p.toFixed(2), pw + 6, Math.min(ph - 6, Math.max(6, yOf(p))));
    }
    for (let m = Math.ceil(t0 / 60000) * 60000; m <= now; m += 60000) {
      const x = xOf(m);
      ctx.fillText(hhmm(m), Math.min(pw - 34, Math.max(0, x - 16)), ph + FOOT / 2);
      ctx.fillRect(x, ph, 1, 3);
    }
    const last = path[path.length - 1];
    if (last) {
      const y = Math.min(ph - 8, Math.max(8, yOf(last[1])));
      ctx.fillStyle = '#1f6feb';
      ctx.fillRect(pw + 2, y - 7, AXIS - 4, 14);
      ctx.fillStyle = '#fff';
      ctx.fillText(last[1].toFixed(2), pw + 6, y);
    }
    this.info = { frames: vis.length, lo, hi, from: t0, to: now, bubbles: bubbles.length, walls: wallInfo };
  }
}
