package binance

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// Real frames, one per kind, cut from the recordings in ../testdata/binance.
const (
	spotDepthFrame      = `{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255308,"s":"BTCUSDT","U":50093239203,"u":50093239207,"b":[["55653.87000000","0.00000000"]],"a":[["61838.04000000","0.32332000"],["61844.30000000","0.40163000"],["61862.50000000","0.05019000"],["61862.51000000","0.00000000"]]}}`
	usdmDepthFrame      = `{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1721347201585,"T":1721347201533,"s":"BTCUSDT","U":4984034747463,"u":4984034747463,"pu":4984033952967,"b":[],"a":[["64020.40","0.000"],["64024.70","0.005"]]}}`
	spotTradeFrame      = `{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}}`
	usdmTradeFrame      = `{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161256322,"T":1723161256322,"s":"BTCUSDT","t":5266583935,"p":"61800.30","q":"0.006","X":"MARKET","m":false}}`
	spotAggTradeFrame   = `{"stream":"zilusdt@aggTrade","data":{"e":"aggTrade","E":1617647603484,"s":"ZILUSDT","a":18938405,"p":"0.21448000","q":"2062.90000000","f":23806928,"l":23806928,"T":1617647603483,"m":false,"M":true}}`
	usdmAggTradeFrame   = `{"stream":"sandusdt@aggTrade","data":{"e":"aggTrade","E":1617647797640,"a":9445517,"s":"SANDUSDT","p":"0.69067","q":"369","f":12821738,"l":12821738,"T":1617647797485,"m":true}}`
	spotBookTickerFrame = `{"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}`
	usdmBookTickerFrame = `{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":4984028370881,"s":"BTCUSDT","b":"63943.90","B":"46.371","a":"63944.00","A":"0.095","T":1721347022507,"E":1721347022507}}`
	replyFrame          = `{"result":null,"id":1}`
	listReplyFrame      = `{"result":["btcusdt@aggTrade","btcusdt@depth@100ms"],"id":"list-7"}`
	errorFrame          = `{"error":{"code":2,"msg":"Invalid request: property name must be a string"},"id":null}`
	codeFrame           = `{"code":-1121,"msg":"Invalid symbol."}`
	shutdownFrame       = `{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1723161255308}}`
	unknownFrame        = `{"stream":"btcusdt@markPrice","data":{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT","p":"11794.15000000","i":"11784.62659091","P":"11784.25641265","r":"0.00038167","T":1562306400000}}`
)

// allFrames lists every sample frame with its kind.
var allFrames = []struct {
	name, frame string
	kind        Kind
}{
	{"SpotDepth", spotDepthFrame, KindDepthUpdate},
	{"USDMDepth", usdmDepthFrame, KindDepthUpdate},
	{"SpotTrade", spotTradeFrame, KindTrade},
	{"USDMTrade", usdmTradeFrame, KindTrade},
	{"SpotAggTrade", spotAggTradeFrame, KindAggTrade},
	{"USDMAggTrade", usdmAggTradeFrame, KindAggTrade},
	{"SpotBookTicker", spotBookTickerFrame, KindBookTicker},
	{"USDMBookTicker", usdmBookTickerFrame, KindBookTicker},
	{"Reply", replyFrame, KindReply},
	{"ListReply", listReplyFrame, KindReply},
	{"Error", errorFrame, KindError},
	{"CodeError", codeFrame, KindError},
	{"ServerShutdown", shutdownFrame, KindServerShutdown},
	{"Unknown", unknownFrame, KindUnknown},
}

func mustDecode(tb testing.TB, d *Decoder, frame string) *Message {
	tb.Helper()
	var m Message
	if err := d.Decode([]byte(frame), &m); err != nil {
		tb.Fatalf("Decode(%s): %v", frame, err)
	}
	return &m
}

func TestDecodeKinds(t *testing.T) {
	d := NewDecoder()
	for _, f := range allFrames {
		t.Run(f.name, func(t *testing.T) {
			m := mustDecode(t, d, f.frame)
			if m.Kind != f.kind {
				t.Fatalf("Kind = %v, want %v", m.Kind, f.kind)
			}
		})
	}
}

