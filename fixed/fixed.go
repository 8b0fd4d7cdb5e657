// Package fixed provides exact decimal numbers for prices and quantities.
//
// Binance writes every price and quantity as a decimal string with at most
// eight fractional digits, and its own limits are int64 values at that scale
// (the largest LOT_SIZE maxQty it publishes is 92233720368, which is
// 2^63 / 1e8). A Dec is therefore an int64 count of 1e-8 units: every value
// Binance can send fits exactly, for BTC prices and for SHIB-sized
// quantities alike. Sums and products, which can exceed int64, accumulate in
// an Int128.
//
// The package is pure: no I/O, no goroutines, and parsing and formatting do
// not allocate.
package fixed

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Scale is the number of fractional digits a Dec holds.
const Scale = 8

// One is the Dec value 1.
const One Dec = 100_000_000

// Dec is an exact decimal: an integer number of 1e-8 units.
type Dec int64

// Parse errors. They are sentinel values so that the hot path can return
// them without allocating; callers wrap them with the field they were parsing.
var (
	ErrEmpty     = errors.New("fixed: empty number")
	ErrSyntax    = errors.New("fixed: invalid digit")
	ErrPrecision = errors.New("fixed: more than 8 fractional digits")
	ErrRange     = errors.New("fixed: value out of range")
)

// Parse reads a decimal such as "61737.63000000", "0.0", "-1.5" or "42".
// Exponents, signs other than a leading '-', and empty parts ("1.", ".5")
// are rejected. Fractional digits beyond the eighth must be zero.
//
// Binance's spot prices and quantities carry exactly eight fractional
// digits, so those are read as one 8-byte word (see digits8) instead of
// one byte at a time; shorter and longer fractions take a plain loop. Both
// paths give the same value and the same error for every input
// (FuzzParse checks this against the digit-by-digit form and math/big).
func Parse(b []byte) (Dec, error) {
	if len(b) == 0 {
		return 0, ErrEmpty
	}
	neg := false
	i := 0
	if b[0] == '-' {
		neg = true
		i = 1
		if len(b) == 1 {
			return 0, ErrSyntax
		}
	}
	var v uint64
	start := i
	for ; i < len(b); i++ {
		c := b[i] - '0' // '.' wraps above 9, so one comparison tests both
		if c > 9 {
			if b[i] == '.' {
				break
			}
			return 0, ErrSyntax
		}
		if v > (math.MaxInt64/uint64(One))/10+1 {
			return 0, ErrRange
		}
		v = v*10 + uint64(c)
	}
	if i == start {
		return 0, ErrSyntax
	}
	if v > math.MaxInt64/uint64(One) {
		return 0, ErrRange
	}
	v *= uint64(One)
	if i < len(b) { // fraction
		i++
		if i == len(b) {
			return 0, ErrSyntax
		}
		mul := uint64(One) / 10 // the unit of the next fractional digit
		if len(b)-i >= Scale {
			if x := binary.LittleEndian.Uint64(b[i:]); isDigits8(x) {
				v += digits8(x) // v <= 92233720368e8 and this < 1e8: no wrap
				i += Scale
				mul = 0
			}
		}
		// Fractions shorter than eight digits (or with a bad byte among
		// the first eight), and whatever follows eight digits, which must
		// be zeros.
		for ; i < len(b); i++ {
			c := b[i] - '0'
			if c > 9 {
				return 0, ErrSyntax
			}
			if mul == 0 {
				if c != 0 {
					return 0, ErrPrecision
				}
				continue
			}
			v += uint64(c) * mul
			mul /= 10
		}
	}
	if v > math.MaxInt64 {
		return 0, ErrRange
	}
	if neg {
		return -Dec(v), nil
	}
	return Dec(v), nil
}

// isDigits8 reports whether all eight bytes of x are ASCII digits: each
// byte's high nibble is 3, and stays 3 after adding 6 (which moves ':'
// through '?' to 0x40 and above). The first test bounds every byte by 0x3F,
// so the addition never carries into the next byte.
func isDigits8(x uint64) bool {
	const hi, three, six = 0xF0F0F0F0F0F0F0F0, 0x3030303030303030, 0x0606060606060606
	return x&hi == three && (x+six)&hi == three
}

// digits8 is the value of eight ASCII digits loaded little-endian (the first
// digit in the lowest byte, so it is the most significant). Neighbouring
// digits are merged pairwise in three steps: bytes into 2-digit values in
// 16-bit lanes, those into 4-digit values in 32-bit lanes, then into one
// 8-digit value. No lane overflows into the next (99 < 2^8, 9999 < 2^16).
func digits8(x uint64) uint64 {
	x -= 0x3030303030303030
	x = (x*10 + x>>8) & 0x00FF00FF00FF00FF
	x = (x*100 + x>>16) & 0x0000FFFF0000FFFF
	return (x*10000 + x>>32) & 0xFFFFFFFF
}

// ParseString is Parse for a string.
func ParseString(s string) (Dec, error) { return Parse([]byte(s)) }

// MustParse parses s or panics; for constants in tests and examples.
func MustParse(s string) Dec {
	d, err := ParseString(s)
	if err != nil {
		panic(fmt.Sprintf("fixed.MustParse(%q): %v", s, err))
	}
	return d
}

// AppendText appends the shortest exact decimal form of d: no trailing
// fractional zeros and no trailing point ("61737.63", "0.00024", "0").
func (d Dec) AppendText(dst []byte) []byte {
	u := uint64(d)
	if d < 0 {
		dst = append(dst, '-')
		u = uint64(-d) // -MinInt64 wraps to itself, which is the right magnitude as uint64
	}
	ip, fp := u/uint64(One), u%uint64(One)
	dst = strconv.AppendUint(dst, ip, 10)
	if fp == 0 {
		return dst
	}
	var frac [Scale]byte
	for k := Scale - 1; k >= 0; k-- {
		frac[k] = byte('0' + fp%10)
		fp /= 10
	}
	n := Scale
	for n > 0 && frac[n-1] == '0' {
		n--
	}
	dst = append(dst, '.')
	return append(dst, frac[:n]...)
}

// String returns the shortest exact decimal form of d.
func (d Dec) String() string { return string(d.AppendText(nil)) }

// MarshalText implements encoding.TextMarshaler, so JSON carries d as an
// exact string.
func (d Dec) MarshalText() ([]byte, error) { return d.AppendText(nil), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Dec) UnmarshalText(b []byte) error {
	v, err := Parse(b)
	if err != nil {
		return fmt.Errorf("parse %q: %w", b, err)
	}
	*d = v
	return nil
}

// Float64 returns d as a float64, for display and ratios only: never feed
// the result back into a book or a sum.
func (d Dec) Float64() float64 { return float64(d) / float64(One) }
