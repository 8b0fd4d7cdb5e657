package binance

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/orderflow/orderflow/market"
)

// Channels: the part of a stream name after "<symbol>@" (spot "Web Socket
// Streams" and USD-M "Websocket Market Streams": "Aggregate Trade Streams",
// "Trade Streams", "Diff. Depth Stream", "Individual Symbol Book Ticker
// Streams").
const (
	ChannelAggTrade   = "aggTrade"
	ChannelTrade      = "trade"
	ChannelDepth100ms = "depth@100ms"
	ChannelDepth      = "depth" // spot 1000 ms, USD-M 250 ms
	ChannelBookTicker = "bookTicker"
)

// StreamName returns "<lower-case symbol>@<channel>", e.g.
// StreamName("BTCUSDT", ChannelDepth100ms) = "btcusdt@depth@100ms". Binance
// stream names take lower-case symbols ("All symbols for streams are
// lowercase", General WSS information).
func StreamName(symbol, channel string) string {
	return strings.ToLower(symbol) + "@" + channel
}

// ParseStreamName splits "btcusdt@depth@100ms" into ("BTCUSDT",
// "depth@100ms"). It reports ok=false for a name without a symbol part,
// such as the all-market "!bookTicker" or "!serverShutdown".
func ParseStreamName(name string) (symbol, channel string, ok bool) {
	i := strings.IndexByte(name, '@')
	if i <= 0 || i == len(name)-1 {
		return "", "", false
	}
	for _, c := range []byte(name[:i]) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return "", "", false
		}
	}
	return strings.ToUpper(name[:i]), name[i+1:], true
}

// streamChannel returns the channel of a full stream name; for an
// all-market name ("!bookTicker", "!forceOrder@arr") the name without "!".
func streamChannel(name string) string {
	if _, ch, ok := ParseStreamName(name); ok {
		return ch
	}
	return strings.TrimPrefix(name, "!")
}

// Base URLs (spot "General WSS information" and "General API Information";
// USD-M "Websocket Market Streams" and "General Info").
const (
	SpotWS   = "wss://stream.binance.com:9443"
	SpotREST = "https://api.binance.com"
	USDMWS   = "wss://fstream.binance.com"
	USDMREST = "https://fapi.binance.com"
)

// USD-M stream routes. Since 2026 fstream.binance.com serves market data
// under two paths: high-frequency book data (depth, bookTicker) under
// /public, the rest (aggTrade, trade, markPrice, forceOrder, klines) under
// /market; the legacy root paths were retired on 2026-04-23. A futures
// symbol therefore needs one connection per path.
const (
	USDMPathPublic = "/public"
	USDMPathMarket = "/market"
)

// StreamPath returns the path prefix a channel's streams live under: "" on
// spot, "/public" or "/market" on USD-M.
func StreamPath(kind market.Kind, channel string) string {
	if kind != market.USDM {
		return ""
	}
	base := strings.TrimPrefix(channel, "!")
	if i := strings.IndexByte(base, '@'); i >= 0 {
		base = base[:i]
	}
	if strings.HasPrefix(base, "depth") || base == ChannelBookTicker {
		return USDMPathPublic
	}
	return USDMPathMarket
}

// REST paths (spot REST API "Market Data endpoints"; USD-M REST "Market
// Data Endpoints").
const (
	SpotDepthPath        = "/api/v3/depth"
	SpotAggTradesPath    = "/api/v3/aggTrades"
	SpotExchangeInfoPath = "/api/v3/exchangeInfo"
	USDMDepthPath        = "/fapi/v1/depth"
	USDMAggTradesPath    = "/fapi/v1/aggTrades"
	USDMExchangeInfoPath = "/fapi/v1/exchangeInfo"
)

// RESTPathSet names a market's REST paths.
type RESTPathSet struct {
	Depth        string
	AggTrades    string
	ExchangeInfo string
}

// RESTPaths returns the REST paths of a market.
func RESTPaths(kind market.Kind) RESTPathSet {
	if kind == market.USDM {
		return RESTPathSet{USDMDepthPath, USDMAggTradesPath, USDMExchangeInfoPath}
	}
	return RESTPathSet{SpotDepthPath, SpotAggTradesPath, SpotExchangeInfoPath}
}