func TestDecodeFields(t *testing.T) {
	d := NewDecoder()
	dec := fixed.MustParse
	t.Run("USDMDepth", func(t *testing.T) {
		m := mustDecode(t, d, usdmDepthFrame)
		want := market.DepthUpdate{Symbol: "BTCUSDT", EventTime: 1721347201585, TransactTime: 1721347201533,
			FirstID: 4984034747463, FinalID: 4984034747463, PrevFinalID: 4984033952967, HasPrev: true}
		got := m.Depth
		got.Bids, got.Asks = nil, nil
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Depth = %+v, want %+v", got, want)
		}
		if len(m.Depth.Bids) != 0 || len(m.Depth.Asks) != 2 || m.Depth.Asks[1] != (market.Level{Price: dec("64024.7"), Qty: dec("0.005")}) {
			t.Errorf("levels = %v / %v", m.Depth.Bids, m.Depth.Asks)
		}
		if m.Stream != "btcusdt@depth@0ms" || m.Event != "depthUpdate" || m.EventTime != 1721347201585 {
			t.Errorf("Stream/Event/EventTime = %q %q %d", m.Stream, m.Event, m.EventTime)
		}
	})
	t.Run("AggTrade", func(t *testing.T) {
		m := mustDecode(t, d, spotAggTradeFrame)
		want := market.Trade{Symbol: "ZILUSDT", ID: 18938405, FirstID: 23806928, LastID: 23806928,
			Price: dec("0.21448"), Qty: dec("2062.9"), Time: 1617647603483, EventTime: 1617647603484, Aggregated: true}
		if m.Trade != want {
			t.Errorf("Trade = %+v, want %+v", m.Trade, want)
		}
		if m.Trade.TakerSide() != market.Buy {
			t.Errorf("m=false must be a taker buy")
		}
	})
	t.Run("Trade", func(t *testing.T) {
		m := mustDecode(t, d, usdmTradeFrame)
		want := market.Trade{Symbol: "BTCUSDT", ID: 5266583935, FirstID: 5266583935, LastID: 5266583935,
			Price: dec("61800.3"), Qty: dec("0.006"), Time: 1723161256322, EventTime: 1723161256322}
		if m.Trade != want {
			t.Errorf("Trade = %+v, want %+v", m.Trade, want)
		}
	})
	t.Run("USDMBookTicker", func(t *testing.T) {
		m := mustDecode(t, d, usdmBookTickerFrame)
		want := market.BookTicker{Symbol: "BTCUSDT", UpdateID: 4984028370881, BidPrice: dec("63943.9"), BidQty: dec("46.371"),
			AskPrice: dec("63944"), AskQty: dec("0.095"), EventTime: 1721347022507, TransactTime: 1721347022507}
		if m.Ticker != want {
			t.Errorf("Ticker = %+v, want %+v", m.Ticker, want)
		}
	})
	t.Run("SpotBookTickerHasNoEvent", func(t *testing.T) {
		m := mustDecode(t, d, spotBookTickerFrame)
		if m.Event != "" || m.EventTime != 0 || m.Ticker.UpdateID != 50093239212 {
			t.Errorf("Event %q EventTime %d UpdateID %d", m.Event, m.EventTime, m.Ticker.UpdateID)
		}
	})
	t.Run("Replies", func(t *testing.T) {
		for _, c := range []struct{ frame, id, result string }{
			{replyFrame, "1", "null"},
			{listReplyFrame, `"list-7"`, `["btcusdt@aggTrade","btcusdt@depth@100ms"]`},
			{`{"id":null,"result":null}`, "null", "null"},
			{`{ "result" : [ ] , "id" : 9223372036854775807 }`, "9223372036854775807", "[ ]"},
		} {
			m := mustDecode(t, d, c.frame)
			if m.Kind != KindReply || string(m.Reply.ID) != c.id || string(m.Reply.Result) != c.result {
				t.Errorf("%s: %v id %s result %s", c.frame, m.Kind, m.Reply.ID, m.Reply.Result)
			}
		}
	})
	t.Run("Errors", func(t *testing.T) {
		m := mustDecode(t, d, errorFrame)
		if m.Kind != KindError || m.Reply.Code != 2 || m.Reply.Msg != "Invalid request: property name must be a string" || string(m.Reply.ID) != "null" {
			t.Errorf("error frame: %+v", m.Reply)
		}
		m = mustDecode(t, d, codeFrame)
		if m.Kind != KindError || m.Reply.Code != -1121 || m.Reply.Msg != "Invalid symbol." || m.Reply.ID != nil {
			t.Errorf("code frame: %+v", m.Reply)
		}
	})
	t.Run("ServerShutdown", func(t *testing.T) {
		m := mustDecode(t, d, shutdownFrame)
		if m.Kind != KindServerShutdown || m.EventTime != 1723161255308 || m.Stream != "!serverShutdown" {
			t.Errorf("%v %d %q", m.Kind, m.EventTime, m.Stream)
		}
	})
	t.Run("UnknownEventIsNotAnError", func(t *testing.T) {
		m := mustDecode(t, d, unknownFrame)
		if m.Kind != KindUnknown || m.Event != "markPriceUpdate" || m.EventTime != 1562305380000 {
			t.Errorf("%v %q %d", m.Kind, m.Event, m.EventTime)
		}
	})
	t.Run("OldSpotTradeOrderIDsSkipped", func(t *testing.T) {
		m := mustDecode(t, d, `{"e":"trade","E":1,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","b":88,"a":50,"T":2,"m":true,"M":true}`)
		if m.Kind != KindTrade || m.Trade.ID != 12345 || m.Trade.Qty != dec("100") {
			t.Errorf("%+v", m.Trade)
		}
	})
	t.Run("EscapesInStrings", func(t *testing.T) {
		m := mustDecode(t, d, `{"\u0065":"trade","E":1,"s":"BTC\u0055SDT","t":1,"p":"\u0031.5","q":"2","T":2,"m":false}`)
		if m.Kind != KindTrade || m.Trade.Symbol != "BTCUSDT" || m.Trade.Price != dec("1.5") {
			t.Errorf("%v %+v", m.Kind, m.Trade)
		}
	})
	t.Run("WhitespaceEverywhere", func(t *testing.T) {
		m := mustDecode(t, d, " \n{ \"stream\" : \"x@depth\" ,\r\n\t\"data\" : { \"e\" : \"depthUpdate\" , \"E\" : 1 , \"s\" : \"X\" , \"U\" : 1 , \"u\" : 2 , \"b\" : [ [ \"1\" , \"2\" ] ] , \"a\" : [ ] } } \n")
		if m.Kind != KindDepthUpdate || len(m.Depth.Bids) != 1 || m.Depth.Bids[0].Qty != dec("2") {
			t.Errorf("%v %+v", m.Kind, m.Depth)
		}
	})
	t.Run("ExtraLevelElementsSkipped", func(t *testing.T) {
		// Old spot REST and stream levels carried a third, ignored "[]".
		m := mustDecode(t, d, `{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["4.00000000","431.00000000",[]]],"a":[]}`)
		if len(m.Depth.Bids) != 1 || m.Depth.Bids[0].Qty != dec("431") {
			t.Errorf("%+v", m.Depth.Bids)
		}
	})
}

