package sim

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// Channels a symbol can serve, as indexes into per-symbol topic tables.
const (
	chDepth = iota
	chTrade
	chAggTrade
	chTicker
	numChannels
)

var channelNames = [numChannels]string{"depth", "trade", "aggTrade", "bookTicker"}

// Recording is a set of recordings loaded, checked and prepared for replay.
// It is immutable once loaded, so several Servers may share one (tests load
// the big files once).
type Recording struct {
	market  market.Kind
	syms    []*symData // sorted by name
	events  []tlEvent  // round-0 timeline, sorted by time then file order
	first   int64      // time of the first published event, ms
	last    int64      // time of the last published event, ms
	skipped LoadStats
}

// LoadStats counts what loading left out, so nothing is dropped silently.
type LoadStats struct {
	// PreRoll counts events before each symbol's sync point: applied to the
	// simulator's simBook (depth) or left out (trades, tickers), never published.
	PreRoll int
	// ExtraSnapshots counts snapshots after a symbol's first one (unused).
	ExtraSnapshots int
	// OtherStreams counts frames of streams the simulator does not serve.
	OtherStreams int
	// ClampedTimes counts events whose time went backwards within their
	// stream and were clamped to the previous time.
	ClampedTimes int
}

// tlEvent is one entry of the replay timeline.
type tlEvent struct {
	t   int64 // exchange time, ms
	seq int64 // file order, breaks ties
	sym int32
	ch  uint8
	idx int32
}

type depthEv struct {
	U, u, pu int64
	E, T     int64
	bids     []market.Level
	asks     []market.Level
}

type tradeEv struct {
	id   int64
	p, q fixed.Dec
	T, E int64
	m    bool
}

type aggEv struct {
	id, f, l int64
	p, q     fixed.Dec
	T, E     int64
	m        bool
}

type tickerEv struct {
	u              int64
	bp, bq, ap, aq fixed.Dec
	E, T           int64 // E is estimated on spot, where the frame has none
}

// symData is one recorded symbol, ready for replay.
type symData struct {
	name, lower string
	depthName   string // recorded depth channel, e.g. "depth@100ms"
	has         [numChannels]bool
	derivedAgg  bool
	// Written widths (fractional digits as the recording writes them) and
	// significant digits (after trimming trailing zeros) of prices and
	// quantities: the first makes our frames look like the recorded ones,
	// the second gives exchangeInfo's tickSize and stepSize.
	priceW, qtyW     int
	priceSig, qtySig int

	start  simBook // simBook at the sync point (snapshot + bridge event)
	bridge int64   // u of the bridge event: the book's id at the sync point
	bridgT int64   // T of the bridge event (USD-M)
	depth  []depthEv
	trades []tradeEv
	aggs   []aggEv
	tick   []tickerEv

	depthSpan, tradeSpan, aggSpan int64
}

// AggIDBase documents how derived aggregate ids are numbered: when a
// recording has only @trade, the first derived aggTrade of a symbol gets
// the id of the first published raw trade, and each following group the
// next integer. Groups never outnumber trades, so an aggregate id never
// exceeds the trade ids it covers, as on Binance.
const AggIDBase = "first published trade id"