// Endpoints are the base URLs of one market. The simulator and tests point
// them at 127.0.0.1.
type Endpoints struct {
	Kind market.Kind
	WS   string // WebSocket base without path, e.g. "wss://stream.binance.com:9443"
	REST string // REST base, e.g. "https://api.binance.com"
}

// DefaultEndpoints returns Binance's production endpoints for a market.
func DefaultEndpoints(kind market.Kind) Endpoints {
	if kind == market.USDM {
		return Endpoints{Kind: kind, WS: USDMWS, REST: USDMREST}
	}
	return Endpoints{Kind: kind, WS: SpotWS, REST: SpotREST}
}

// RawStreamURL returns the URL of a single raw stream, <WS><path>/ws/<stream>;
// its frames are bare payloads.
func (e Endpoints) RawStreamURL(stream string) string {
	return e.WS + StreamPath(e.Kind, streamChannel(stream)) + "/ws/" + stream
}

// ErrStreams reports a stream list CombinedStreamURL cannot serve.
var ErrStreams = errors.New("binance: bad stream list")

// CombinedStreamURL returns <WS><path>/stream?streams=a/b/c, whose frames
// are {"stream","data"} envelopes. All streams must live under the same
// path (on USD-M, depth and bookTicker cannot share a connection with
// aggTrade), and there can be at most MaxStreamsPerConn of them.
func (e Endpoints) CombinedStreamURL(streams ...string) (string, error) {
	if len(streams) == 0 || len(streams) > MaxStreamsPerConn {
		return "", fmt.Errorf("%w: %d streams (want 1 to %d)", ErrStreams, len(streams), MaxStreamsPerConn)
	}
	path := StreamPath(e.Kind, streamChannel(streams[0]))
	for _, s := range streams[1:] {
		if p := StreamPath(e.Kind, streamChannel(s)); p != path {
			return "", fmt.Errorf("%w: %s lives under %q, %s under %q", ErrStreams, streams[0], path, s, p)
		}
	}
	return e.WS + path + "/stream?streams=" + strings.Join(streams, "/"), nil
}

// DepthURL returns the REST depth snapshot URL for a symbol; the limit is
// made valid with ValidDepthLimit.
func (e Endpoints) DepthURL(symbol string, limit int) string {
	return e.REST + RESTPaths(e.Kind).Depth + "?symbol=" + strings.ToUpper(symbol) +
		"&limit=" + strconv.Itoa(ValidDepthLimit(e.Kind, limit))
}

// AggTradesURL returns the REST aggTrades URL for a symbol starting at
// aggregate id fromID (inclusive); limit is clamped to 1..MaxAggTradesLimit.
func (e Endpoints) AggTradesURL(symbol string, fromID int64, limit int) string {
	limit = min(max(limit, 1), MaxAggTradesLimit)
	return e.REST + RESTPaths(e.Kind).AggTrades + "?symbol=" + strings.ToUpper(symbol) +
		"&fromId=" + strconv.FormatInt(fromID, 10) + "&limit=" + strconv.Itoa(limit)
}

