package flow

import (
	"math/big"
	"math/bits"

	"github.com/orderflow/orderflow/fixed"
)

// Volume is an exact sum of quantities at scale 1e-8 (a sum of fixed.Dec),
// signed so that it can hold a delta. It marshals to JSON as an exact
// decimal string.
type Volume fixed.Int128

// Int128 returns v as the raw accumulator.
func (v Volume) Int128() fixed.Int128 { return fixed.Int128(v) }

// Dec returns v as a fixed.Dec and whether it fits in one.
func (v Volume) Dec() (fixed.Dec, bool) { return fixed.Int128(v).Dec() }

// Sign returns -1, 0 or +1.
func (v Volume) Sign() int { return fixed.Int128(v).Sign() }

// Cmp compares v and w and returns -1, 0 or +1.
func (v Volume) Cmp(w Volume) int { return fixed.Int128(v).Cmp(fixed.Int128(w)) }

// String formats v as the shortest exact decimal ("12.5", "-0.001").
func (v Volume) String() string { return fixed.Int128(v).FormatScaled(fixed.Scale) }

// MarshalText implements encoding.TextMarshaler with the exact decimal.
func (v Volume) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// Float64 returns v as a float64, for display and ratios only.
func (v Volume) Float64() float64 { return toFloat(fixed.Int128(v)) / 1e8 }

// Notional is an exact sum of price*qty products at scale 1e-16 (a sum of
// fixed.MulDec), in quote-asset units. It marshals to JSON as an exact
// decimal string.
type Notional fixed.Int128

// Int128 returns n as the raw accumulator.
func (n Notional) Int128() fixed.Int128 { return fixed.Int128(n) }

// Sign returns -1, 0 or +1.
func (n Notional) Sign() int { return fixed.Int128(n).Sign() }

// Cmp compares n and m and returns -1, 0 or +1.
func (n Notional) Cmp(m Notional) int { return fixed.Int128(n).Cmp(fixed.Int128(m)) }

// String formats n as the shortest exact decimal.
func (n Notional) String() string { return fixed.Int128(n).FormatScaled(2 * fixed.Scale) }

// MarshalText implements encoding.TextMarshaler with the exact decimal.
func (n Notional) MarshalText() ([]byte, error) { return []byte(n.String()), nil }

// Float64 returns n as a float64, for display and ratios only.
func (n Notional) Float64() float64 { return toFloat(fixed.Int128(n)) / 1e16 }

// toFloat converts without allocating; it may differ from the correctly
// rounded value in the last bit, which display does not care about.
func toFloat(a fixed.Int128) float64 {
	if a.Hi < 0 { // convert the magnitude so that small negatives keep their low bits
		return -toFloat(a.Neg())
	}
	return float64(a.Hi)*(1<<64) + float64(a.Lo)
}

// vwap is sum(p*q)/sum(q) rounded half to even, 0 and false for no volume.
func vwap(n fixed.Int128, v fixed.Int128) (fixed.Dec, bool) {
	if v.Sign() == 0 {
		return 0, false
	}
	// Fast path without big.Int (bar closes must not allocate): a
	// non-negative 128-bit notional over a volume that fits in 63 bits,
	// with a quotient that fits in 64 bits.
	if n.Hi >= 0 && v.Hi == 0 && v.Lo < 1<<63 && uint64(n.Hi) < v.Lo {
		q, r := bits.Div64(uint64(n.Hi), n.Lo, v.Lo)
		if twice := r << 1; twice > v.Lo || (twice == v.Lo && q&1 == 1) {
			q++
		}
		if q < 1<<63 {
			return fixed.Dec(q), true
		}
	}
	return fixed.VWAP(n, v)
}

// avgSize is v/count rounded half to even at 1e-8.
func avgSize(v fixed.Int128, count int64) fixed.Dec {
	if count <= 0 {
		return 0
	}
	if v.Hi == 0 && v.Lo < 1<<63 { // fast path, no big.Int
		q, r := v.Lo/uint64(count), v.Lo%uint64(count)
		if twice := r << 1; twice > uint64(count) || (twice == uint64(count) && q&1 == 1) {
			q++
		}
		return fixed.Dec(q)
	}
	q, ok := fixed.DivRound(v.Big(), big.NewInt(count))
	if !ok || !q.IsInt64() {
		return 0
	}
	return fixed.Dec(q.Int64())
}

// mulSmall returns a*k modulo 2^128 without allocating. Callers use it with
// a small non-negative k (a percentage) on sums far below 2^120, where the
// product is exact.
func mulSmall(a fixed.Int128, k int64) fixed.Int128 {
	hi, lo := bits.Mul64(a.Lo, uint64(k))
	return fixed.Int128{Hi: a.Hi*k + int64(hi), Lo: lo}
}

// floorDiv returns floor(a/b) for b > 0, also for negative a.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) {
		q--
	}
	return q
}
