package binance

import (
	"fmt"
	"strings"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// Intern table bounds: symbols and stream names are few and short, so a
// table this size holds every real one; past it (hostile or exotic input)
// strings are allocated instead of remembered, and memory stays bounded at
// roughly maxInternEntries*maxInternLen bytes.
const (
	maxInternEntries = 4096
	maxInternLen     = 128
)

// Field slots of an event object. "a" and "b" mean different things per
// kind (aggregate id, ask price, asks; bid price, bids), so the scanner
// records each value's span and type and the kind decides after the whole
// object has been seen: fields may come in any order.
const (
	fe      = iota // event type
	fE             // event time
	fs             // symbol
	fa             // aggregate id | asks | best ask price | (old spot trade) seller order id
	fp             // price
	fq             // quantity
	ff             // first trade id
	fl             // last trade id
	fT             // trade / transaction time
	fm             // buyer is maker
	ft             // trade id
	fb             // bids | best bid price | (old spot trade) buyer order id
	fB             // best bid qty
	fA             // best ask qty
	fU             // first update id
	fu             // final update id
	fpu            // previous final update id (USD-M)
	fResult        // reply result
	fID            // reply id
	fError         // error object
	fCode          // error code
	fMsg           // error message
	nFields
)

// fieldPath is each slot's key as it appears in an error's field path.
var fieldPath = [nFields]string{
	`"e"`, `"E"`, `"s"`, `"a"`, `"p"`, `"q"`, `"f"`, `"l"`, `"T"`, `"m"`, `"t"`,
	`"b"`, `"B"`, `"A"`, `"U"`, `"u"`, `"pu"`, `"result"`, `"id"`, `"error"`, `"code"`, `"msg"`,
}

// fieldIndex maps a key to its slot, or -1 for a key we skip ("M", "X", ...).
func fieldIndex(k []byte) int {
	switch len(k) {
	case 1:
		switch k[0] {
		case 'e':
			return fe
		case 'E':
			return fE
		case 's':
			return fs
		case 'a':
			return fa
		case 'p':
			return fp
		case 'q':
			return fq
		case 'f':
			return ff
		case 'l':
			return fl
		case 'T':
			return fT
		case 'm':
			return fm
		case 't':
			return ft
		case 'b':
			return fb
		case 'B':
			return fB
		case 'A':
			return fA
		case 'U':
			return fU
		case 'u':
			return fu
		}
	case 2:
		switch string(k) {
		case "pu":
			return fpu
		case "id":
			return fID
		}
	default:
		switch string(k) {
		case "result":
			return fResult
		case "error":
			return fError
		case "code":
			return fCode
		case "msg":
			return fMsg
		}
	}
	return -1
}

func bit(f int) uint32 { return 1 << uint(f) }

// Required fields per kind (Binance spot "Web Socket Streams" and USD-M
// "Websocket Market Streams" payload definitions). Optional: USD-M's T and
// pu on depthUpdate, E and T on bookTicker, spot's M.
const (
	reqAggTrade   = 1<<fE | 1<<fs | 1<<fa | 1<<fp | 1<<fq | 1<<ff | 1<<fl | 1<<fT | 1<<fm
	reqTrade      = 1<<fE | 1<<fs | 1<<ft | 1<<fp | 1<<fq | 1<<fT | 1<<fm
	reqDepth      = 1<<fE | 1<<fs | 1<<fU | 1<<fu | 1<<fb | 1<<fa
	reqBookTicker = 1<<fu | 1<<fs | 1<<fb | 1<<fB | 1<<fa | 1<<fA
	reqShutdown   = 1 << fE
	reqErrorObj   = 1<<fCode | 1<<fMsg
)

// object holds the recorded fields of one event object.
type object struct {
	has    uint32 // bit per slot present
	direct uint8  // 1: bids, 2: asks already parsed into the Message
	depth  bool   // "e" was seen and is "depthUpdate"
	off    int    // offset of '{'
	v      [nFields]val
}

// Decoder decodes Binance WebSocket frames into Messages. It interns symbol,
// stream and event names so that steady-state decoding allocates nothing.
// A Decoder is not safe for concurrent use: give each connection its own.
// The zero value is ready to use; NewDecoder is its constructor.
type Decoder struct {
	strs    map[string]string
	recent  [16]string // direct-mapped cache in front of strs (see intern)
	scratch []byte     // decoded strings that held escapes
	keybuf  []byte     // decoded keys that held escapes
	top     object     // fields of a raw frame (or an envelope's stray keys)
	inner   object     // fields of an envelope's "data"
}

// NewDecoder returns a Decoder with an empty intern table.
func NewDecoder() *Decoder {
	return &Decoder{strs: make(map[string]string, 64)}
}

// intern returns b as a string, remembering it so the next occurrence costs
// no allocation (the map lookup with string(b) does not allocate).
//
// A frame interns its stream and symbol names, which repeat from frame to
// frame; a small direct-mapped cache, indexed by length and last byte,
// answers those with one comparison instead of hashing for the map.
func (d *Decoder) intern(b []byte) string {
	slot := 0
	if len(b) > 0 {
		slot = (len(b) ^ int(b[len(b)-1])) & (len(d.recent) - 1)
		if r := d.recent[slot]; r == string(b) {
			return r
		}
	}
	if s, ok := d.strs[string(b)]; ok {
		d.recent[slot] = s
		return s
	}
	s := string(b)
	if d.strs == nil {
		d.strs = make(map[string]string, 64)
	}
	if len(d.strs) < maxInternEntries && len(b) <= maxInternLen {
		d.strs[s] = s
	}
	return s
}

// Decode decodes one frame into m, reusing m's Depth slices. The frame is a
// combined-stream envelope {"stream":..,"data":{..}} (keys in any order) or
// a raw payload: an event, a spot bookTicker (no "e"), a reply to a request
// or an error. Reply.ID and Reply.Result point into frame.
//
// The frame's market need not be known: spot and USD-M payloads differ only
// in optional fields (USD-M's "T" and "pu", bookTicker's "e", "E", "T").
//
// Malformed input returns a *DecodeError and never panics; m then holds a
// partial result and must not be used. A well-formed event of a type not
// handled here is not an error (KindUnknown, with m.Event set).
//
// Frames written exactly as Binance writes its trade, aggTrade,
// depthUpdate and bookTicker events take a one-pass fast path (see fast);
// everything else, and anything the fast path does not expect, takes the
// general scanner, with the same result for every frame both accept.
func (d *Decoder) Decode(frame []byte, m *Message) error {
	if d.fast(frame, m) {
		return nil
	}
	if err := d.decode(frame, m); err != nil {
		return withKind(err, d.seenKind(frame))
	}
	return nil
}

// seenKind names the event kind of a frame that failed to scan, from the
// "e" recorded before the failure, so that the error says what it was.
func (d *Decoder) seenKind(frame []byte) string {
	for _, o := range [...]*object{&d.inner, &d.top} {
		if o.has&bit(fe) != 0 && o.v[fe].typ == '"' && !o.v[fe].esc {
			return string(frame[o.v[fe].start:o.v[fe].end])
		}
	}
	return ""
}

func (d *Decoder) decode(frame []byte, m *Message) error {
	bids, asks := m.Depth.Bids[:0], m.Depth.Asks[:0]
	*m = Message{}
	m.Depth.Bids, m.Depth.Asks = bids, asks

	s := scanner{b: frame}
	ev := &d.top
	ev.reset(0)
	d.inner.reset(0)
	if c, ok := s.peek(); !ok {
		return s.eof()
	} else if c != '{' {
		return typeErr(s.i, "object", c)
	}
	ev.off = s.i
	empty, err := s.open('{', '}', "'{'")
	if err != nil {
		return err
	}
	sawData := false
	for !empty {
		k, err := d.key(&s)
		if err != nil {
			return err
		}
		switch {
		case string(k) == "stream":
			var v val
			if err := s.value(&v); err != nil {
				return withField(err, `"stream"`)
			}
			if v.typ != '"' {
				return withField(typeErr(v.off, "string", v.typ), `"stream"`)
			}
			m.Stream = d.intern(text(s.b).str(&v, &d.scratch))
		case string(k) == "data" && s.at('{'):
			// The envelope's payload: its fields replace any seen so far.
			sawData = true
			ev = &d.inner
			ev.reset(s.i)
			m.Depth.Bids, m.Depth.Asks = m.Depth.Bids[:0], m.Depth.Asks[:0]
			if err := d.object(&s, ev, m); err != nil {
				return err
			}
		case sawData:
			// A key beside "data" in an envelope: not part of the event.
			if err := s.skip(1); err != nil {
				return withField(err, quoteKey(k))
			}
		default:
			if err := d.member(&s, k, ev, m); err != nil {
				return err
			}
		}
		more, err := s.next('}')
		if err != nil {
			return err
		}
		empty = !more
	}
	if err := s.end(); err != nil {
		return err
	}
	if err := d.finish(&s, ev, m); err != nil {
		return err
	}
	if m.Kind != KindDepthUpdate {
		// Levels parsed early under an "e" that a later "e" overrode.
		m.Depth.Bids, m.Depth.Asks = m.Depth.Bids[:0], m.Depth.Asks[:0]
	}
	return nil
}

// at reports whether the next non-space byte is c.
func (s *scanner) at(c byte) bool {
	got, ok := s.peek()
	return ok && got == c
}

func (o *object) reset(off int) {
	o.has, o.direct, o.depth, o.off = 0, 0, false, off
}

// key reads an object key, decoding escapes if it has any.
func (d *Decoder) key(s *scanner) ([]byte, error) {
	k, esc, err := s.key()
	if err != nil || !esc {
		return k, err
	}
	d.keybuf = unescape(d.keybuf[:0], k)
	return d.keybuf, nil
}

// object scans an event object (an envelope's "data") into o.
func (d *Decoder) object(s *scanner, o *object, m *Message) error {
	empty, err := s.open('{', '}', "'{'")
	if err != nil || empty {
		return err
	}
	for {
		k, err := d.key(s)
		if err != nil {
			return err
		}
		if err := d.member(s, k, o, m); err != nil {
			return err
		}
		more, err := s.next('}')
		if err != nil || !more {
			return err
		}
	}
}

// member scans the value of key k into its slot of o. Depth sides are parsed
// straight into m when "e" has already said depthUpdate (Binance sends "e"
// first), so a depth frame is read once.
func (d *Decoder) member(s *scanner, k []byte, o *object, m *Message) error {
	f := fieldIndex(k)
	if f < 0 {
		if err := s.skip(1); err != nil {
			return withField(err, quoteKey(k))
		}
		return nil
	}
	if o.depth && (f == fb || f == fa) && s.at('[') {
		off := s.i
		var err error
		if f == fb {
			m.Depth.Bids, err = s.levels(m.Depth.Bids[:0], &d.scratch)
			o.direct |= 1
		} else {
			m.Depth.Asks, err = s.levels(m.Depth.Asks[:0], &d.scratch)
			o.direct |= 2
		}
		if err != nil {
			return withKind(withField(err, fieldPath[f]), "depthUpdate")
		}
		o.has |= bit(f)
		o.v[f] = val{off: off, typ: '['}
		return nil
	}
	v := &o.v[f]
	if err := s.value(v); err != nil {
		return withField(err, fieldPath[f])
	}
	o.has |= bit(f)
	switch f {
	case fb:
		o.direct &^= 1
	case fa:
		o.direct &^= 2
	case fe:
		o.depth = v.typ == '"' && !v.esc && string(s.b[v.start:v.end]) == "depthUpdate"
	}
	return nil
}

// finish interprets the recorded fields once the whole frame is scanned.
func (d *Decoder) finish(s *scanner, o *object, m *Message) error {
	if o.has&bit(fe) != 0 {
		v := &o.v[fe]
		if v.typ != '"' {
			return withField(typeErr(v.off, "string", v.typ), `"e"`)
		}
		name := text(s.b).str(v, &d.scratch)
		var kind Kind
		switch string(name) {
		case "aggTrade":
			kind = KindAggTrade
		case "trade":
			kind = KindTrade
		case "depthUpdate":
			kind = KindDepthUpdate
		case "bookTicker":
			kind = KindBookTicker
		case "serverShutdown":
			kind = KindServerShutdown
		case "":
			return withField(errAt(v.off, fmt.Errorf("%w: empty event type", ErrUnknownFrame)), `"e"`)
		default:
			// Another event (markPriceUpdate, kline, ...): not ours, not an
			// error. Its event time is reported when it is an integer.
			m.Kind = KindUnknown
			m.Event = d.intern(name)
			if o.has&bit(fE) != 0 && o.v[fE].typ == '-' {
				if t, err := parseInt(s.b[o.v[fE].start:o.v[fE].end]); err == nil {
					m.EventTime = t
				}
			}
			return nil
		}
		m.Event = kind.String()
		if err := d.event(s, o, m, kind); err != nil {
			return withKind(err, kind.String())
		}
		return nil
	}
	var err error
	switch {
	case o.has&bit(fError) != 0 && o.v[fError].typ == '{':
		err = d.errorFrame(s, o, m)
	case o.has&bit(fCode) != 0:
		err = d.codeFrame(s, o, m)
	case o.has&bit(fResult) != 0:
		err = d.reply(s, o, m)
	case o.has&bit(fu) != 0:
		// Spot bookTicker: the only payload without "e".
		err = d.event(s, o, m, KindBookTicker)
	default:
		return errAt(o.off, fmt.Errorf("%w: no \"e\", \"result\", \"error\" or \"code\"", ErrUnknownFrame))
	}
	if err != nil {
		return withKind(err, m.Kind.String())
	}
	return nil
}

// event fills m from an event object of a known kind.
func (d *Decoder) event(s *scanner, o *object, m *Message, kind Kind) error {
	m.Kind = kind
	var err error
	f := fieldReader{b: s.b, o: o, scratch: &d.scratch, d: d, err: &err}
	switch kind {
	case KindAggTrade, KindTrade:
		req := uint32(reqTrade)
		if kind == KindAggTrade {
			req = reqAggTrade
		}
		if err := o.require(req); err != nil {
			return err
		}
		t := &m.Trade
		t.Aggregated = kind == KindAggTrade
		t.Symbol = f.str(fs)
		t.EventTime = f.int(fE)
		t.Price = f.dec(fp)
		t.Qty = f.dec(fq)
		t.Time = f.int(fT)
		t.BuyerMaker = f.bool(fm)
		if t.Aggregated {
			t.ID = f.int(fa)
			t.FirstID = f.int(ff)
			t.LastID = f.int(fl)
		} else {
			t.ID = f.int(ft)
			t.FirstID, t.LastID = t.ID, t.ID
		}
		m.EventTime = t.EventTime
	case KindDepthUpdate:
		if err := o.require(reqDepth); err != nil {
			return err
		}
		u := &m.Depth
		u.Symbol = f.str(fs)
		u.EventTime = f.int(fE)
		u.FirstID = f.int(fU)
		u.FinalID = f.int(fu)
		if o.has&bit(fT) != 0 {
			u.TransactTime = f.int(fT)
		}
		if o.has&bit(fpu) != 0 {
			u.PrevFinalID = f.int(fpu)
			u.HasPrev = true
		}
		if o.direct&1 == 0 {
			u.Bids = f.levels(fb, u.Bids)
		}
		if o.direct&2 == 0 {
			u.Asks = f.levels(fa, u.Asks)
		}
		m.EventTime = u.EventTime
	case KindBookTicker:
		if err := o.require(reqBookTicker); err != nil {
			return err
		}
		t := &m.Ticker
		t.Symbol = f.str(fs)
		t.UpdateID = f.int(fu)
		t.BidPrice = f.dec(fb)
		t.BidQty = f.dec(fB)
		t.AskPrice = f.dec(fa)
		t.AskQty = f.dec(fA)
		if o.has&bit(fE) != 0 {
			t.EventTime = f.int(fE)
		}
		if o.has&bit(fT) != 0 {
			t.TransactTime = f.int(fT)
		}
		m.EventTime = t.EventTime
	case KindServerShutdown:
		if err := o.require(reqShutdown); err != nil {
			return err
		}
		m.EventTime = f.int(fE)
	}
	return err
}

// reply fills m from {"result":..,"id":..}.
func (d *Decoder) reply(s *scanner, o *object, m *Message) error {
	m.Kind = KindReply
	if err := o.require(1<<fResult | 1<<fID); err != nil {
		return err
	}
	id, err := text(s.b).replyID(o)
	if err != nil {
		return err
	}
	m.Reply.ID = id
	m.Reply.Result = text(s.b).raw(&o.v[fResult])
	return nil
}

// errorFrame fills m from {"error":{"code":..,"msg":..},"id":..}.
func (d *Decoder) errorFrame(s *scanner, o *object, m *Message) error {
	m.Kind = KindError
	v := &o.v[fError]
	sub := scanner{b: s.b, i: v.off}
	code, msg, err := codeMsg(&sub, &d.scratch)
	if err != nil {
		return withField(err, `"error"`)
	}
	if o.has&bit(fID) != 0 {
		if m.Reply.ID, err = text(s.b).replyID(o); err != nil {
			return err
		}
	}
	m.Reply.Code = code
	m.Reply.Msg = d.intern(msg)
	return nil
}

// codeFrame fills m from {"code":..,"msg":..} (optionally with "id").
func (d *Decoder) codeFrame(s *scanner, o *object, m *Message) error {
	m.Kind = KindError
	if err := o.require(reqErrorObj); err != nil {
		return err
	}
	var err error
	f := fieldReader{b: s.b, o: o, scratch: &d.scratch, d: d, err: &err}
	m.Reply.Code = f.int(fCode)
	m.Reply.Msg = f.str(fMsg)
	if err != nil {
		return err
	}
	if o.has&bit(fID) != 0 {
		id, err := text(s.b).replyID(o)
		if err != nil {
			return err
		}
		m.Reply.ID = id
	}
	return nil
}

// replyID returns the raw "id": a number, a string or null.
func (b text) replyID(o *object) ([]byte, error) {
	v := &o.v[fID]
	switch v.typ {
	case '-', '"', 'n':
		return b.raw(v), nil
	}
	return nil, withField(typeErr(v.off, "integer, string or null", v.typ), `"id"`)
}

// codeMsg parses an error object {"code":int,"msg":string} at s.i; other
// keys are skipped. msg is a sub-slice of the input or of *scratch.
func codeMsg(s *scanner, scratch *[]byte) (code int64, msg []byte, err error) {
	off := s.i
	empty, err := s.open('{', '}', "'{'")
	if err != nil {
		return 0, nil, err
	}
	var has uint8
	var v val
	for !empty {
		k, esc, err := s.key()
		if err != nil {
			return 0, nil, err
		}
		switch {
		case !esc && string(k) == "code":
			if err := s.value(&v); err != nil {
				return 0, nil, withField(err, `"code"`)
			}
			if code, err = text(s.b).int(&v); err != nil {
				return 0, nil, withField(err, `"code"`)
			}
			has |= 1
		case !esc && string(k) == "msg":
			if err := s.value(&v); err != nil {
				return 0, nil, withField(err, `"msg"`)
			}
			if v.typ != '"' {
				return 0, nil, withField(typeErr(v.off, "string", v.typ), `"msg"`)
			}
			msg = text(s.b).str(&v, scratch)
			has |= 2
		default:
			if err := s.skip(1); err != nil {
				return 0, nil, withField(err, quoteKey(k))
			}
		}
		more, err := s.next('}')
		if err != nil {
			return 0, nil, err
		}
		empty = !more
	}
	if has != 3 {
		var names []string
		if has&1 == 0 {
			names = append(names, `"code"`)
		}
		if has&2 == 0 {
			names = append(names, `"msg"`)
		}
		return 0, nil, &DecodeError{Field: strings.Join(names, ", "), Offset: off, Err: ErrMissingField}
	}
	return code, msg, nil
}

// require checks that every field in mask is present.
func (o *object) require(mask uint32) error {
	missing := mask &^ o.has
	if missing == 0 {
		return nil
	}
	var names []string
	for f := 0; f < nFields; f++ {
		if missing&bit(f) != 0 {
			names = append(names, fieldPath[f])
		}
	}
	return &DecodeError{Field: strings.Join(names, ", "), Offset: o.off, Err: ErrMissingField}
}

// fieldReader reads typed fields from an object, keeping the first error
// so that the event code reads as a list of assignments. The error lives
// outside the struct so that escape analysis, which does not tell fields
// apart, does not move the object or scanner it reads to the heap.
type fieldReader struct {
	b       text
	o       *object
	scratch *[]byte  // for strings with escapes
	d       *Decoder // interns strings; nil: allocate them
	err     *error
}

func (r *fieldReader) fail(err error, f int) {
	if *r.err == nil {
		*r.err = withField(err, fieldPath[f])
	}
}

func (r *fieldReader) int(f int) int64 {
	n, err := r.b.int(&r.o.v[f])
	if err != nil {
		r.fail(err, f)
	}
	return n
}

func (r *fieldReader) dec(f int) fixed.Dec {
	d, err := r.b.dec(&r.o.v[f], r.scratch)
	if err != nil {
		r.fail(err, f)
	}
	return d
}

func (r *fieldReader) bool(f int) bool {
	b, err := boolVal(&r.o.v[f])
	if err != nil {
		r.fail(err, f)
	}
	return b
}

// str reads a string field, interned.
func (r *fieldReader) str(f int) string {
	v := &r.o.v[f]
	if v.typ != '"' {
		r.fail(typeErr(v.off, "string", v.typ), f)
		return ""
	}
	b := r.b.str(v, r.scratch)
	if r.d == nil {
		return string(b)
	}
	return r.d.intern(b)
}

// levels parses a depth side recorded as a span (when "e" came after it).
func (r *fieldReader) levels(f int, dst []market.Level) []market.Level {
	v := &r.o.v[f]
	if v.typ != '[' {
		r.fail(typeErr(v.off, "array of [price, qty]", v.typ), f)
		return dst[:0]
	}
	sub := scanner{b: r.b, i: v.off}
	out, err := sub.levels(dst[:0], r.scratch)
	if err != nil {
		r.fail(err, f)
	}
	return out
}