// LoadRecording reads recordings (hftbacktest "<ns> <json>" lines or the
// cryptofeed recorder format, gzip or plain), checks that each symbol's
// depth stream syncs with its snapshot and has no gap, and prepares the
// replay. mkt is "", "spot" or "usdm"; "" detects the market from the data
// (a "pu" in depth frames, "E" in snapshots, a /fapi/ URL mean USD-M).
func LoadRecording(mkt string, paths ...string) (*Recording, error) {
	if len(paths) == 0 {
		return nil, errors.New("sim: no recording files")
	}
	l := loader{syms: map[string]*rawSym{}}
	for _, p := range paths {
		if err := l.readFile(p); err != nil {
			return nil, fmt.Errorf("sim: load %s: %w", p, err)
		}
	}
	var kind market.Kind
	switch {
	case mkt != "":
		k, err := market.ParseKind(mkt)
		if err != nil {
			return nil, fmt.Errorf("sim: %w", err)
		}
		kind = k
		if (k == market.USDM && l.spotEvidence != "") || (k == market.Spot && l.usdmEvidence != "") {
			return nil, fmt.Errorf("sim: market %s was asked for but the recording is not (%s%s)", k, l.spotEvidence, l.usdmEvidence)
		}
	case l.spotEvidence != "" && l.usdmEvidence != "":
		return nil, fmt.Errorf("sim: recordings mix markets: %s, but %s", l.spotEvidence, l.usdmEvidence)
	case l.usdmEvidence != "":
		kind = market.USDM
	default:
		kind = market.Spot
	}
	r := &Recording{market: kind, skipped: l.stats}
	names := make([]string, 0, len(l.syms))
	for n := range l.syms {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		sd, err := l.syms[n].prepare(kind, &r.skipped)
		if err != nil {
			return nil, fmt.Errorf("sim: symbol %s: %w", n, err)
		}
		r.syms = append(r.syms, sd)
	}
	if len(r.syms) == 0 {
		return nil, errors.New("sim: the recordings hold no market data")
	}
	r.buildTimeline(l.syms, names)
	if len(r.events) == 0 {
		return nil, errors.New("sim: nothing to publish after the sync points")
	}
	return r, nil
}

// Market returns the market of the recording.
func (r *Recording) Market() market.Kind { return r.market }

// Symbols returns the recorded symbols, sorted.
func (r *Recording) Symbols() []string {
	out := make([]string, len(r.syms))
	for i, s := range r.syms {
		out[i] = s.name
	}
	return out
}

// Events returns the number of events one replay round publishes.
func (r *Recording) Events() int { return len(r.events) }

// Skipped returns what loading left out.
func (r *Recording) Skipped() LoadStats { return r.skipped }

// rawSym collects one symbol's records in file order.
type rawSym struct {
	name      string
	depthName string
	snap      *market.DepthSnapshot
	snapSeq   int64
	depth     []depthEv
	depthSeq  []int64
	trades    []tradeEv
	tradeSeq  []int64
	aggs      []aggEv
	aggSeq    []int64
	tick      []tickerEv
	tickSeq   []int64
	widths    [4]int // priceW, qtyW, priceSig, qtySig
	// seqs of published events after prepare, per channel
	pub [numChannels][]int64
}

type loader struct {
	syms         map[string]*rawSym
	seq          int64
	stats        LoadStats
	spotEvidence string
	usdmEvidence string
}

func (l *loader) sym(name string) *rawSym {
	s := l.syms[name]
	if s == nil {
		s = &rawSym{name: name}
		l.syms[name] = s
	}
	return s
}

func (l *loader) readFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return err
		}
		defer zr.Close()
		r = zr
	}
	lr := bufio.NewReaderSize(r, 1<<20)
	fs := fileState{}
	var fileSym string // hftbacktest snapshots carry no symbol: the file's frames name it
	for lineNo := 1; ; lineNo++ {
		line, err := lr.ReadBytes('\n')
		if len(line) > 0 {
			if perr := l.line(bytes.TrimRight(line, "\r\n"), &fs, &fileSym); perr != nil {
				return fmt.Errorf("line %d: %w", lineNo, perr)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("line %d: %w", lineNo, err)
		}
	}
	// Tickers in a file with no event time at all keep their local time.
	return nil
}

// fileState estimates exchange time for spot bookTicker frames, which carry
// no E: the local receive time plus the latest (E - local) offset of the
// same file.
type fileState struct {
	off     int64
	known   bool
	pending []pendingTicker
}

// pendingTicker is a bookTicker read before any frame with an event time in
// its file; it is shifted once the first offset is known. It is held by
// index because appends move the slice.
type pendingTicker struct {
	s *rawSym
	i int
}

