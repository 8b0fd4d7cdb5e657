package capture

import (
	"bytes"
	"errors"
	"testing"

	"github.com/orderflow/orderflow/market"
)

// TestTradesRecordRoundTrip checks the record kinds only the service's
// captures hold (REST aggTrades, book reset): they are written and read
// back like the others, with their symbol and market.
func TestTradesRecordRoundTrip(t *testing.T) {
	recs := MustReadAll(t, dataPath("hft-spot-btcusdt-20240808.txt.gz"), OpenOptions{})
	var frame, snap *Record
	for i := range recs {
		switch {
		case recs[i].Kind == Frame && frame == nil:
			frame = &recs[i]
		case recs[i].Kind == Snapshot && snap == nil:
			snap = &recs[i]
		}
	}
	if frame == nil || snap == nil {
		t.Fatal("the recording has no frame or no snapshot")
	}
	// The example response of Binance's spot REST documentation
	// ("Compressed/Aggregate trades list"); the body is stored verbatim.
	body := []byte(`[{"a":26129,"p":"0.01633102","q":"4.70443515","f":27781,"l":27781,"T":1498793709153,"m":true,"M":true}]`)
	want := []Record{
		{Kind: Frame, Local: 1, Data: frame.Data, Market: market.Spot, MarketKnown: true},
		{Kind: Trades, Local: 2, Symbol: "BTCUSDT", Market: market.Spot, MarketKnown: true, Data: body},
		{Kind: Snapshot, Local: 3, Symbol: "BTCUSDT", Market: market.Spot, MarketKnown: true, Data: snap.Data},
		{Kind: BookReset, Local: 4, Symbol: "BTCUSDT", Market: market.Spot, MarketKnown: true, Data: []byte{}},
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	MustWriteAll(t, w, want)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	equalRecords(t, MustReadAllBytes(t, buf.Bytes(), OpenOptions{}), want)
}

// TestUnknownKindIsTorn checks that a record kind beyond Trades (a file
// from a newer build) stops the reader with ErrTorn after the records
// before it, instead of being handed on as a frame.
func TestUnknownKindIsTorn(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, WriterOptions{FlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	good := Record{Kind: Trades, Local: 1, Symbol: "BTCUSDT", Data: []byte(`[]`)}
	if err := w.Write(&good); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(&good); err != nil {
		t.Fatal(err)
	}
	w.raw[0] = byte(lastKind) + 1 // the second block's only record
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(bytes.NewReader(buf.Bytes()), "newer.ofcap", OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rec, err := r.Next()
	if err != nil || rec.Kind != Trades {
		t.Fatalf("first record: %+v, %v", rec, err)
	}
	if _, err := r.Next(); !errors.Is(err, ErrTorn) {
		t.Fatalf("unknown kind: got %v, want ErrTorn", err)
	}
}
