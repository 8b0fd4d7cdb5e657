package service

import (
	"strconv"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// FormatTradeLine formats a trade as the original system logged it:
// "Trade #1: BUY 0.000240 @ 91,436.75": the taker side, the quantity with
// at least six decimals, and the price with thousands separators and at
// least two decimals. Digits beyond those are kept, never rounded away.
func FormatTradeLine(n int64, t *market.Trade) string {
	b := make([]byte, 0, 48)
	b = append(b, "Trade #"...)
	b = strconv.AppendInt(b, n, 10)
	b = append(b, ": "...)
	b = append(b, t.TakerSide().String()...)
	b = append(b, ' ')
	b = appendMinDecimals(b, t.Qty, 6, false)
	b = append(b, " @ "...)
	b = appendMinDecimals(b, t.Price, 2, true)
	return string(b)
}

// appendMinDecimals writes d with at least min fractional digits, and
// thousands separators in the integer part if group.
func appendMinDecimals(b []byte, d fixed.Dec, minFrac int, group bool) []byte {
	s := d.String()
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		b = append(b, '-')
		s = s[1:]
	}
	ip, fp := s, ""
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			ip, fp = s[:i], s[i+1:]
			break
		}
	}
	for i := 0; i < len(ip); i++ {
		if group && i > 0 && (len(ip)-i)%3 == 0 {
			b = append(b, ',')
		}
		b = append(b, ip[i])
	}
	for len(fp) < minFrac {
		fp += "0"
	}
	if fp != "" {
		b = append(b, '.')
		b = append(b, fp...)
	}
	return b
}
