// Exact decimals for the sums the dashboard makes itself (regrouped
// footprint rows, their imbalance tests, the CVD of the open bar). The API
// writes every number as an exact decimal string; adding them as JavaScript
// numbers would round, so they are held as BigInt counts of 1e-8, the
// scale of the service's own fixed.Dec. Floats appear only at the last step,
// as canvas coordinates and chart values.

export const SCALE = 8;
const ONE = 10n ** BigInt(SCALE);
const RE = /^(-)?(\d+)(?:\.(\d+))?$/;

// parse reads a decimal string ("61737.63", "-0.5", "0.0") into a BigInt of
// 1e-8 units. It returns null for anything else, or for digits beyond the
// eighth that are not zero, so a caller counts the bad value instead of
// showing a wrong one.
export function parse(s) {
  if (typeof s !== 'string') return null;
  const m = RE.exec(s);
  if (!m) return null;
  let frac = m[3] || '';
  if (frac.length > SCALE) {
    if (/[^0]/.test(frac.slice(SCALE))) return null;
    frac = frac.slice(0, SCALE);
  }
  const v = BigInt(m[2]) * ONE + BigInt(frac.padEnd(SCALE, '0'));
  return m[1] ? -v : v;
}

// format writes v (1e-8 units) in its shortest exact form, as the API does.
export function format(v) {
  const neg = v < 0n;
  if (neg) v = -v;
  const int = v / ONE;
  let frac = (v % ONE).toString().padStart(SCALE, '0').replace(/0+$/, '');
  return (neg ? '-' : '') + int.toString() + (frac ? '.' + frac : '');
}

// toNumber converts v for drawing only.
export function toNumber(v) {
  return Number(v) / 1e8;
}

// num converts an API decimal string for drawing only (NaN if invalid).
export function num(s) {
  return typeof s === 'string' ? Number(s) : NaN;
}

// floorTo rounds v down to a multiple of step (both 1e-8 units, step > 0),
// toward minus infinity as the service's PriceGroup does.
export function floorTo(v, step) {
  let q = v / step;
  if (v < 0n && q * step !== v) q -= 1n;
  return q * step;
}

// group formats a number for people: thousands separators, at most dp
// decimals, from the exact string so no digit is invented.
export function pretty(s, dp) {
  if (typeof s !== 'string' || !RE.test(s)) return '–';
  const m = RE.exec(s);
  let frac = m[3] || '';
  if (dp !== undefined && frac.length > dp) {
    const v = parse(s);
    const unit = 10n ** BigInt(SCALE - dp);
    // Round half away from zero for display; the exact value stays in the
    // model and in data attributes.
    let q = (v < 0n ? -v : v) + unit / 2n;
    q -= q % unit;
    return pretty(format(v < 0n ? -q : q));
  }
  const int = m[2].replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return (m[1] ? '-' : '') + int + (frac ? '.' + frac : '');
}
