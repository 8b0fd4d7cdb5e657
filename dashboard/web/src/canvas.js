// Shared helpers for the hand-drawn canvas views.

// fitCanvas sizes canvas's backing store to its CSS box at the device's
// pixel ratio and returns a context scaled to CSS pixels, with the size.
export function fitCanvas(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.floor(canvas.clientWidth));
  const h = Math.max(1, Math.floor(canvas.clientHeight));
  if (canvas.width !== Math.floor(w * dpr) || canvas.height !== Math.floor(h * dpr)) {
    canvas.width = Math.floor(w * dpr);
    canvas.height = Math.floor(h * dpr);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return { ctx, w, h };
}

// compact writes a volume for a small cell: about three significant digits.
export function compact(v) {
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 1000) return (v / 1000).toFixed(a >= 10000 ? 0 : 1) + 'k';
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toFixed(3);
}

// hhmm writes an exchange time (Unix ms) as UTC hours and minutes.
export function hhmm(ms) {
  return new Date(ms).toISOString().slice(11, 16);
}

// hhmmss writes an exchange time as UTC time with milliseconds.
export function hhmmss(ms) {
  return new Date(ms).toISOString().slice(11, 23);
}

// niceStep picks a round price step (1, 2.5, 5 x 10^k) of at least raw.
export function niceStep(raw) {
  if (!(raw > 0)) return 0.01;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw - 1e-12) return m * p;
  return 10 * p;
}
