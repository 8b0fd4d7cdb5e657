package push_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/orderflow/orderflow/client"
	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/flow"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/push"
	"github.com/orderflow/orderflow/service"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recordedTrades reads the real BTCUSDT @trade frames of the recording.
func recordedTrades(t *testing.T) []market.Trade {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	f, err := os.Open(filepath.Join(filepath.Dir(file), "..", "testdata", "binance", "hft-spot-btcusdt-20240808.txt.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []market.Trade
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	for sc.Scan() {
		_, js, _ := strings.Cut(sc.Text(), " ")
		if !strings.Contains(js, "@trade") {
			continue
		}
		var fr struct {
			Data struct {
				Ev string `json:"e"` // named so "E" is matched exactly
				E  int64  `json:"E"`
				T  int64  `json:"T"`
				ID int64  `json:"t"`
				P  string `json:"p"`
				Q  string `json:"q"`
				M  bool   `json:"m"`
				BM bool   `json:"M"` // named so "m" is matched exactly
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(js), &fr); err != nil {
			t.Fatal(err)
		}
		d := fr.Data
		out = append(out, market.Trade{Symbol: "BTCUSDT", ID: d.ID, FirstID: d.ID, LastID: d.ID, Price: fixed.MustParse(d.P),
			Qty: fixed.MustParse(d.Q), Time: d.T, EventTime: d.E, BuyerMaker: d.M})
	}
	if len(out) != 9757 {
		t.Fatalf("%d trades in the 08 file, SOURCES.md says 9,757", len(out))
	}
	return out
}

func newHub(t *testing.T, opts push.Options) (*push.Hub, func()) {
	t.Helper()
	svc, err := service.New(service.Config{Symbols: []string{"BTCUSDT"}})
	if err != nil {
		t.Fatal(err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := push.New(svc, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	return h, func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestSlowSubscriberBoundedMemory publishes the recording's trades ten
// times (97,570 events) to a subscriber that never reads: it keeps exactly
// its queue, every other message is counted as skipped, and the heap does
// not grow with the number of events.
func TestSlowSubscriberBoundedMemory(t *testing.T) {
	trades := recordedTrades(t)
	const queue = 64
	h, stop := newHub(t, push.Options{Queue: queue, Inbox: 1 << 10, MaxBehind: time.Hour})
	defer stop()
	slow, err := h.Subscribe([]string{"BTCUSDT"}, push.Trades)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	before := heapInuse()
	var published int
	for round := 0; round < 10; round++ {
		for i := range trades {
			h.Publish(service.Event{Symbol: "BTCUSDT", Trade: &trades[i]})
			published++
			if i%512 == 0 {
				// Let the hub drain its inbox now and then, as a live feed
				// does; what it cannot take is counted, not queued.
				runtime.Gosched()
			}
		}
	}
	st := h.Stats()
	waitFor(t, "the hub to take every event", func() bool {
		st = h.Stats()
		return st.Sent+st.Dropped+st.InboxDropped == uint64(published)
	})
	after := heapInuse()
	t.Logf("heap in use %d -> %d (%+d) after %d events; %+v", before, after, int64(after)-int64(before), published, st)
	if st.Sent != queue || len(slow.C()) != queue {
		t.Errorf("sent %d, queued %d: want exactly the queue (%d)", st.Sent, len(slow.C()), queue)
	}
	if got := slow.Dropped(); uint64(got) != st.Dropped || got == 0 {
		t.Errorf("subscriber dropped %d, hub %d", got, st.Dropped)
	}
	if growth := int64(after) - int64(before); growth > 1<<20 {
		t.Errorf("heap grew %d bytes for a subscriber holding %d messages", growth, queue)
	}
	// The writer tells the client how many it missed, once.
	if n := slow.TakeDropped(); n != slow.Dropped() {
		t.Errorf("TakeDropped %d, want %d", n, slow.Dropped())
	}
	if n := slow.TakeDropped(); n != 0 {
		t.Errorf("second TakeDropped %d, want 0", n)
	}
	// The queued messages are the first trades, in order, exact.
	first := <-slow.C()
	var m struct {
		Type string       `json:"type"`
		Data client.Trade `json:"data"`
	}
	if err := json.Unmarshal(first, &m); err != nil {
		t.Fatal(err)
	}
	if m.Type != "trade" || m.Data.ID != trades[0].ID || m.Data.Price != client.Dec(trades[0].Price) || m.Data.Side != "sell" {
		t.Errorf("first message %s, want trade %d at %s sell (m=true)", first, trades[0].ID, trades[0].Price)
	}
}

// TestBehindSubscriberDisconnected: a subscriber whose queue stays full
// for MaxBehind is disconnected and counted; a reading one is not.
func TestBehindSubscriberDisconnected(t *testing.T) {
	trades := recordedTrades(t)
	h, stop := newHub(t, push.Options{Queue: 8, MaxBehind: 50 * time.Millisecond})
	defer stop()
	slow, _ := h.Subscribe(nil, push.Trades)
	defer slow.Close()
	fast, _ := h.Subscribe([]string{"BTCUSDT"}, push.Trades|push.Book)
	defer fast.Close()
	other, _ := h.Subscribe([]string{"ETHUSDT"}, push.AllTopics)
	defer other.Close()
	got := 0
	for i := 0; ; i++ {
		h.Publish(service.Event{Symbol: "BTCUSDT", Trade: &trades[i%len(trades)]})
		for len(fast.C()) > 0 {
			<-fast.C()
			fast.Wrote()
			got++
		}
		if slow.Kicked() {
			break
		}
		if i > 1_000_000 {
			t.Fatal("slow subscriber never disconnected")
		}
		time.Sleep(100 * time.Microsecond)
	}
	select {
	case <-slow.Done():
	case <-time.After(time.Second):
		t.Fatal("Done not closed after the disconnect")
	}
	if fast.Kicked() || other.Kicked() || len(other.C()) != 0 || got == 0 {
		t.Errorf("fast kicked %v (got %d), other kicked %v with %d messages", fast.Kicked(), got, other.Kicked(), len(other.C()))
	}
	if st := h.Stats(); st.Kicked != 1 || st.Subscribers != 2 {
		t.Errorf("stats %+v: want 1 kicked, 2 left", st)
	}
}

func TestParseTopics(t *testing.T) {
	cases := []struct {
		name, in string
		want     push.Topic
		err      bool
	}{
		{"EmptyIsAll", "", push.AllTopics, false},
		{"Some", "trades, BOOK", push.Trades | push.Book, false},
		{"Unknown", "trades,news", 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := push.ParseTopics(c.in)
			if (err != nil) != c.err || got != c.want {
				t.Errorf("ParseTopics(%q) = %v, %v", c.in, got, err)
			}
		})
	}
	if s := (push.Trades | push.Signals).String(); s != "trades,signals" {
		t.Errorf("String %q", s)
	}
}

func TestStoppedHubRefusesSubscribers(t *testing.T) {
	h, stop := newHub(t, push.Options{})
	s, err := h.Subscribe(nil, push.AllTopics)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	select {
	case <-s.Done():
	default:
		t.Fatal("subscriber not disconnected when the hub stopped")
	}
	if _, err := h.Subscribe(nil, push.Trades); err != push.ErrStopped {
		t.Errorf("Subscribe after stop: %v, want ErrStopped", err)
	}
	if err := h.Run(context.Background()); err == nil {
		t.Error("a second Run succeeded")
	}
}

// BenchmarkPublish measures the service's event hook, which runs under the
// data lock for every trade: with nobody listening it must cost nothing,
// with a listener only a copy and a channel send.
func BenchmarkPublish(b *testing.B) {
	tr := market.Trade{Symbol: "BTCUSDT", ID: 3735683259, Price: fixed.MustParse("61837.63"), Qty: fixed.MustParse("0.02"),
		Time: 1723161255342, EventTime: 1723161255343, BuyerMaker: true}
	for _, subs := range []int{0, 1} {
		b.Run(map[int]string{0: "NoSubscriber", 1: "OneSubscriber"}[subs], func(b *testing.B) {
			svc, err := service.New(service.Config{Symbols: []string{"BTCUSDT"}})
			if err != nil {
				b.Fatal(err)
			}
			h := push.New(svc, push.Options{Logger: slog.New(slog.DiscardHandler), Inbox: 1 << 16})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- h.Run(ctx) }()
			defer func() { cancel(); <-done }()
			if subs == 1 {
				s, _ := h.Subscribe(nil, push.Trades)
				defer s.Close()
				go func() {
					for {
						select {
						case <-s.C():
						case <-s.Done():
							return
						}
					}
				}()
			}
			ev := service.Event{Symbol: "BTCUSDT", Trade: &tr}
			b.ReportAllocs()
			for b.Loop() {
				h.Publish(ev)
			}
		})
	}
}

// TestRevisedBarPushed: bars of the recording built with a watermark run
// ahead of the trades (so late trades amend closed bars) are published as
// the service does; a close goes out without the revised field (the JSON
// of before), a revision as a "bar" message with revised and late_trades,
// with only the signals the bar gained (none sent twice).
func TestRevisedBarPushed(t *testing.T) {
	trades := recordedTrades(t)
	h, stop := newHub(t, push.Options{Queue: 1 << 14, Inbox: 1 << 14, MaxBehind: time.Hour})
	defer stop()
	sub, err := h.Subscribe([]string{"BTCUSDT"}, push.Bars|push.Signals)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	type sent struct {
		revised bool
		start   int64
		late    int64
		signals int
	}
	var want []sent
	seen := map[string]bool{} // signals sent, by bar and what they say
	newSignals := func(b *flow.Bar) int {
		n := 0
		for _, s := range client.BarSignals(b) {
			k := fmt.Sprint(b.Start, s.Kind, s.Side, s.Price, s.High, s.Levels)
			if !seen[k] {
				seen[k] = true
				n++
			}
		}
		return n
	}
	gained := 0
	cfg := flow.Config{
		OnBarClose: func(iv time.Duration, b *flow.Bar) {
			want = append(want, sent{start: b.Start, signals: newSignals(b)})
			h.Publish(service.Event{Symbol: "BTCUSDT", Bar: b, Interval: iv})
		},
		OnBarRevised: func(iv time.Duration, b *flow.Bar) {
			n := newSignals(b)
			gained += n
			want = append(want, sent{revised: true, start: b.Start, late: b.LateTrades, signals: n})
			h.Publish(service.Event{Symbol: "BTCUSDT", Bar: b, Interval: iv, Revised: true})
		},
	}
	tk := flow.NewTracker("BTCUSDT", cfg)
	for i := range trades {
		if err := tk.Add(&trades[i]); err != nil {
			t.Fatal(err)
		}
		tk.Advance(trades[i].Time + 3000) // the watermark 3 s ahead: bars close before their last trades
	}
	tk.Flush()
	revisions := 0
	for _, w := range want {
		if w.revised {
			revisions++
		}
	}
	if revisions == 0 {
		t.Fatal("no bar was revised")
	}
	for i, w := range want {
		var m struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		next := func() {
			t.Helper()
			select {
			case raw := <-sub.C():
				if err := json.Unmarshal(raw, &m); err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("message %d not received", i)
			}
		}
		next()
		var b client.Bar
		if err := json.Unmarshal(m.Data, &b); err != nil || m.Type != "bar" {
			t.Fatalf("message %d: type %q err %v, want a bar", i, m.Type, err)
		}
		if b.Start != w.start || b.Revised != w.revised || b.LateTrades != w.late || !b.Closed {
			t.Fatalf("message %d: bar %d revised %v late %d closed %v, want bar %d revised %v late %d", i, b.Start, b.Revised, b.LateTrades, b.Closed, w.start, w.revised, w.late)
		}
		if !w.revised && (bytes.Contains(m.Data, []byte(`"revised"`)) || bytes.Contains(m.Data, []byte(`"late_trades"`))) {
			t.Fatalf("message %d: a bar closed in time carries %s", i, m.Data)
		}
		for range w.signals {
			next()
			if m.Type != "signal" {
				t.Fatalf("message %d: %q, want the bar's signal", i, m.Type)
			}
		}
	}
	t.Logf("%d bar messages, %d of them revisions; revisions gained %d signals", len(want), revisions, gained)
}