// TestDecodeFieldOrder shuffles the fields of real frames (and the
// envelope's keys) and checks that the decoded message does not change.
func TestDecodeFieldOrder(t *testing.T) {
	d := NewDecoder()
	for _, f := range allFrames {
		if f.kind == KindReply || f.kind == KindError {
			continue
		}
		t.Run(f.name, func(t *testing.T) {
			want := mustDecode(t, d, f.frame)
			ref, err := refUnmarshal([]byte(f.frame))
			if err != nil {
				t.Fatal(err)
			}
			data, ok := ref["data"].(map[string]any)
			if !ok {
				t.Fatal("not an envelope")
			}
			stream := ref["stream"].(string)
			keys := orderedKeys(t, f.frame)
			for r := range 12 {
				perm := rotate(keys, r)
				payload := "{" + joinFields(t, f.frame, perm) + "}"
				_ = data
				for _, frame := range []string{
					`{"stream":"` + stream + `","data":` + payload + `}`,
					`{"data":` + payload + `,"stream":"` + stream + `"}`,
				} {
					got := mustDecode(t, d, frame)
					if diff := messageDiff(want, got); diff != "" {
						t.Fatalf("order %v: %s", perm, diff)
					}
				}
			}
		})
	}
}

// orderedKeys returns the keys of an envelope's data object in frame order.
func orderedKeys(t *testing.T, frame string) []string {
	t.Helper()
	fields := splitDataFields(t, frame)
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f[:strings.Index(f, ":")]
	}
	return keys
}