func (l *loader) line(line []byte, fs *fileState, fileSym *string) error {
	if len(line) == 0 || bytes.HasPrefix(line, []byte("configuration:")) || bytes.HasPrefix(line, []byte("wss://")) {
		return nil
	}
	var restURL string
	if bytes.HasPrefix(line, []byte("http")) {
		i := bytes.Index(line, []byte(" -> "))
		if i < 0 {
			return errors.New(`REST line without " -> "`)
		}
		restURL = string(line[:i])
		line = line[i+4:]
	}
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return errors.New("no local timestamp")
	}
	ts, body := line[:sp], line[sp+1:]
	var localMs int64
	if ts[len(ts)-1] == ':' { // cryptofeed: unix seconds as a float
		f, err := strconv.ParseFloat(string(ts[:len(ts)-1]), 64)
		if err != nil {
			return fmt.Errorf("local time %q: %w", ts, err)
		}
		localMs = int64(f * 1000)
	} else {
		ns, err := strconv.ParseInt(string(ts), 10, 64)
		if err != nil {
			return fmt.Errorf("local time %q: %w", ts, err)
		}
		localMs = ns / 1e6
	}
	l.seq++
	if !bytes.Contains(body, []byte(`"stream"`)) {
		return l.snapshot(body, restURL, *fileSym)
	}
	var fr wireFrame
	if err := json.Unmarshal(body, &fr); err != nil {
		return fmt.Errorf("frame: %w", err)
	}
	return l.frame(&fr, localMs, fs, fileSym)
}

type wireFrame struct {
	Stream string    `json:"stream"`
	Data   wireEvent `json:"data"`
}

type wireEvent struct {
	Ev  string          `json:"e"`
	E   int64           `json:"E"`
	T   int64           `json:"T"`
	S   string          `json:"s"`
	Ar  json.RawMessage `json:"a"`
	Br  json.RawMessage `json:"b"`
	AQ  string          `json:"A"`
	BQ  string          `json:"B"`
	P   string          `json:"p"`
	Q   string          `json:"q"`
	F   int64           `json:"f"`
	L   int64           `json:"l"`
	Tid int64           `json:"t"`
	U1  int64           `json:"U"`
	U   int64           `json:"u"`
	PU  *int64          `json:"pu"`
	M   bool            `json:"m"`
	// BestMatch is spot's "M": declared so that encoding/json, which
	// matches keys case-insensitively, cannot read it into m.
	BestMatch bool   `json:"M"`
	X         string `json:"X"`
}

type wireSnap struct {
	LastUpdateID int64       `json:"lastUpdateId"`
	E            *int64      `json:"E"`
	T            int64       `json:"T"`
	Bids         [][2]string `json:"bids"`
	Asks         [][2]string `json:"asks"`
}

func (l *loader) snapshot(body []byte, restURL, fileSym string) error {
	var ws wireSnap
	if err := json.Unmarshal(body, &ws); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	sym := fileSym
	if restURL != "" {
		u, err := url.Parse(restURL)
		if err != nil {
			return fmt.Errorf("snapshot URL: %w", err)
		}
		sym = strings.ToUpper(u.Query().Get("symbol"))
		if strings.Contains(u.Path, "/fapi/") {
			l.usdmEvidence = "a /fapi/ snapshot URL"
		} else {
			l.spotEvidence = "a spot snapshot URL"
		}
	}
	if sym == "" {
		return errors.New("snapshot before any frame names its symbol")
	}
	if ws.E != nil {
		l.usdmEvidence = `a snapshot with "E"`
	} else if restURL == "" {
		l.spotEvidence = `a snapshot without "E"`
	}
	s := l.sym(sym)
	if s.snap != nil {
		l.stats.ExtraSnapshots++
		return nil
	}
	snap := &market.DepthSnapshot{Symbol: sym, LastUpdateID: ws.LastUpdateID, TransactTime: ws.T}
	var err error
	if snap.Bids, err = s.levels(ws.Bids, "bids"); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if snap.Asks, err = s.levels(ws.Asks, "asks"); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	s.snap, s.snapSeq = snap, l.seq
	return nil
}

