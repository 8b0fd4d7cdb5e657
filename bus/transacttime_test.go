package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/binance"
	"github.com/orderflow/orderflow/bus"
	"github.com/orderflow/orderflow/capture"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/service"
	"github.com/orderflow/orderflow/stacktest"
)

// rawDiff is a recorded diff's times read with encoding/json straight
// from the frame, independently of the project's decoder.
type rawDiff struct {
	E, T int64
	U    int64 `json:"u"`
}

// recordedDiffs returns the recording's depth diffs as the decoder reads
// them, with each one's E and T as encoding/json reads the frame.
func recordedDiffs(t *testing.T, file string, limit int) ([]market.DepthUpdate, []rawDiff) {
	t.Helper()
	r, err := capture.Open(stacktest.Testdata(file), capture.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	dec := binance.NewDecoder()
	var m binance.Message
	var ups []market.DepthUpdate
	var raws []rawDiff
	for limit <= 0 || len(ups) < limit {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Kind != capture.Frame {
			continue
		}
		var env struct {
			Data json.RawMessage `json:"data"`
		}
		data := rec.Data
		if json.Unmarshal(rec.Data, &env) == nil && len(env.Data) > 0 {
			data = env.Data
		}
		var raw struct {
			Event string `json:"e"`
			rawDiff
		}
		if err := json.Unmarshal(data, &raw); err != nil || raw.Event != "depthUpdate" {
			continue
		}
		if err := dec.Decode(rec.Data, &m); err != nil || m.Kind != binance.KindDepthUpdate {
			t.Fatalf("frame with a depthUpdate not decoded: %v", err)
		}
		u := m.Depth
		u.Bids, u.Asks = append([]market.Level(nil), u.Bids...), append([]market.Level(nil), u.Asks...)
		ups = append(ups, u)
		raws = append(raws, raw.rawDiff)
	}
	if len(ups) == 0 {
		t.Fatalf("%s: no depth diff", file)
	}
	return ups, raws
}

// TestBookDeltaCarriesTransactionTime: every book.delta of the real USD-M
// recording carries the frame's T as transaction_time next to its E as
// time (the two differ on some diffs, so T is not E copied), and decodes
// back to it; on spot, whose diffs have no T, the field is absent.
func TestBookDeltaCarriesTransactionTime(t *testing.T) {
	t.Run("USDM", func(t *testing.T) {
		ups, raws := recordedDiffs(t, "hft-usdm-btcusdt-20240718.txt.gz", 0)
		differ := 0
		var buf []byte
		for i := range ups {
			w := raws[i]
			if w.T <= 0 {
				t.Fatalf("diff u=%d: recorded T %d", w.U, w.T)
			}
			buf = bus.AppendBookDelta(buf[:0], market.USDM, "BTCUSDT", &ups[i])
			var got bus.BookDelta
			if err := bus.DecodeBookDelta(buf, &got); err != nil {
				t.Fatal(err)
			}
			if got.LastUpdateID != w.U || got.Time != w.E || got.TransactionTime != w.T {
				t.Fatalf("diff u=%d E=%d T=%d: message u=%d time=%d transaction_time=%d", w.U, w.E, w.T, got.LastUpdateID, got.Time, got.TransactionTime)
			}
			if w.E != w.T {
				differ++
			}
		}
		if differ == 0 {
			t.Fatalf("no diff of %d with E != T: the test cannot tell T from E", len(ups))
		}
		t.Logf("%d USD-M diffs, %d with E != T", len(ups), differ)
	})
	t.Run("Spot", func(t *testing.T) {
		ups, raws := recordedDiffs(t, "hft-spot-btcusdt-20240808.txt.gz", 2000)
		var buf []byte
		for i := range ups {
			if raws[i].T != 0 {
				t.Fatalf("spot diff u=%d with a T %d", raws[i].U, raws[i].T)
			}
			buf = bus.AppendBookDelta(buf[:0], market.Spot, "BTCUSDT", &ups[i])
			if strings.Contains(string(buf), "transaction_time") {
				t.Fatalf("spot message with a transaction_time: %s", buf)
			}
		}
	})
	t.Run("Refused", func(t *testing.T) {
		for _, m := range []string{
			`{"v":1,"type":"book.delta","market":"spot","symbol":"BTCUSDT","time":1,"first_update_id":1,"last_update_id":1,"transaction_time":1,"bids":[],"asks":[]}`,
			`{"v":1,"type":"book.delta","market":"usdm","symbol":"BTCUSDT","time":1,"first_update_id":1,"last_update_id":1,"transaction_time":-1,"bids":[],"asks":[]}`,
		} {
			var d bus.BookDelta
			if err := bus.DecodeBookDelta([]byte(m), &d); err == nil {
				t.Fatalf("accepted %s", m)
			}
		}
	})
}

// TestPublishedDeltaTransactionTime: real USD-M diffs hooked into a
// Publisher are stored in the stream with the frame's T.
func TestPublishedDeltaTransactionTime(t *testing.T) {
	ups, raws := recordedDiffs(t, "hft-usdm-btcusdt-20240718.txt.gz", 500)
	tb := mustBus(t, bus.StreamConfig{Memory: true})
	pub, err := bus.NewPublisher(tb.nc, bus.PublisherConfig{Market: market.USDM, Logger: stacktest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pctx, pcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- pub.Run(pctx) }()
	for i := range ups {
		pub.Hook(service.Event{Symbol: "BTCUSDT", Depth: &ups[i]})
	}
	pcancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := map[int64]rawDiff{}
	for _, w := range raws {
		want[w.U] = w
	}
	msgs := readAll(t, tb, bus.Subject(market.USDM, "BTCUSDT", bus.TopicBookDelta))
	if len(msgs) != len(want) {
		t.Fatalf("%d deltas stored, want %d", len(msgs), len(want))
	}
	for _, m := range msgs {
		var d bus.BookDelta
		if err := bus.DecodeBookDelta(m.data, &d); err != nil {
			t.Fatal(err)
		}
		w, ok := want[d.LastUpdateID]
		if !ok || d.TransactionTime != w.T || d.Time != w.E {
			t.Fatalf("stored delta u=%d time=%d transaction_time=%d; recorded %+v (found %v)", d.LastUpdateID, d.Time, d.TransactionTime, w, ok)
		}
	}
}