// splitDataFields splits the data object of an envelope into its top-level
// `"k":v` members, using the scanner (its correctness is what the rest of
// the tests establish against encoding/json).
func splitDataFields(t *testing.T, frame string) []string {
	t.Helper()
	i := strings.Index(frame, `"data":`) + len(`"data":`)
	s := scanner{b: []byte(frame), i: i}
	if _, err := s.open('{', '}', "{"); err != nil {
		t.Fatal(err)
	}
	var out []string
	for {
		start := s.i
		if _, _, err := s.key(); err != nil {
			t.Fatal(err)
		}
		if err := s.skip(1); err != nil {
			t.Fatal(err)
		}
		out = append(out, frame[start:s.i])
		more, err := s.next('}')
		if err != nil {
			t.Fatal(err)
		}
		if !more {
			return out
		}
	}
}

func joinFields(t *testing.T, frame string, keys []string) string {
	byKey := map[string]string{}
	for _, f := range splitDataFields(t, frame) {
		byKey[f[:strings.Index(f, ":")]] = f
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = byKey[k]
	}
	return strings.Join(parts, ",")
}

// rotate returns a permutation of keys: reversed for odd r, rotated by r.
func rotate(keys []string, r int) []string {
	out := make([]string, len(keys))
	for i := range keys {
		out[i] = keys[(i+r)%len(keys)]
	}
	if r%2 == 1 {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out
}

// TestDecodeMalformed: every broken frame returns a *DecodeError naming the
// field, never a panic.
func TestDecodeMalformed(t *testing.T) {
	const aggHead = `{"e":"aggTrade","E":1,"s":"X",`
	const aggTail = `"f":1,"l":1,"T":1,"m":true}`
	cases := []struct {
		name, frame string
		want        string // substring of the error text
		is          error
	}{
		{"BadDigitInDepthLevel",
			`{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["1","1"],["2","2"],["3","3"],["4.0x","1"]],"a":[]}`,
			`decode depthUpdate: field "b"[3][0]: invalid digit at offset 81`, fixed.ErrSyntax}, // offset of "4.0x"
		{"BadDigitInQty", `{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[],"a":[["1","-"]]}`, `field "a"[0][1]: invalid digit`, fixed.ErrSyntax},
		{"BadDigitWhenEventComesLast", `{"b":[["1","1"],["x","1"]],"a":[],"E":1,"s":"X","U":1,"u":2,"e":"depthUpdate"}`, `decode depthUpdate: field "b"[1][0]: invalid digit`, fixed.ErrSyntax},
		{"NineDecimals", aggHead + `"a":1,"p":"0.000000001","q":"1",` + aggTail, `decode aggTrade: field "p": more than 8 fractional digits`, fixed.ErrPrecision},
		{"PriceOutOfRange", aggHead + `"a":1,"p":"92233720369","q":"1",` + aggTail, `field "p": value out of range`, fixed.ErrRange},
		{"PriceIsNumber", aggHead + `"a":1,"p":1.5,"q":"1",` + aggTail, `field "p": wrong JSON type: want decimal string, got non-integer number`, ErrType},
		{"EmptyPrice", aggHead + `"a":1,"p":"","q":"1",` + aggTail, `field "p": empty number`, fixed.ErrEmpty},
		{"PriceWithExponent", aggHead + `"a":1,"p":"1e5","q":"1",` + aggTail, `field "p": invalid digit`, fixed.ErrSyntax},
		{"IDOverflow", aggHead + `"a":9223372036854775808,"p":"1","q":"1",` + aggTail, `field "a": integer out of range`, ErrRange},
		{"IDHugeOverflow", aggHead + `"a":123456789012345678901234567890,"p":"1","q":"1",` + aggTail, `field "a": integer out of range`, ErrRange},
		{"IDIsString", aggHead + `"a":"1","p":"1","q":"1",` + aggTail, `field "a": wrong JSON type: want integer, got string`, ErrType},
		{"IDIsFraction", aggHead + `"a":1.0,"p":"1","q":"1",` + aggTail, `field "a": wrong JSON type: want integer, got non-integer number`, ErrType},
		{"IDWithExponent", aggHead + `"a":1e3,"p":"1","q":"1",` + aggTail, `field "a": wrong JSON type`, ErrType},
		{"IDLeadingZero", aggHead + `"a":01,"p":"1","q":"1",` + aggTail, `field "a": invalid JSON: leading zero in number`, ErrSyntax},
		{"MakerIsString", aggHead + `"a":1,"p":"1","q":"1","f":1,"l":1,"T":1,"m":"true"}`, `field "m": wrong JSON type: want bool, got string`, ErrType},
		{"SymbolIsNumber", `{"e":"aggTrade","E":1,"s":5,"a":1,"p":"1","q":"1",` + aggTail, `field "s": wrong JSON type: want string, got number`, ErrType},
		{"EmptyEvent", `{"stream":"x","data":{"e":"","E":1}}`, `decode: field "e": unrecognized frame: empty event type at offset 26`, ErrUnknownFrame},
		{"EventIsNumber", `{"e":1,"E":1}`, `field "e": wrong JSON type: want string, got number`, ErrType},
		{"MissingFields", `{"e":"aggTrade","E":1,"s":"X","p":"1","q":"1","T":1,"m":true}`, `decode aggTrade: missing field "a", "f", "l" in object at offset 0`, ErrMissingField},
		{"MissingDepthSides", `{"stream":"x","data":{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2}}`, `decode depthUpdate: missing field "a", "b" in object at offset 21`, ErrMissingField},
		{"MissingTickerQty", `{"u":1,"s":"X","b":"1","a":"2","A":"3"}`, `decode bookTicker: missing field "B"`, ErrMissingField},
		{"MissingShutdownTime", `{"e":"serverShutdown"}`, `decode serverShutdown: missing field "E"`, ErrMissingField},
		{"ReplyWithoutID", `{"result":null}`, `decode reply: missing field "id"`, ErrMissingField},
		{"ReplyIDIsObject", `{"result":null,"id":{}}`, `decode reply: field "id": wrong JSON type: want integer, string or null, got object`, ErrType},
		{"ErrorWithoutMsg", `{"error":{"code":2},"id":1}`, `decode error: missing field "msg"`, ErrMissingField},
		{"ErrorCodeIsString", `{"error":{"code":"2","msg":"x"},"id":1}`, `decode error: field "error"."code": wrong JSON type: want integer, got string`, ErrType},
		{"CodeFrameWithoutMsg", `{"code":-1121}`, `decode error: missing field "msg"`, ErrMissingField},
		{"DepthSideIsString", `{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":"1","a":[]}`, `decode depthUpdate: field "b": wrong JSON type: want array of [price, qty], got string`, ErrType},
		{"DepthLevelIsObject", `{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[{}],"a":[]}`, `field "b"[0]: wrong JSON type: want [price, qty], got object`, ErrType},
		{"DepthLevelOneElement", `{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["1"]],"a":[]}`, `field "b"[0]: wrong JSON type: level has 1 element`, ErrType},
		{"DepthLevelEmpty", `{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[[]],"a":[]}`, `field "b"[0][0]: invalid JSON`, ErrSyntax},
		{"DepthLevelNumbers", `{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[[1,2]],"a":[]}`, `field "b"[0][0]: wrong JSON type: want decimal string, got number`, ErrType},
		{"BookTickerPriceIsArray", `{"u":1,"s":"X","b":[],"B":"1","a":"2","A":"3"}`, `decode bookTicker: field "b": wrong JSON type`, ErrType},
		{"UnknownObject", `{"foo":1}`, `decode: unrecognized frame`, ErrUnknownFrame},
		{"EmptyObject", `{}`, `unrecognized frame`, ErrUnknownFrame},
		{"EmptyEnvelopeData", `{"stream":"x","data":{}}`, `unrecognized frame`, ErrUnknownFrame},
		{"NotAnObject", `[1,2]`, `decode: wrong JSON type: want object, got array at offset 0`, ErrType},
		{"Empty", ``, `decode: unexpected end of input at offset 0`, ErrUnexpectedEOF},
		{"OnlySpace", "  \n", `unexpected end of input at offset 3`, ErrUnexpectedEOF},
		{"TrailingGarbage", replyFrame + `x`, `data after the top-level value`, ErrSyntax},
		{"TwoObjects", replyFrame + replyFrame, `data after the top-level value`, ErrSyntax},
		{"MissingColon", `{"result" null,"id":1}`, `invalid JSON: found 'n', want ':' after object key`, ErrSyntax},
		{"MissingComma", `{"result":null "id":1}`, `want ',' or '}'`, ErrSyntax},
		{"TrailingComma", `{"result":null,"id":1,}`, `want an object key`, ErrSyntax},
		{"SingleQuotes", `{'result':null}`, `want an object key`, ErrSyntax},
		{"BadLiteral", `{"result":nul,"id":1}`, `field "result": invalid JSON: invalid literal, want null`, ErrSyntax},
		{"InvalidUTF8", "{\"e\":\"tr\xde\",\"E\":1}", ``, nil}, // not validated: an unknown event
		{"BadEscapeSequence", `{"e":"tr\qde","E":1}`, `field "e": invalid JSON: bad escape \q`, ErrSyntax},
		{"BadUnicodeEscape", `{"e":"\u12G4","E":1}`, `bad \u escape`, ErrSyntax},
		{"ControlCharInString", "{\"e\":\"a\x01b\",\"E\":1}", `control character 0x01 in string`, ErrSyntax},
		{"UnterminatedString", `{"e":"aggTrade`, `unexpected end of input`, ErrUnexpectedEOF},
		{"SkippedFieldMalformed", `{"e":"trade","X":[1,}`, `decode trade: field "X": invalid JSON`, ErrSyntax},
		{"DeepNesting", `{"x":` + strings.Repeat("[", 100000) + `}`, `field "x": nesting too deep`, ErrTooDeep},
		{"DeepNestingInData", `{"stream":"x","data":{"e":"trade","z":` + strings.Repeat(`{"a":`, 1000) + `}}`, `decode trade: field "z": nesting too deep`, ErrTooDeep},
		{"StreamIsNumber", `{"stream":1,"data":{}}`, `field "stream": wrong JSON type`, ErrType},
		{"NumberMinusOnly", `{"result":-,"id":1}`, `invalid character`, ErrSyntax},
		{"NumberDotNoDigits", `{"result":1.,"id":1}`, `no digits after '.'`, ErrSyntax},
		{"NumberExpNoDigits", `{"result":1e+,"id":1}`, `no digits in exponent`, ErrSyntax},
	}
	d := NewDecoder()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var m Message
			err := d.Decode([]byte(c.frame), &m)
			if c.want == "" && c.is == nil {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; decoded %v", m.Kind)
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T %v is not a *DecodeError", err, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error %q is not %v", err, c.is)
			}
		})
	}
}

