package client

import (
	"net/url"
	"strconv"
	"strings"
)

// The query types carry the parameters of each route. Zero fields take the
// server's defaults; Values writes only the fields that are set.

// MetricsQuery selects the rolling windows of a metrics request.
type MetricsQuery struct {
	// Window is one configured window ("1m", "5m", "15m", "1h"); empty
	// means all of them.
	Window string
}

// Values encodes q as URL query parameters.
func (q MetricsQuery) Values() url.Values {
	v := url.Values{}
	setString(v, "window", q.Window)
	return v
}

// BarsQuery selects bars.
type BarsQuery struct {
	Interval  string // a configured bar interval, default the shortest ("1m")
	Limit     int    // closed bars, most recent; default 10
	Footprint bool   // include each bar's footprint
}

// Values encodes q as URL query parameters.
func (q BarsQuery) Values() url.Values {
	v := url.Values{}
	setString(v, "interval", q.Interval)
	setInt(v, "limit", int64(q.Limit))
	if q.Footprint {
		v.Set("footprint", "true")
	}
	return v
}

// ProfileQuery selects a volume profile: From and To (Unix ms, To
// exclusive) bound the bar starts; both zero means the session profile.
type ProfileQuery struct {
	From, To int64
}

// Values encodes q as URL query parameters.
func (q ProfileQuery) Values() url.Values {
	v := url.Values{}
	setInt(v, "from", q.From)
	setInt(v, "to", q.To)
	return v
}

// LargeTradesQuery selects the most recent large trades.
type LargeTradesQuery struct {
	Limit int // default 50
}

// Values encodes q as URL query parameters.
func (q LargeTradesQuery) Values() url.Values {
	v := url.Values{}
	setInt(v, "limit", int64(q.Limit))
	return v
}

// TradesQuery filters recent trades.
type TradesQuery struct {
	From, To    int64   // Unix ms, From <= time < To; zero: unbounded
	MinQty      Decimal // keep qty >= MinQty
	MinNotional Decimal // keep price*qty >= MinNotional
	Side        string  // "buy" (taker buys), "sell", or empty for both
	Limit       int     // most recent matches kept; default 100
}

// Values encodes q as URL query parameters.
func (q TradesQuery) Values() url.Values {
	v := url.Values{}
	setInt(v, "from", q.From)
	setInt(v, "to", q.To)
	setString(v, "min_qty", string(q.MinQty))
	setString(v, "min_notional", string(q.MinNotional))
	setString(v, "side", q.Side)
	setInt(v, "limit", int64(q.Limit))
	return v
}

// BookQuery selects the book depth and imbalance bands.
type BookQuery struct {
	Depth int   // levels per side, default 20
	Bands []int // basis points of the mid, default 10, 25, 50, 100
}

// Values encodes q as URL query parameters.
func (q BookQuery) Values() url.Values {
	v := url.Values{}
	setInt(v, "depth", int64(q.Depth))
	if len(q.Bands) > 0 {
		s := make([]string, len(q.Bands))
		for i, b := range q.Bands {
			s[i] = strconv.Itoa(b)
		}
		v.Set("bands", strings.Join(s, ","))
	}
	return v
}

// SignalsQuery selects the closed bars examined for signals.
type SignalsQuery struct {
	Interval string // default the shortest bar interval
	Limit    int    // most recent closed bars examined; default all kept
}

// Values encodes q as URL query parameters.
func (q SignalsQuery) Values() url.Values {
	v := url.Values{}
	setString(v, "interval", q.Interval)
	setInt(v, "limit", int64(q.Limit))
	return v
}

// BookHistoryQuery selects frames of the book history. At, when set,
// asks for the one frame in force at that time (the newest at or before
// it) and excludes From and To.
type BookHistoryQuery struct {
	From, To int64 // Unix ms, From <= time <= To; zero: unbounded
	At       int64 // Unix ms; zero: use From and To
	Depth    int   // levels per side, default all the history keeps (20)
}

// Values encodes q as URL query parameters.
func (q BookHistoryQuery) Values() url.Values {
	v := url.Values{}
	setInt(v, "from", q.From)
	setInt(v, "to", q.To)
	setInt(v, "at", q.At)
	setInt(v, "depth", int64(q.Depth))
	return v
}

// WallsQuery selects the ended walls listed with the current ones.
type WallsQuery struct {
	Since int64 // Unix ms: ended walls with end >= Since; zero: all kept
}

// Values encodes q as URL query parameters.
func (q WallsQuery) Values() url.Values {
	v := url.Values{}
	setInt(v, "since", q.Since)
	return v
}

// LiquidityQuery selects the liquidity windows.
type LiquidityQuery struct {
	Window string // one configured window ("1m"); empty: all of them
}

// Values encodes q as URL query parameters.
func (q LiquidityQuery) Values() url.Values {
	v := url.Values{}
	setString(v, "window", q.Window)
	return v
}

func setString(v url.Values, k, s string) {
	if s != "" {
		v.Set(k, s)
	}
}

func setInt(v url.Values, k string, n int64) {
	if n != 0 {
		v.Set(k, strconv.FormatInt(n, 10))
	}
}
