package sim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// restPaths are the REST routes of each market.
type restPaths struct{ depth, aggTrades, exchangeInfo, ping, time string }

var (
	spotREST = restPaths{"/api/v3/depth", "/api/v3/aggTrades", "/api/v3/exchangeInfo", "/api/v3/ping", "/api/v3/time"}
	usdmREST = restPaths{"/fapi/v1/depth", "/fapi/v1/aggTrades", "/fapi/v1/exchangeInfo", "/fapi/v1/ping", "/fapi/v1/time"}
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	p := spotREST
	if s.kind == market.USDM {
		p = usdmREST
		for _, a := range []struct {
			prefix string
			area   area
		}{{"/public", areaPublic}, {"/market", areaMarket}} {
			mux.Handle("GET "+a.prefix+"/ws", s.handleWS(a.area, false))
			mux.Handle("GET "+a.prefix+"/ws/{stream}", s.handleWS(a.area, false))
			mux.Handle("GET "+a.prefix+"/stream", s.handleWS(a.area, true))
		}
		retired := func(w http.ResponseWriter, r *http.Request) {
			writeJSONError(w, http.StatusNotFound, -1, "USD-M root WebSocket paths are retired: use /public (depth, bookTicker) or /market (aggTrade, trade)")
		}
		mux.HandleFunc("GET /ws", retired)
		mux.HandleFunc("GET /ws/{stream}", retired)
		mux.HandleFunc("GET /stream", retired)
	} else {
		mux.Handle("GET /ws", s.handleWS(areaSpot, false))
		mux.Handle("GET /ws/{stream}", s.handleWS(areaSpot, false))
		mux.Handle("GET /stream", s.handleWS(areaSpot, true))
	}
	mux.Handle("GET "+p.depth, s.rest(p.depth, s.depthWeight, s.handleDepth))
	mux.Handle("GET "+p.aggTrades, s.rest(p.aggTrades, s.fixedWeight(4, 20), s.handleAggTrades))
	mux.Handle("GET "+p.exchangeInfo, s.rest(p.exchangeInfo, s.fixedWeight(20, 1), s.handleExchangeInfo))
	mux.Handle("GET "+p.ping, s.rest(p.ping, s.fixedWeight(1, 1), func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, []byte("{}"))
	}))
	mux.Handle("GET "+p.time, s.rest(p.time, s.fixedWeight(1, 1), func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, fmt.Appendf(nil, `{"serverTime":%d}`, s.clock.now()))
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, http.StatusNotFound, -1, "Not found: "+r.URL.Path)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeJSONError answers with Binance's REST error body {"code":..,"msg":..}.
func writeJSONError(w http.ResponseWriter, status, code int, msg string) {
	m, _ := json.Marshal(msg)
	writeJSON(w, status, fmt.Appendf(nil, `{"code":%d,"msg":%s}`, code, m))
}

// statusWriter remembers the status for Stats.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// weightMeter accounts REST request weight in fixed windows counted from
// Start (Binance counts per calendar minute; windows from Start keep tests
// away from a minute boundary).
type weightMeter struct {
	mu     sync.Mutex
	limit  int
	window time.Duration
	start  time.Time
	idx    int64
	used   int
}

func (m *weightMeter) init(limit int, window time.Duration) {
	m.limit, m.window, m.start = limit, window, time.Now()
}

// take adds w to the current window if it fits. A refused request adds
// nothing. It returns the weight used and, when refused, how long until
// the window ends.
func (m *weightMeter) take(w int) (used int, ok bool, retry time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	el := time.Since(m.start)
	if idx := int64(el / m.window); idx != m.idx {
		m.idx, m.used = idx, 0
	}
	if m.used+w > m.limit {
		return m.used, false, m.window*time.Duration(m.idx+1) - el
	}
	m.used += w
	return m.used, true, 0
}

func (s *Server) fixedWeight(spot, usdm int) func(*http.Request) int {
	return func(*http.Request) int {
		if s.kind == market.USDM {
			return usdm
		}
		return spot
	}
}

// depthWeight is the documented depth weight by limit.
func (s *Server) depthWeight(r *http.Request) int {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if s.kind == market.USDM {
		switch {
		case limit == 0:
			return 10 // default 500
		case limit <= 50:
			return 2
		case limit <= 100:
			return 5
		case limit <= 500:
			return 10
		}
		return 20
	}
	switch {
	case limit <= 100:
		return 5
	case limit <= 500:
		return 25
	case limit <= 1000:
		return 50
	}
	return 250
}

