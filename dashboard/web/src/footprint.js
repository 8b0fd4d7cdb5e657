// The footprint chart, drawn by hand on a canvas: for each recent bar, the
// volume at each price row split into taker sells (bid side, left) and
// taker buys (ask side, right); diagonal imbalances highlighted, stacked
// runs striped, the point of control boxed. Rows are regrouped exactly
// (store.regroup) to a step that fits the panel, or the step chosen.

import { regroup } from './store.js';
import { format } from './dec.js';
import { fitCanvas, compact, hhmm, niceStep } from './canvas.js';

const ROW = 15; // px per price row
const COL = 108; // px per bar
const AXIS = 66; // price axis width
const HEAD = 30; // bar header (time, delta)

export class FootprintChart {
  constructor(canvas) {
    this.canvas = canvas;
    this.step = 0; // 0: automatic
    this.lastRows = null;
  }

  // draw renders bars (API shape with footprints, oldest first).
  draw(bars) {
    const { ctx, w, h } = fitCanvas(this.canvas);
    ctx.fillStyle = '#0f1419';
    ctx.fillRect(0, 0, w, h);
    const ncols = Math.max(1, Math.floor((w - AXIS) / COL));
    const shown = bars.filter((b) => b.footprint && b.footprint.length).slice(-ncols);
    ctx.font = '11px ui-monospace, SFMono-Regular, Menlo, monospace';
    ctx.textBaseline = 'middle';
    if (!shown.length) {
      ctx.fillStyle = '#8b949e';
      ctx.fillText('waiting for trades…', 12, 20);
      this.lastRows = null;
      return;
    }
    const nrows = Math.max(4, Math.floor((h - HEAD - 4) / ROW));
    const last = shown[shown.length - 1];
    let lo = Infinity;
    let hi = -Infinity;
    for (const b of shown) {
      lo = Math.min(lo, Number(b.low));
      hi = Math.max(hi, Number(b.high));
    }
    const step = this.step > 0 ? this.step : niceStep((hi - lo) / (nrows - 1));
    const stepU = BigInt(Math.round(step * 1e8));
    // The price grid: rows of step, the top row holding hi; when the range
    // does not fit, center on the last price.
    const top0 = Math.floor(hi / step) * step;
    let top = top0;
    const span = (nrows - 1) * step;
    const need = Math.round((top0 - Math.floor(lo / step) * step) / step) + 1;
    if (need < nrows) top = top0 + Math.floor((nrows - need) / 2) * step; // center the bars' range
    if (top0 - lo > span) {
      const c = Math.floor(Number(last.close) / step) * step;
      top = Math.min(top0, c + Math.floor(nrows / 2) * step);
    }
    const yOf = (p) => HEAD + Math.round((top - p) / step) * ROW;
    const decimals = step >= 1 ? 0 : step >= 0.1 ? 1 : 2;

    // price axis
    ctx.fillStyle = '#8b949e';
    for (let i = 0; i < nrows; i++) {
      const p = top - i * step;
      const y = HEAD + i * ROW;
      ctx.fillText(p.toFixed(decimals), w - AXIS + 6, y + ROW / 2);
    }

    this.lastRows = [];
    shown.forEach((b, ci) => {
      // newest bar next to the price axis, as on a chart
      const x0 = w - AXIS - (shown.length - ci) * COL + 4;
      const rows = regroup(b.footprint, stepU);
      this.lastRows.push({ start: b.start, step: String(step), rows: rows.map(exportRow) });
      let max = 0;
      for (const r of rows) max = Math.max(max, Number(r.buy), Number(r.sell));
      // header
      const d = Number(b.delta);
      ctx.fillStyle = '#c9d1d9';
      ctx.fillText(hhmm(b.start) + (b.closed ? '' : ' ▸'), x0, 9);
      ctx.fillStyle = d >= 0 ? '#3fb950' : '#f85149';
      ctx.fillText('Δ ' + compact(d), x0, 22);
      ctx.fillStyle = '#8b949e';
      ctx.fillText('v ' + compact(Number(b.volume)), x0 + 58, 22);
      const half = (COL - 10) / 2;
      for (const r of rows) {
        const p = Number(r.p) / 1e8;
        const y = yOf(p);
        if (y < HEAD || y > h - ROW) continue;
        const sell = Number(r.sell) / 1e8;
        const buy = Number(r.buy) / 1e8;
        // volume shading: the cell's share of the bar's largest
        ctx.fillStyle = `rgba(248,81,73,${(0.08 + 0.55 * (sell / (max / 1e8 || 1))).toFixed(3)})`;
        ctx.fillRect(x0, y + 1, half - 1, ROW - 2);
        ctx.fillStyle = `rgba(63,185,80,${(0.08 + 0.55 * (buy / (max / 1e8 || 1))).toFixed(3)})`;
        ctx.fillRect(x0 + half, y + 1, half - 1, ROW - 2);
        if (r.sellImbStacked) {
          ctx.fillStyle = '#f85149';
          ctx.fillRect(x0 - 3, y, 2, ROW);
        }
        if (r.buyImbStacked) {
          ctx.fillStyle = '#3fb950';
          ctx.fillRect(x0 + 2 * half, y, 2, ROW);
        }
        ctx.font = r.sellImb ? 'bold 10px ui-monospace, monospace' : '10px ui-monospace, monospace';
        ctx.fillStyle = r.sellImb ? '#ff7b72' : '#c9d1d9';
        ctx.textAlign = 'right';
        ctx.fillText(compact(sell), x0 + half - 4, y + ROW / 2);
        ctx.font = r.buyImb ? 'bold 10px ui-monospace, monospace' : '10px ui-monospace, monospace';
        ctx.fillStyle = r.buyImb ? '#56d364' : '#c9d1d9';
        ctx.textAlign = 'left';
        ctx.fillText(compact(buy), x0 + half + 4, y + ROW / 2);
        if (r.poc) {
          ctx.strokeStyle = '#e3b341';
          ctx.lineWidth = 1.5;
          ctx.strokeRect(x0 + 0.5, y + 0.5, 2 * half - 1, ROW - 1);
        }
      }
      ctx.textAlign = 'left';
      ctx.font = '11px ui-monospace, SFMono-Regular, Menlo, monospace';
    });
    // last price marker on the axis
    const ly = yOf(Math.floor(Number(last.close) / step) * step);
    if (ly >= HEAD && ly <= h - ROW) {
      ctx.fillStyle = '#1f6feb';
      ctx.fillRect(w - AXIS + 2, ly + 1, AXIS - 4, ROW - 2);
      ctx.fillStyle = '#fff';
      ctx.fillText(Number(last.close).toFixed(2), w - AXIS + 6, ly + ROW / 2);
    }
  }
}

function exportRow(r) {
  return { price: r.price, buy: format(r.buy), sell: format(r.sell), buyImb: r.buyImb, sellImb: r.sellImb, poc: !!r.poc };
}