// Connection and request limits. Spot: "WebSocket Limits" and "General WSS
// information"; USD-M: "Websocket Market Streams". Values marked UNVERIFIED
// in BINANCE.md are noted; read live limits from exchangeInfo where
// published.
const (
	// MaxStreamsPerConn is the number of streams one connection may carry
	// (spot; USD-M since 2025-07).
	MaxStreamsPerConn = 1024
	// SpotControlMsgsPerSecond is the spot limit on incoming messages per
	// connection (pings, pongs and JSON requests all count); more
	// disconnects, repeatedly more bans the IP.
	SpotControlMsgsPerSecond = 5
	// USDMControlMsgsPerSecond is the USD-M limit on incoming messages.
	USDMControlMsgsPerSecond = 10
	// SpotConnAttemptsPer5Min is the spot limit on connection attempts per IP
	// in 5 minutes (USD-M: UNVERIFIED, use the same).
	SpotConnAttemptsPer5Min = 300
	// ConnLifetime: both markets cut a connection after 24 hours.
	ConnLifetime = 24 * time.Hour
	// Spot pings every 20 s and disconnects after 1 min without a pong;
	// USD-M pings every 3 min and waits 10 min.
	SpotPingInterval = 20 * time.Second
	SpotPongTimeout  = time.Minute
	USDMPingInterval = 3 * time.Minute
	USDMPongTimeout  = 10 * time.Minute
	// SpotWeightPerMinute is spot's default IP request weight limit;
	// USDMWeightPerMinute is USD-M's (UNVERIFIED). exchangeInfo's rateLimits
	// has the live values.
	SpotWeightPerMinute = 6000
	USDMWeightPerMinute = 2400
	// MaxAggTradesLimit is the largest aggTrades page in both markets.
	MaxAggTradesLimit = 1000
	// SpotMaxDepthLimit and USDMMaxDepthLimit are the deepest snapshots.
	SpotMaxDepthLimit = 5000
	USDMMaxDepthLimit = 1000
)

// ControlMsgsPerSecond returns the incoming-message limit of a market.
func ControlMsgsPerSecond(kind market.Kind) int {
	if kind == market.USDM {
		return USDMControlMsgsPerSecond
	}
	return SpotControlMsgsPerSecond
}

// usdmDepthLimits are the only limits /fapi/v1/depth accepts.
var usdmDepthLimits = [...]int{5, 10, 20, 50, 100, 500, 1000}

// ValidDepthLimit returns the depth limit to request for a wanted number of
// levels: spot accepts 1..5000 (default 100 when limit <= 0); USD-M only
// 5, 10, 20, 50, 100, 500 or 1000 (default 500), so limit is rounded up to
// the next of those and capped at 1000.
func ValidDepthLimit(kind market.Kind, limit int) int {
	if kind == market.USDM {
		if limit <= 0 {
			return 500
		}
		for _, l := range usdmDepthLimits {
			if limit <= l {
				return l
			}
		}
		return USDMMaxDepthLimit
	}
	if limit <= 0 {
		return 100
	}
	return min(limit, SpotMaxDepthLimit)
}

// DepthWeight returns the request weight of a depth snapshot with the given
// limit (after ValidDepthLimit). Spot /api/v3/depth: 5 (<=100), 25 (<=500),
// 50 (<=1000), 250 (<=5000). USD-M /fapi/v1/depth: 2 (5..50), 5 (100), 10
// (500), 20 (1000).
func DepthWeight(kind market.Kind, limit int) int {
	l := ValidDepthLimit(kind, limit)
	if kind == market.USDM {
		switch {
		case l <= 50:
			return 2
		case l <= 100:
			return 5
		case l <= 500:
			return 10
		}
		return 20
	}
	switch {
	case l <= 100:
		return 5
	case l <= 500:
		return 25
	case l <= 1000:
		return 50
	}
	return 250
}

// AggTradesWeight returns the request weight of an aggTrades call: 4 on
// spot (/api/v3/aggTrades), 20 on USD-M (/fapi/v1/aggTrades).
func AggTradesWeight(kind market.Kind) int {
	if kind == market.USDM {
		return 20
	}
	return 4
}

// Request methods ("Live Subscribing/Unsubscribing to streams").
const (
	MethodSubscribe         = "SUBSCRIBE"
	MethodUnsubscribe       = "UNSUBSCRIBE"
	MethodListSubscriptions = "LIST_SUBSCRIPTIONS"
)

// AppendRequest appends a WebSocket request,
// {"method":"SUBSCRIBE","params":["btcusdt@aggTrade"],"id":1}. A nil params
// is omitted (LIST_SUBSCRIPTIONS takes none).
func AppendRequest(dst []byte, method string, params []string, id int64) []byte {
	dst = append(dst, `{"method":`...)
	dst = appendString(dst, method)
	if params != nil {
		dst = append(dst, `,"params":[`...)
		for i, p := range params {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, p)
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"id":`...)
	dst = strconv.AppendInt(dst, id, 10)
	return append(dst, '}')
}
