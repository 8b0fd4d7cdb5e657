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
func (v Volume) Float64() float64 {
	f, _ := new(big.Float).SetInt(fixed.Int128(v).Big()).Float64()
	return f / 1e8
}

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
func (n Notional) Float64() float64 {
	f, _ := new(big.Float).SetInt(fixed.Int128(n).Big()).Float64()
	return f / 1e16
}

// vwap is sum(p*q)/sum(q) rounded half to even, 0 and false for no volume.
func vwap(n fixed.Int128, v fixed.Int128) (fixed.Dec, bool) {
	if v.Sign() == 0 {
		return 0, false
	}
	return fixed.VWAP(n, v)
}

// avgSize is v/count rounded half to even at 1e-8.
func avgSize(v fixed.Int128, count int64) fixed.Dec {
	if count <= 0 {
		return 0
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
