package bus

import (
	"context"
	"log/slog"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/orderflow/orderflow/engine"
	"github.com/orderflow/orderflow/engine/enginetest"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/service"
)

// sinkSource hands its sink to the test and waits for the end of the run.
type sinkSource struct{ got chan *service.Sink }

func (s *sinkSource) Name() string { return "fuzz" }

func (s *sinkSource) Run(ctx context.Context, sink *service.Sink) error {
	s.got <- sink
	<-ctx.Done()
	return ctx.Err()
}

// FuzzSourceHandle feeds arbitrary message bodies on a symbol's trades,
// book.delta and book.snapshot subjects to the source's handler, which
// drives a running service: nothing may panic, and what cannot be applied
// is counted. Seeds are the messages a publisher sends for the first
// events of a real recording.
func FuzzSourceHandle(f *testing.F) {
	_, file, _, _ := runtime.Caller(0)
	rec := filepath.Join(filepath.Dir(file), "..", "testdata", "binance", "cryptofeed-spot-10sym-20210405.txt.gz")
	const sym = "DENTUSDT"
	var seeds int
	add := func(t Topic, data []byte) {
		if seeds < 40 {
			seeds++
			f.Add(uint8(t), data)
		}
	}
	if _, err := enginetest.Publish(engine.Config{}, []string{rec}, enginetest.Outputs{
		Trade: func(s *engine.Symbol, t *market.Trade) {
			if s.Name == sym {
				add(TopicTrades, AppendTrade(nil, market.Spot, t))
			}
		},
		Book: func(s *engine.Symbol, snap *market.DepthSnapshot, _, _ fixed.Dec) {
			if s.Name == sym {
				add(TopicBookSnapshot, AppendBookSnapshot(nil, market.Spot, sym, 0, s.Book(), ReasonSync))
			}
		},
		Delta: func(s *engine.Symbol, u *market.DepthUpdate) {
			if s.Name == sym {
				add(TopicBookDelta, AppendBookDelta(nil, market.Spot, sym, u))
			}
		},
	}); err != nil {
		f.Fatal(err)
	}
	if seeds == 0 {
		f.Fatal("no seed from the recording")
	}
	ss := &sinkSource{got: make(chan *service.Sink, 1)}
	svc, err := service.New(service.Config{Symbols: []string{sym}, Source: ss, LogTrades: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := svc.Stop(ctx); err != nil {
			f.Error(err)
		}
	})
	sink := <-ss.got
	src := &Source{cfg: SourceConfig{MaxHeld: 100, HoldTime: 5 * time.Second}, log: slog.New(slog.DiscardHandler)}
	symSink, ok := sink.Symbol(sym)
	if !ok {
		f.Fatal("no sink for the symbol")
	}
	h := newHandler(src, sink, symSink, market.Spot)
	subjects := []string{Subject(market.Spot, sym, TopicTrades), Subject(market.Spot, sym, TopicBookDelta), Subject(market.Spot, sym, TopicBookSnapshot)}
	f.Fuzz(func(t *testing.T, topic uint8, data []byte) {
		before := src.Stats()
		h.handle(subjects[int(topic)%len(subjects)], data)
		after := src.Stats()
		if after.Messages != before.Messages+1 {
			t.Fatalf("message not counted: %+v -> %+v", before, after)
		}
		if synced, id := sink.Book(sym); synced && id < 0 {
			t.Fatalf("book at update id %d", id)
		}
	})
}
