package fixed

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"regexp"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Dec
		err  error
	}{
		{"SpotPriceEightDecimals", "61602.01000000", 6160201000000, nil},
		{"SpotQtyBelowOne", "0.00024000", 24000, nil},
		{"USDMPriceTwoDecimals", "61602.10", 6160210000000, nil},
		{"USDMQtyThreeDecimals", "0.002", 200000, nil},
		{"Integer", "42", 4200000000, nil},
		{"Zero", "0", 0, nil},
		{"ZeroFraction", "0.00000000", 0, nil},
		{"NegativeZero", "-0", 0, nil},
		{"Negative", "-1.5", -150000000, nil},
		{"SmallestUnit", "0.00000001", 1, nil},
		{"LeadingZeros", "00042.5", 4250000000, nil},
		{"OneDigitFraction", "7.1", 710000000, nil},
		{"SevenDigitFraction", "1.1234567", 112345670, nil},
		{"TrailingZerosBeyondEight", "1.1234567800000", 112345678, nil},
		{"MaxInt64", "92233720368.54775807", math.MaxInt64, nil},
		{"MinPlusOne", "-92233720368.54775807", -math.MaxInt64, nil},
		{"LargestLotSize", "92233720368", 9223372036800000000, nil},
		{"LongIntegerWithLeadingZeros", "000000000000000001", One, nil},

		{"Empty", "", 0, ErrEmpty},
		{"MinusOnly", "-", 0, ErrSyntax},
		{"DotOnly", ".", 0, ErrSyntax},
		{"NoIntegerPart", ".5", 0, ErrSyntax},
		{"NoFractionPart", "1.", 0, ErrSyntax},
		{"Plus", "+1", 0, ErrSyntax},
		{"Exponent", "1e5", 0, ErrSyntax},
		{"SpaceInside", "1 .5", 0, ErrSyntax},
		{"LetterInFraction", "1.2345678x", 0, ErrSyntax},
		{"LetterInFirstEightFraction", "1.234x5678", 0, ErrSyntax},
		{"TwoDots", "1.2.3", 0, ErrSyntax},
		{"DoubleMinus", "--1", 0, ErrSyntax},
		{"NinthDigitNonZero", "1.123456789", 0, ErrPrecision},
		{"NinthDigitAfterZeros", "0.000000001", 0, ErrPrecision},
		{"PrecisionBeforeSyntax", "1.123456789x", 0, ErrPrecision},
		{"SyntaxBeyondEightZeros", "1.00000000x", 0, ErrSyntax},
		{"AboveMaxInt64", "92233720368.54775808", 0, ErrRange},
		{"MinInt64Rejected", "-92233720368.54775808", 0, ErrRange},
		{"IntegerTooLarge", "92233720369", 0, ErrRange},
		{"RangeBeforeSyntax", "999999999999x", 0, ErrRange},
		{"TwentyDigits", "99999999999999999999", 0, ErrRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
				t.Fatalf("Parse(%q) error = %v, want %v", tt.in, err, tt.err)
			}
			if got != tt.want {
				t.Fatalf("Parse(%q) = %d, want %d", tt.in, got, tt.want)
			}
			if err := checkParse(tt.in); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestParseEveryFractionLength crosses integer and fraction lengths, so each
// fast path (8-digit chunk, short fraction, long fraction) meets both
// references at every length.
func TestParseEveryFractionLength(t *testing.T) {
	for il := 1; il <= 12; il++ {
		for fl := 0; fl <= 11; fl++ {
			for _, digit := range []byte{'0', '1', '5', '9'} {
				b := make([]byte, 0, il+fl+2)
				for k := 0; k < il; k++ {
					b = append(b, '1'+byte(k%9))
				}
				if fl > 0 {
					b = append(b, '.')
					for k := 0; k < fl; k++ {
						b = append(b, digit)
					}
				}
				if err := checkParse(string(b)); err != nil {
					t.Fatal(err)
				}
				if err := checkParse("-" + string(b)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"61602.01000000", "0.00024000", "61602.10", "0.002", "42", "-1.5",
		"92233720368.54775807", "92233720368.54775808", "1.123456789",
		"1.00000000x", "1.234x5678", ".5", "1.", "-", "", "1e5",
		"00000000000000000000001.10000000000",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := checkParse(string(b)); err != nil {
			t.Fatal(err)
		}
	})
}

// decimalRE is the grammar Parse accepts, written independently of it.
var decimalRE = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

// checkParse compares Parse with two references: math/big.Rat for whether
// the text is accepted and its exact value, and parseSlow (the plain
// digit-by-digit loop Parse replaced) for which error is returned.
func checkParse(s string) error {
	got, err := Parse([]byte(s))
	if slow, serr := parseSlow([]byte(s)); slow != got || serr != err {
		return errorf("Parse(%q) = %d, %v; the digit-by-digit reference gives %d, %v", s, got, err, slow, serr)
	}
	if !decimalRE.MatchString(s) {
		if err == nil {
			return errorf("Parse(%q) = %d, want an error (not a plain decimal)", s, got)
		}
		return nil
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return errorf("big.Rat rejects %q", s)
	}
	units := new(big.Rat).Mul(r, new(big.Rat).SetInt64(int64(One)))
	intPart := new(big.Int).Quo(new(big.Int).Abs(r.Num()), r.Denom())
	switch {
	case intPart.Cmp(big.NewInt(math.MaxInt64/int64(One))) > 0:
		// The integer part alone is too large: rejected before the fraction is read.
		if err != ErrRange {
			return errorf("Parse(%q) = %d, %v; want ErrRange", s, got, err)
		}
	case !units.IsInt():
		if err != ErrPrecision {
			return errorf("Parse(%q) = %d, %v; want ErrPrecision (%s units)", s, got, err, units.RatString())
		}
	case !units.Num().IsInt64() || units.Num().Int64() == math.MinInt64:
		if err != ErrRange {
			return errorf("Parse(%q) = %d, %v; want ErrRange", s, got, err)
		}
	default:
		if err != nil || int64(got) != units.Num().Int64() {
			return errorf("Parse(%q) = %d, %v; want %s", s, got, err, units.Num())
		}
	}
	return nil
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// parseSlow is the original Parse: one digit at a time, with the range
// check on every integer digit. It fixes which error each bad input gets.
func parseSlow(b []byte) (Dec, error) {
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
	for ; i < len(b) && b[i] != '.'; i++ {
		c := b[i] - '0'
		if c > 9 {
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
	if i < len(b) {
		i++
		if i == len(b) {
			return 0, ErrSyntax
		}
		mul := uint64(One) / 10
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

func BenchmarkParse(b *testing.B) {
	for _, s := range []string{"61602.01000000", "0.00024000", "61602.10", "0.002"} {
		in := []byte(s)
		b.Run(s, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// AppendScaled against FormatBig on math/big: products of real-looking
// and extreme Dec values, sums near the 64-bit quotient limit, both
// signs, every scale from 0 to 21.
func TestAppendScaledMatchesFormatBig(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	vals := []Int128{{}, I128(1), I128(-1), I128(math.MaxInt64), I128(math.MinInt64),
		{Hi: math.MaxInt64, Lo: math.MaxUint64}, {Hi: math.MinInt64}, {Hi: math.MinInt64, Lo: 1},
		Mul(6_173_763_000_000, 2_400_000), Mul(-6_173_763_000_000, 2_400_000), Mul(math.MaxInt64, math.MaxInt64)}
	for range 20000 {
		x := rng.Int64N(1<<62) >> rng.IntN(62)
		y := rng.Int64N(1<<62) >> rng.IntN(62)
		if rng.IntN(2) == 0 {
			x = -x
		}
		vals = append(vals, Mul(x, y), Int128{Hi: rng.Int64() >> rng.IntN(64), Lo: rng.Uint64()})
	}
	for _, v := range vals {
		for scale := 0; scale <= 21; scale++ {
			want := FormatBig(v.Big(), scale)
			if got := string(v.AppendScaled([]byte("x"), scale)); got != "x"+want {
				t.Fatalf("%+v at scale %d: got %q, want x%q", v, scale, got, want)
			}
		}
	}
}

func TestAppendScaledNoAllocation(t *testing.T) {
	buf := make([]byte, 0, 64)
	v := Mul(6_173_763_000_000, 2_400_000) // 61737.63 * 0.024 at 1e-16
	if n := testing.AllocsPerRun(100, func() { buf = v.AppendScaled(buf[:0], 2*Scale) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
	if string(buf) != "1481.70312" {
		t.Fatalf("got %s", buf)
	}
}

func FuzzAppendScaled(f *testing.F) {
	f.Add(int64(0), uint64(0), 16)
	f.Add(int64(-1), uint64(1), 16)
	f.Add(int64(math.MinInt64), uint64(0), 19)
	f.Fuzz(func(t *testing.T, hi int64, lo uint64, scale int) {
		scale = ((scale % 24) + 24) % 24
		v := Int128{Hi: hi, Lo: lo}
		if got, want := string(v.AppendScaled(nil, scale)), FormatBig(v.Big(), scale); got != want {
			t.Fatalf("%+v at scale %d: got %q, want %q", v, scale, got, want)
		}
	})
}