// TestDecodeTruncated cuts real frames of every kind at every byte: each
// prefix must fail with a *DecodeError, and a decoder that saw them must
// still decode the whole frame afterwards.
func TestDecodeTruncated(t *testing.T) {
	d := NewDecoder()
	var m Message
	for _, f := range allFrames {
		t.Run(f.name, func(t *testing.T) {
			for i := 0; i < len(f.frame); i++ {
				err := d.Decode([]byte(f.frame[:i]), &m)
				var de *DecodeError
				if !errors.As(err, &de) {
					t.Fatalf("prefix of %d bytes: error %v, want a *DecodeError", i, err)
				}
			}
			if err := d.Decode([]byte(f.frame), &m); err != nil || m.Kind != f.kind {
				t.Fatalf("whole frame after prefixes: %v %v", m.Kind, err)
			}
		})
	}
}

// TestDecodeErrorOffset: the offset points at the offending value.
func TestDecodeErrorOffset(t *testing.T) {
	frame := `{"e":"aggTrade","E":1,"s":"X","a":1,"p":"1.2.3","q":"1","f":1,"l":1,"T":1,"m":true}`
	err := NewDecoder().Decode([]byte(frame), new(Message))
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("%v", err)
	}
	if want := strings.Index(frame, `"1.2.3"`); de.Offset != want || de.Field != `"p"` || de.Kind != "aggTrade" {
		t.Errorf("DecodeError %+v, want offset %d field \"p\" kind aggTrade", de, want)
	}
}