// dec parses a decimal and widens the symbol's width records.
func (s *rawSym) dec(str, field string, isQty bool) (fixed.Dec, error) {
	d, err := fixed.ParseString(str)
	if err != nil {
		return 0, fmt.Errorf("field %q: %q: %w", field, str, err)
	}
	w, sig := 0, 0
	if i := strings.IndexByte(str, '.'); i >= 0 {
		w = len(str) - i - 1
		sig = len(strings.TrimRight(str[i+1:], "0"))
	}
	k := 0
	if isQty {
		k = 1
	}
	s.widths[k] = max(s.widths[k], w)
	s.widths[k+2] = max(s.widths[k+2], sig)
	return d, nil
}

func (s *rawSym) levels(in [][2]string, field string) ([]market.Level, error) {
	out := make([]market.Level, len(in))
	for i, pq := range in {
		var err error
		if out[i].Price, err = s.dec(pq[0], fmt.Sprintf("%s[%d][0]", field, i), false); err != nil {
			return nil, err
		}
		if out[i].Qty, err = s.dec(pq[1], fmt.Sprintf("%s[%d][1]", field, i), true); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (l *loader) frame(fr *wireFrame, localMs int64, fs *fileState, fileSym *string) error {
	d := &fr.Data
	at := strings.IndexByte(fr.Stream, '@')
	if at <= 0 || d.S == "" {
		l.stats.OtherStreams++
		return nil
	}
	channel := fr.Stream[at+1:]
	*fileSym = d.S
	s := l.sym(d.S)
	if d.E != 0 {
		fs.off, fs.known = d.E-localMs, true
		for _, p := range fs.pending {
			p.s.tick[p.i].E += fs.off
		}
		fs.pending = fs.pending[:0]
	}
	switch {
	case d.Ev == "depthUpdate":
		var bids, asks [][2]string
		if err := json.Unmarshal(d.Br, &bids); err != nil {
			return fmt.Errorf("%s: field \"b\": %w", fr.Stream, err)
		}
		if err := json.Unmarshal(d.Ar, &asks); err != nil {
			return fmt.Errorf("%s: field \"a\": %w", fr.Stream, err)
		}
		ev := depthEv{U: d.U1, u: d.U, E: d.E, T: d.T}
		if d.PU != nil {
			ev.pu = *d.PU
			l.usdmEvidence = `a depth frame with "pu"`
		} else {
			l.spotEvidence = `a depth frame without "pu"`
		}
		var err error
		if ev.bids, err = s.levels(bids, "b"); err != nil {
			return fmt.Errorf("%s: %w", fr.Stream, err)
		}
		if ev.asks, err = s.levels(asks, "a"); err != nil {
			return fmt.Errorf("%s: %w", fr.Stream, err)
		}
		s.depthName = channel
		s.depth = append(s.depth, ev)
		s.depthSeq = append(s.depthSeq, l.seq)
	case d.Ev == "trade":
		ev := tradeEv{id: d.Tid, T: d.T, E: d.E, m: d.M}
		var err error
		if ev.p, err = s.dec(d.P, "p", false); err != nil {
			return fmt.Errorf("%s: %w", fr.Stream, err)
		}
		if ev.q, err = s.dec(d.Q, "q", true); err != nil {
			return fmt.Errorf("%s: %w", fr.Stream, err)
		}
		s.trades = append(s.trades, ev)
		s.tradeSeq = append(s.tradeSeq, l.seq)
	case d.Ev == "aggTrade":
		ev := aggEv{f: d.F, l: d.L, T: d.T, E: d.E, m: d.M}
		if err := json.Unmarshal(d.Ar, &ev.id); err != nil {
			return fmt.Errorf("%s: field \"a\": %w", fr.Stream, err)
		}
		var err error
		if ev.p, err = s.dec(d.P, "p", false); err != nil {
			return fmt.Errorf("%s: %w", fr.Stream, err)
		}
		if ev.q, err = s.dec(d.Q, "q", true); err != nil {
			return fmt.Errorf("%s: %w", fr.Stream, err)
		}
		s.aggs = append(s.aggs, ev)
		s.aggSeq = append(s.aggSeq, l.seq)
	case channel == "bookTicker":
		var bp, ap string
		if err := json.Unmarshal(d.Br, &bp); err != nil {
			return fmt.Errorf("%s: field \"b\": %w", fr.Stream, err)
		}
		if err := json.Unmarshal(d.Ar, &ap); err != nil {
			return fmt.Errorf("%s: field \"a\": %w", fr.Stream, err)
		}
		ev := tickerEv{u: d.U, E: d.E, T: d.T}
		var err error
		for _, f := range []struct {
			dst   *fixed.Dec
			str   string
			name  string
			isQty bool
		}{{&ev.bp, bp, "b", false}, {&ev.bq, d.BQ, "B", true}, {&ev.ap, ap, "a", false}, {&ev.aq, d.AQ, "A", true}} {
			if *f.dst, err = s.dec(f.str, f.name, f.isQty); err != nil {
				return fmt.Errorf("%s: %w", fr.Stream, err)
			}
		}
		if d.Ev == "bookTicker" {
			l.usdmEvidence = `a bookTicker frame with "e"`
		}
		s.tick = append(s.tick, ev)
		s.tickSeq = append(s.tickSeq, l.seq)
		if ev.E == 0 {
			// Spot bookTicker has no event time: estimate it (see fileState).
			s.tick[len(s.tick)-1].E = localMs + fs.off
			if !fs.known {
				fs.pending = append(fs.pending, pendingTicker{s, len(s.tick) - 1})
			}
		}
	default:
		l.stats.OtherStreams++
	}
	return nil
}

// prepare syncs the simulator's simBook with the symbol's snapshot by
// Binance's documented procedure, drops what precedes the sync point, and
// checks that the depth events after it chain without a gap.
func (s *rawSym) prepare(kind market.Kind, st *LoadStats) (*symData, error) {
	sd := &symData{
		name: s.name, lower: strings.ToLower(s.name), depthName: s.depthName,
		priceW: s.widths[0], qtyW: s.widths[1], priceSig: s.widths[2], qtySig: s.widths[3],
	}
	syncSeq := int64(-1) // events with a larger seq are published
	if len(s.depth) > 0 {
		if s.snap == nil {
			return nil, errors.New("depth diffs but no depth snapshot to sync from")
		}
		lid := s.snap.LastUpdateID
		bi := -1
		for i, ev := range s.depth {
			if kind == market.USDM {
				// USD-M: drop u < lastUpdateId; the first applied has U <= lastUpdateId <= u.
				if ev.u < lid {
					continue
				}
				if ev.U > lid {
					return nil, fmt.Errorf("gap at the sync point: first depth event after snapshot %d has U=%d", lid, ev.U)
				}
			} else {
				// Spot: drop u <= lastUpdateId; the first applied has U <= lastUpdateId+1.
				if ev.u <= lid {
					continue
				}
				if ev.U > lid+1 {
					return nil, fmt.Errorf("gap at the sync point: first depth event after snapshot %d has U=%d", lid, ev.U)
				}
			}
			bi = i
			break
		}
		if bi < 0 {
			return nil, fmt.Errorf("no depth event reaches snapshot lastUpdateId %d", lid)
		}
		sd.start.reset(s.snap.Bids, s.snap.Asks)
		br := s.depth[bi]
		sd.start.apply(br.bids, br.asks)
		sd.bridge, sd.bridgT = br.u, br.T
		syncSeq = s.depthSeq[bi]
		st.PreRoll += bi + 1
		prev := br
		for i := bi + 1; i < len(s.depth); i++ {
			ev := s.depth[i]
			if kind == market.USDM && ev.pu != prev.u {
				return nil, fmt.Errorf("depth gap in the recording: event %d (u=%d) has pu=%d, previous u=%d", i, ev.u, ev.pu, prev.u)
			}
			if kind == market.Spot && ev.U != prev.u+1 {
				return nil, fmt.Errorf("depth gap in the recording: event %d has U=%d, previous u=%d", i, ev.U, prev.u)
			}
			sd.depth = append(sd.depth, ev)
			s.pub[chDepth] = append(s.pub[chDepth], s.depthSeq[i])
			prev = ev
		}
		sd.depthSpan = prev.u + 1 - sd.bridge
		sd.has[chDepth] = true
	}
	for i, ev := range s.trades {
		if s.tradeSeq[i] <= syncSeq {
			st.PreRoll++
			continue
		}
		sd.trades = append(sd.trades, ev)
		s.pub[chTrade] = append(s.pub[chTrade], s.tradeSeq[i])
	}
	for i, ev := range s.aggs {
		if s.aggSeq[i] <= syncSeq {
			st.PreRoll++
			continue
		}
		sd.aggs = append(sd.aggs, ev)
		s.pub[chAggTrade] = append(s.pub[chAggTrade], s.aggSeq[i])
	}
	for i, ev := range s.tick {
		if s.tickSeq[i] <= syncSeq {
			st.PreRoll++
			continue
		}
		sd.tick = append(sd.tick, ev)
		s.pub[chTicker] = append(s.pub[chTicker], s.tickSeq[i])
	}
	sd.has[chTrade] = len(sd.trades) > 0
	sd.has[chTicker] = len(sd.tick) > 0
	if len(sd.aggs) == 0 && len(sd.trades) > 0 {
		sd.aggs, s.pub[chAggTrade] = deriveAggs(sd.trades, s.pub[chTrade])
		sd.derivedAgg = true
	}
	sd.has[chAggTrade] = len(sd.aggs) > 0
	switch n := len(sd.trades); {
	case n > 0:
		sd.tradeSpan = sd.trades[n-1].id - sd.trades[0].id + 1
	case len(sd.aggs) > 0: // recorded aggTrades only: their f..l cover the trade ids
		sd.tradeSpan = sd.aggs[len(sd.aggs)-1].l - sd.aggs[0].f + 1
	}
	if n := len(sd.aggs); n > 0 {
		sd.aggSpan = sd.aggs[n-1].id - sd.aggs[0].id + 1
	}
	return sd, nil
}

// deriveAggs groups raw trades into aggTrades: consecutive trades with the
// same trade time, price and side (m) form one aggTrade, an approximation
// of Binance's "one taker order at one price". Ids start at AggIDBase (the
// first trade id) and are consecutive; the aggTrade takes the event time
// and file position of its last trade, when the whole group has printed.
func deriveAggs(trades []tradeEv, seqs []int64) ([]aggEv, []int64) {
	var aggs []aggEv
	var aseq []int64
	for i := 0; i < len(trades); {
		j := i + 1
		for j < len(trades) && trades[j].T == trades[i].T && trades[j].p == trades[i].p && trades[j].m == trades[i].m {
			j++
		}
		a := aggEv{id: trades[0].id + int64(len(aggs)), f: trades[i].id, l: trades[j-1].id,
			p: trades[i].p, T: trades[i].T, E: trades[j-1].E, m: trades[i].m}
		for k := i; k < j; k++ {
			a.q += trades[k].q
		}
		aggs = append(aggs, a)
		aseq = append(aseq, seqs[j-1])
		i = j
	}
	return aggs, aseq
}

// buildTimeline merges every symbol's published events into one timeline
// ordered by exchange time (file order breaks ties).
func (r *Recording) buildTimeline(raw map[string]*rawSym, names []string) {
	for si, sd := range r.syms {
		rs := raw[names[si]]
		for ch := range numChannels {
			var prev int64
			for i, seq := range rs.pub[ch] {
				t := sd.eventTime(ch, i)
				if t < prev {
					r.skipped.ClampedTimes++
					t = prev
				}
				prev = t
				r.events = append(r.events, tlEvent{t: t, seq: seq, sym: int32(si), ch: uint8(ch), idx: int32(i)})
			}
		}
	}
	slices.SortFunc(r.events, func(a, b tlEvent) int {
		if c := cmp.Compare(a.t, b.t); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	if n := len(r.events); n > 0 {
		r.first, r.last = r.events[0].t, r.events[n-1].t
	}
}

func (sd *symData) eventTime(ch int, i int) int64 {
	switch ch {
	case chDepth:
		return sd.depth[i].E
	case chTrade:
		return sd.trades[i].E
	case chAggTrade:
		return sd.aggs[i].E
	default:
		return sd.tick[i].E
	}
}
