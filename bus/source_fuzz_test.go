package bus

import (
	"context"
	"log/slog"
	"testing"
	"time"

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
	const sym = "DENTUSDT"
	msgs, _ := publishedMessages(f, "cryptofeed-spot-10sym-20210405.txt.gz", market.Spot)
	for _, m := range msgs[sym][:min(40, len(msgs[sym]))] {
		f.Add(uint8(m.topic), m.data)
	}
	if len(msgs[sym]) == 0 {
		f.Fatal("no seed from the recording")
	}
	src := &Source{cfg: SourceConfig{MaxHeld: 100, HoldTime: 5 * time.Second}, log: slog.New(slog.DiscardHandler)}
	_, h := sinkService(f, market.Spot, sym, src)
	subjects := []string{Subject(market.Spot, sym, TopicTrades), Subject(market.Spot, sym, TopicBookDelta), Subject(market.Spot, sym, TopicBookSnapshot)}
	f.Fuzz(func(t *testing.T, topic uint8, data []byte) {
		before := src.Stats()
		h.handle(subjects[int(topic)%len(subjects)], data)
		after := src.Stats()
		if after.Messages != before.Messages+1 {
			t.Fatalf("message not counted: %+v -> %+v", before, after)
		}
		if synced, id := h.book(sym); synced && id < 0 {
			t.Fatalf("book at update id %d", id)
		}
	})
}