// TestDecodeAllocs asserts that steady-state decoding allocates nothing,
// for every kind.
func TestDecodeAllocs(t *testing.T) {
	d := NewDecoder()
	var m Message
	for _, f := range allFrames {
		t.Run(f.name, func(t *testing.T) {
			frame := []byte(f.frame)
			allocs := testing.AllocsPerRun(200, func() {
				if err := d.Decode(frame, &m); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("%v allocs per Decode, want 0", allocs)
			}
		})
	}
	t.Run("RecordedDepthFrames", func(t *testing.T) {
		frames, _ := sampleFrames(t, "hft-usdm-btcusdt-20240808.txt.gz", 50)
		depth := frames[KindDepthUpdate]
		for _, f := range depth { // grow the level slices to the largest frame
			if err := d.Decode(f, &m); err != nil {
				t.Fatal(err)
			}
		}
		i := 0
		allocs := testing.AllocsPerRun(500, func() {
			if err := d.Decode(depth[i%len(depth)], &m); err != nil {
				t.Fatal(err)
			}
			i++
		})
		if allocs != 0 {
			t.Errorf("%v allocs per Decode, want 0", allocs)
		}
	})
}

// TestInternBounded: hostile symbols cannot grow the intern table past its
// cap, and decoding stays correct past it.
func TestInternBounded(t *testing.T) {
	d := NewDecoder()
	var m Message
	for i := range maxInternEntries + 500 {
		frame := fmt.Sprintf(`{"u":%d,"s":"SYM%d","b":"1","B":"1","a":"2","A":"1"}`, i, i)
		if err := d.Decode([]byte(frame), &m); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("SYM%d", i); m.Ticker.Symbol != want {
			t.Fatalf("Symbol %q, want %q", m.Ticker.Symbol, want)
		}
	}
	if len(d.strs) > maxInternEntries {
		t.Errorf("intern table has %d entries, cap %d", len(d.strs), maxInternEntries)
	}
	long := strings.Repeat("L", maxInternLen+1)
	if err := d.Decode([]byte(`{"u":1,"s":"`+long+`","b":"1","B":"1","a":"2","A":"1"}`), &m); err != nil || m.Ticker.Symbol != long {
		t.Fatalf("long symbol: %v", err)
	}
	if _, ok := d.strs[long]; ok {
		t.Errorf("a string longer than %d bytes was interned", maxInternLen)
	}
}

// TestDecoderZeroValue: the zero Decoder works.
func TestDecoderZeroValue(t *testing.T) {
	var d Decoder
	if m := mustDecode(t, &d, spotTradeFrame); m.Trade.Symbol != "BTCUSDT" {
		t.Errorf("Symbol %q", m.Trade.Symbol)
	}
}

// TestDecodeReusesDepthSlices: a Message's level slices are reused, and
// nothing of a previous frame leaks into the next.
func TestDecodeReusesDepthSlices(t *testing.T) {
	d := NewDecoder()
	var m Message
	if err := d.Decode([]byte(spotDepthFrame), &m); err != nil {
		t.Fatal(err)
	}
	asks := &m.Depth.Asks[0]
	if err := d.Decode([]byte(usdmDepthFrame), &m); err != nil {
		t.Fatal(err)
	}
	if &m.Depth.Asks[0] != asks {
		t.Errorf("Asks slice was reallocated")
	}
	if len(m.Depth.Bids) != 0 || len(m.Depth.Asks) != 2 {
		t.Errorf("levels %d/%d, want 0/2", len(m.Depth.Bids), len(m.Depth.Asks))
	}
	if err := d.Decode([]byte(spotTradeFrame), &m); err != nil {
		t.Fatal(err)
	}
	if m.Depth.Symbol != "" || len(m.Depth.Bids)+len(m.Depth.Asks) != 0 || m.Stream != "btcusdt@trade" {
		t.Errorf("depth of the previous frame leaked: %+v", m.Depth)
	}
}

// TestDecodeDuplicateKeys: the last occurrence wins, as in encoding/json.
func TestDecodeDuplicateKeys(t *testing.T) {
	d := NewDecoder()
	m := mustDecode(t, d, `{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["1","1"],["2","2"]],"a":[],"b":[["3","3"]],"E":7}`)
	if len(m.Depth.Bids) != 1 || m.Depth.Bids[0].Price != fixed.MustParse("3") || m.EventTime != 7 {
		t.Errorf("%+v E=%d", m.Depth.Bids, m.EventTime)
	}
}

func TestKindString(t *testing.T) {
	for k := KindUnknown; k <= KindServerShutdown+1; k++ {
		if k.String() == "" {
			t.Errorf("Kind(%d) has no name", k)
		}
	}
}

// TestUnescapeMatchesEncodingJSON: string escapes decode as encoding/json
// decodes them, surrogate pairs and lone surrogates included.
func TestUnescapeMatchesEncodingJSON(t *testing.T) {
	for _, lit := range []string{
		`"plain"`, `"\"\\\/\b\f\n\r\t"`, `"\u0041\u00e9\u4e2d"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\ude00x"`,
		`"\ud83d\u0041"`, `"\uD83D\uDE00"`, `"a\u0000b"`, `"é中😀"`,
	} {
		var want string
		if err := json.Unmarshal([]byte(lit), &want); err != nil {
			t.Fatalf("%s: %v", lit, err)
		}
		s := scanner{b: []byte(lit)}
		start, end, _, err := s.str()
		if err != nil {
			t.Fatalf("%s: %v", lit, err)
		}
		if got := string(unescape(nil, s.b[start:end])); got != want {
			t.Errorf("unescape(%s) = %q, encoding/json %q", lit, got, want)
		}
	}
	// Through Decode: an escaped symbol, stream and error message.
	d := NewDecoder()
	m := mustDecode(t, d, `{"stream":"btc\u0075sdt@trade","data":{"e":"trade","E":1,"s":"BTC\u0055SDT","t":1,"p":"1","q":"2","T":2,"m":false}}`)
	if m.Stream != "btcusdt@trade" || m.Trade.Symbol != "BTCUSDT" {
		t.Errorf("%q %q", m.Stream, m.Trade.Symbol)
	}
	m = mustDecode(t, d, `{"code":-1,"msg":"tab\there \"q\"","id":"x\u0031"}`)
	if m.Kind != KindError || m.Reply.Msg != "tab\there \"q\"" || string(m.Reply.ID) != `"x\u0031"` {
		t.Errorf("%+v", m.Reply)
	}
}
