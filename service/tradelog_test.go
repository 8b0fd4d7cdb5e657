package service

import (
	"testing"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

func TestFormatTradeLine(t *testing.T) {
	cases := []struct {
		name  string
		price string
		qty   string
		m     bool
		want  string
	}{
		{"OriginalExample", "91436.75", "0.00024", false, "Trade #1: BUY 0.000240 @ 91,436.75"},
		{"TakerSell", "61837.63", "0.02", true, "Trade #1: SELL 0.020000 @ 61,837.63"},
		{"MoreDigitsKept", "0.00001234", "123456789.12345678", false, "Trade #1: BUY 123456789.12345678 @ 0.00001234"},
		{"WholePrice", "1000000", "1", true, "Trade #1: SELL 1.000000 @ 1,000,000.00"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := market.Trade{Price: fixed.MustParse(c.price), Qty: fixed.MustParse(c.qty), BuyerMaker: c.m}
			if got := FormatTradeLine(1, &tr); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}