// rest wraps a REST handler with fault injection, weight accounting and
// counting.
func (s *Server) rest(path string, weight func(*http.Request) int, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if sw.status == 0 {
				sw.status = http.StatusOK
			}
			s.stats.restDone(path, sw.status)
		}()
		if s.faults.restFault(sw, r) {
			return
		}
		used, ok, retry := s.weight.take(weight(r))
		sw.Header().Set("X-MBX-USED-WEIGHT-1M", strconv.Itoa(used))
		if !ok {
			sw.Header().Set("Retry-After", strconv.FormatInt(int64((retry+time.Second-1)/time.Second), 10))
			writeJSONError(sw, http.StatusTooManyRequests, -1003, fmt.Sprintf("Too much request weight used; current limit is %d request weight per %s. Please use WebSocket Streams for live updates to avoid polling the API.", s.cfg.WeightLimit, s.cfg.WeightWindow))
			return
		}
		h(sw, r)
	})
}

// symbolParam finds the served symbol of a request, answering the error
// itself when it is missing or unknown.
func (s *Server) symbolParam(w http.ResponseWriter, r *http.Request) *copyState {
	sym := r.URL.Query().Get("symbol")
	if sym == "" {
		writeJSONError(w, http.StatusBadRequest, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
		return nil
	}
	cs := s.bySym[sym]
	if cs == nil {
		writeJSONError(w, http.StatusBadRequest, -1121, "Invalid symbol.")
		return nil
	}
	return cs
}

// intParam reads an optional integer parameter; ok is false after an
// error answer.
func intParam(w http.ResponseWriter, r *http.Request, name string) (v int64, set, ok bool) {
	str := r.URL.Query().Get(name)
	if str == "" {
		return 0, false, true
	}
	v, err := strconv.ParseInt(str, 10, 64)
	if err != nil || v < 0 {
		writeJSONError(w, http.StatusBadRequest, -1100, fmt.Sprintf("Illegal characters found in parameter '%s'; legal range is '^[0-9]{1,20}$'.", name))
		return 0, false, false
	}
	return v, true, true
}

// handleDepth answers with the simulator's own book at this moment of the
// replay: lastUpdateId is the u of the last depth event applied.
func (s *Server) handleDepth(w http.ResponseWriter, r *http.Request) {
	cs := s.symbolParam(w, r)
	if cs == nil {
		return
	}
	if cs.topics[chDepth] == nil {
		writeJSONError(w, http.StatusBadRequest, -1121, "Invalid symbol.")
		return
	}
	limit, set, ok := intParam(w, r, "limit")
	if !ok {
		return
	}
	if s.kind == market.USDM {
		if !set {
			limit = 500
		}
		if !slices.Contains([]int64{5, 10, 20, 50, 100, 500, 1000}, limit) {
			writeJSONError(w, http.StatusBadRequest, -1130, "Data sent for parameter 'limit' is not valid.")
			return
		}
	} else {
		if !set {
			limit = 100
		}
		if limit < 1 {
			writeJSONError(w, http.StatusBadRequest, -1130, "Data sent for parameter 'limit' is not valid.")
			return
		}
		limit = min(limit, 5000)
	}
	lastU, lastT, bids, asks := cs.ss.bookTop(int(limit))
	writeJSON(w, http.StatusOK, cs.enc.snapshot(nil, lastU, s.clock.now(), lastT, bids, asks))
}

// handleAggTrades serves the aggTrades published so far.
func (s *Server) handleAggTrades(w http.ResponseWriter, r *http.Request) {
	cs := s.symbolParam(w, r)
	if cs == nil {
		return
	}
	if cs.topics[chAggTrade] == nil {
		writeJSONError(w, http.StatusBadRequest, -1121, "Invalid symbol.")
		return
	}
	var p [4]int64
	var set [4]bool
	for i, n := range []string{"fromId", "startTime", "endTime", "limit"} {
		var ok bool
		if p[i], set[i], ok = intParam(w, r, n); !ok {
			return
		}
	}
	limit := int64(500)
	if set[3] {
		if p[3] < 1 || p[3] > 1000 {
			writeJSONError(w, http.StatusBadRequest, -1130, "Data sent for parameter 'limit' is not valid.")
			return
		}
		limit = p[3]
	}
	if set[0] && (set[1] || set[2]) {
		writeJSONError(w, http.StatusBadRequest, -1128, "Combination of optional parameters invalid.")
		return
	}
	const hour = int64(time.Hour / time.Millisecond)
	start, end := p[1], p[2]
	switch {
	case set[1] && set[2] && end-start > hour:
		writeJSONError(w, http.StatusBadRequest, -1127, "More than 1 hours between startTime and endTime.")
		return
	case set[1] && !set[2]:
		end = start + hour
	case set[2] && !set[1]:
		start = end - hour
	}
	ss := cs.ss
	ss.mu.RLock()
	h := ss.hist
	var lo, hi int
	switch {
	case set[0]:
		lo, _ = slices.BinarySearchFunc(h, p[0], func(a aggEv, id int64) int { return cmpInt(a.id, id) })
		hi = min(len(h), lo+int(limit))
	case set[1] || set[2]:
		lo, _ = slices.BinarySearchFunc(h, start, func(a aggEv, t int64) int { return cmpInt(a.T, t) })
		hi = lo
		for hi < len(h) && h[hi].T <= end && hi-lo < int(limit) {
			hi++
		}
	default:
		hi = len(h)
		lo = max(0, hi-int(limit))
	}
	out := append([]aggEv(nil), h[lo:hi]...)
	ss.mu.RUnlock()
	b := []byte{'['}
	for i := range out {
		if i > 0 {
			b = append(b, ',')
		}
		b = cs.enc.aggREST(b, &out[i])
	}
	writeJSON(w, http.StatusOK, append(b, ']'))
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// handleExchangeInfo lists the served symbols. Tick and step sizes are
// inferred from the recording: 10^-d, where d is the largest number of
// significant fractional digits (trailing zeros trimmed) seen in any
// recorded price, respectively quantity, of the symbol. They are therefore
// never coarser than the real filters, and may be finer.
func (s *Server) handleExchangeInfo(w http.ResponseWriter, r *http.Request) {
	want := r.URL.Query().Get("symbol")
	if want != "" && s.bySym[want] == nil {
		writeJSONError(w, http.StatusBadRequest, -1121, "Invalid symbol.")
		return
	}
	usdm := s.kind == market.USDM
	var syms []map[string]any
	for _, name := range s.Symbols() {
		if want != "" && name != want {
			continue
		}
		cs := s.bySym[name]
		sd := cs.ss.src
		base, quote := splitSymbol(name)
		w := 8
		if usdm {
			w = 0
		}
		tick, step := pow10neg(sd.priceSig), pow10neg(sd.qtySig)
		filters := []map[string]any{
			{"filterType": "PRICE_FILTER", "minPrice": string(appendDec(nil, tick, w)), "maxPrice": string(appendDec(nil, 1_000_000*fixed.One, w)), "tickSize": string(appendDec(nil, tick, w))},
			{"filterType": "LOT_SIZE", "minQty": string(appendDec(nil, step, w)), "maxQty": string(appendDec(nil, 9_000_000*fixed.One, w)), "stepSize": string(appendDec(nil, step, w))},
		}
		m := map[string]any{"symbol": name, "status": "TRADING", "baseAsset": base, "quoteAsset": quote, "filters": filters}
		if usdm {
			m["pair"] = name
			m["contractType"] = "PERPETUAL"
			m["pricePrecision"] = sd.priceSig
			m["quantityPrecision"] = sd.qtySig
		} else {
			m["baseAssetPrecision"] = 8
			m["quotePrecision"] = 8
		}
		syms = append(syms, m)
	}
	body, err := json.Marshal(map[string]any{
		"timezone":   "UTC",
		"serverTime": s.clock.now(),
		"rateLimits": []map[string]any{{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": s.cfg.WeightLimit}},
		"symbols":    syms,
	})
	if err != nil {
		s.log.Error("exchangeInfo", "err", err)
		writeJSONError(w, http.StatusInternalServerError, -1000, "internal error")
		return
	}
	writeJSON(w, http.StatusOK, body)
}

func pow10neg(d int) fixed.Dec {
	v := fixed.One
	for range min(d, fixed.Scale) {
		v /= 10
	}
	return v
}
