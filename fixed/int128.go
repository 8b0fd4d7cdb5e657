package fixed

import (
	"math/big"
	"math/bits"
	"strconv"
)

// Int128 is a signed 128-bit integer in two's complement. It accumulates
// sums of Dec values (scale 1e-8) and of products Dec*Dec (scale 1e-16)
// without overflow: a year of BTCUSDT notional at 1e-16 is far below 2^127.
// The zero value is 0. Arithmetic does not allocate.
type Int128 struct {
	Hi int64
	Lo uint64
}

// I128 widens an int64.
func I128(v int64) Int128 {
	return Int128{Hi: v >> 63, Lo: uint64(v)}
}

// Add returns a+b.
func (a Int128) Add(b Int128) Int128 {
	lo, c := bits.Add64(a.Lo, b.Lo, 0)
	return Int128{Hi: a.Hi + b.Hi + int64(c), Lo: lo}
}

// Sub returns a-b.
func (a Int128) Sub(b Int128) Int128 {
	lo, br := bits.Sub64(a.Lo, b.Lo, 0)
	return Int128{Hi: a.Hi - b.Hi - int64(br), Lo: lo}
}

// AddDec returns a+d.
func (a Int128) AddDec(d Dec) Int128 { return a.Add(I128(int64(d))) }

// Neg returns -a.
func (a Int128) Neg() Int128 { return Int128{}.Sub(a) }

// Sign returns -1, 0 or +1.
func (a Int128) Sign() int {
	switch {
	case a.Hi < 0:
		return -1
	case a.Hi == 0 && a.Lo == 0:
		return 0
	default:
		return 1
	}
}

// Cmp compares a and b and returns -1, 0 or +1.
func (a Int128) Cmp(b Int128) int {
	switch {
	case a.Hi < b.Hi:
		return -1
	case a.Hi > b.Hi:
		return 1
	case a.Lo < b.Lo:
		return -1
	case a.Lo > b.Lo:
		return 1
	}
	return 0
}

// Mul returns the exact product x*y of two int64 values as an Int128.
func Mul(x, y int64) Int128 {
	neg := (x < 0) != (y < 0)
	ux, uy := abs64(x), abs64(y)
	hi, lo := bits.Mul64(ux, uy)
	r := Int128{Hi: int64(hi), Lo: lo}
	if neg {
		return r.Neg()
	}
	return r
}

// MulDec returns the exact product p*q at scale 1e-16 (a notional).
func MulDec(p, q Dec) Int128 { return Mul(int64(p), int64(q)) }

func abs64(x int64) uint64 {
	if x < 0 {
		return uint64(-x)
	}
	return uint64(x)
}

// Big returns a as a *big.Int (allocates; for reporting, not hot paths).
func (a Int128) Big() *big.Int {
	b := new(big.Int).SetInt64(a.Hi)
	b.Lsh(b, 64)
	return b.Add(b, new(big.Int).SetUint64(a.Lo))
}

// Dec returns a as a Dec (scale 1e-8) and whether it fits in int64.
func (a Int128) Dec() (Dec, bool) {
	if (a.Hi == 0 && a.Lo <= 1<<63-1) || (a.Hi == -1 && a.Lo >= 1<<63) {
		return Dec(int64(a.Lo)), true
	}
	return 0, false
}

// String formats a as a decimal integer.
func (a Int128) String() string { return a.Big().String() }

// FormatScaled formats a as an exact decimal with the given number of
// fractional digits in the representation (8 for sums of Dec, 16 for
// notionals), trimming trailing fractional zeros.
func (a Int128) FormatScaled(scale int) string {
	return FormatBig(a.Big(), scale)
}

// AppendScaled appends a formatted as FormatScaled does. It does not
// allocate when the integer part fits in 64 bits and scale is at most 19
// (a notional at 1e-16 below 1.8e19), the push path's case; otherwise it
// takes FormatScaled's math/big path.
func (a Int128) AppendScaled(dst []byte, scale int) []byte {
	if scale < 0 || scale >= len(pow10u) {
		return append(dst, a.FormatScaled(scale)...)
	}
	neg := a.Hi < 0
	hi, lo := uint64(a.Hi), a.Lo
	if neg {
		var b uint64
		lo, b = bits.Sub64(0, lo, 0)
		hi, _ = bits.Sub64(0, hi, b)
	}
	pow := pow10u[scale]
	if hi >= pow { // the quotient needs more than 64 bits (or a is the minimum)
		return append(dst, a.FormatScaled(scale)...)
	}
	ip, fp := bits.Div64(hi, lo, pow)
	if neg && (ip != 0 || fp != 0) {
		dst = append(dst, '-')
	}
	dst = strconv.AppendUint(dst, ip, 10)
	if fp == 0 {
		return dst
	}
	var frac [19]byte
	for k := scale - 1; k >= 0; k-- {
		frac[k] = byte('0' + fp%10)
		fp /= 10
	}
	n := scale
	for n > 0 && frac[n-1] == '0' {
		n--
	}
	dst = append(dst, '.')
	return append(dst, frac[:n]...)
}

// pow10u[k] is 10^k, for every k whose power fits in a uint64.
var pow10u = func() (p [20]uint64) {
	p[0] = 1
	for k := 1; k < len(p); k++ {
		p[k] = p[k-1] * 10
	}
	return p
}()

// FormatBig formats the integer v, read as v / 10^scale, as the shortest
// exact decimal.
func FormatBig(v *big.Int, scale int) string {
	s := new(big.Int).Abs(v).String()
	neg := v.Sign() < 0
	for len(s) <= scale {
		s = "0" + s
	}
	ip, fp := s[:len(s)-scale], s[len(s)-scale:]
	for len(fp) > 0 && fp[len(fp)-1] == '0' {
		fp = fp[:len(fp)-1]
	}
	out := ip
	if fp != "" {
		out += "." + fp
	}
	if neg && out != "0" {
		out = "-" + out
	}
	return out
}

// DivRound returns num/den rounded half to even, with num and den integers.
// It is used for VWAP: (sum p*q at 1e-16) / (sum q at 1e-8) gives a price at
// 1e-8. It returns false when den is zero.
func DivRound(num, den *big.Int) (*big.Int, bool) {
	if den.Sign() == 0 {
		return nil, false
	}
	q, r := new(big.Int).QuoRem(num, den, new(big.Int))
	if r.Sign() == 0 {
		return q, true
	}
	// Compare 2|r| with |den|.
	twoR := new(big.Int).Abs(r)
	twoR.Lsh(twoR, 1)
	c := twoR.Cmp(new(big.Int).Abs(den))
	away := c > 0 || (c == 0 && q.Bit(0) == 1)
	if away {
		if (num.Sign() < 0) != (den.Sign() < 0) {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	return q, true
}

// VWAP returns notional/volume as a Dec rounded half to even at 8 decimals,
// where notional is a sum of MulDec products (scale 1e-16) and volume a sum
// of Dec (scale 1e-8). ok is false when volume is zero.
func VWAP(notional, volume Int128) (Dec, bool) {
	q, ok := DivRound(notional.Big(), volume.Big())
	if !ok || !q.IsInt64() {
		return 0, false
	}
	return Dec(q.Int64()), true
}
