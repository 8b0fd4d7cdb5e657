package bus_test

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/orderflow/orderflow/bus"
	"github.com/orderflow/orderflow/dirlock"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/stacktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testBus is an embedded server with the ORDERFLOW stream and a client.
type testBus struct {
	srv    *bus.Embedded
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
}

// mustBus starts an embedded server on a free loopback port with a file
// store under a temporary directory, closed at cleanup.
func mustBus(tb testing.TB, sc bus.StreamConfig) *testBus {
	tb.Helper()
	return mustBusOn(tb, tb.TempDir(), sc)
}

// mustBusAt starts an embedded server on an existing data directory with
// the default stream.
func mustBusAt(tb testing.TB, dir string) *testBus {
	tb.Helper()
	return mustBusOn(tb, dir, bus.StreamConfig{})
}

func mustBusOn(tb testing.TB, dir string, sc bus.StreamConfig) *testBus {
	tb.Helper()
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{DataDir: dir, Port: -1, Logger: stacktest.Logger(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := bus.Connect(ctx, srv.ClientURL(), bus.ConnectConfig{Logger: stacktest.Logger(tb)})
	if err != nil {
		srv.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		nc.Close()
		srv.Close()
	})
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	st, err := bus.EnsureStream(ctx, js, sc)
	if err != nil {
		tb.Fatal(err)
	}
	return &testBus{srv: srv, nc: nc, js: js, stream: st}
}

// stored is one message read back from the stream.
type stored struct {
	subject string
	seq     uint64
	id      string
	data    []byte
}

// readAll reads every message of the stream on filter, in stream order,
// with an ordered consumer.
func readAll(tb testing.TB, b *testBus, filter string) []stored {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	info, err := b.stream.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		tb.Fatal(err)
	}
	var want uint64
	for _, n := range info.State.Subjects {
		want += n
	}
	if want == 0 {
		return nil
	}
	cons, err := b.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		tb.Fatal(err)
	}
	out := make([]stored, 0, want)
	for uint64(len(out)) < want {
		batch, err := cons.Fetch(int(min(want-uint64(len(out)), 1000)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			tb.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				tb.Fatal(err)
			}
			out = append(out, stored{subject: m.Subject(), seq: md.Sequence.Stream, id: m.Headers().Get(jetstream.MsgIDHeader), data: m.Data()})
			n++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			tb.Fatal(err)
		}
		if n == 0 {
			tb.Fatalf("%s: read %d of %d messages, then nothing", filter, len(out), want)
		}
	}
	return out
}

// recTrade is a trade read straight from a recording, with its decimals
// as written on the wire.
type recTrade struct {
	ID         int64
	Price, Qty string
	BuyerMaker bool
	Time       int64
	EventTime  int64
}

// recordedTrades reads the trades an hftbacktest recording ("<local ns>
// <frame>" lines, gzip) publishes after its sync point, with
// encoding/json: an independent path from the simulator, the binance
// decoder and the bus. As Binance's procedure (and the simulator) has it,
// the sync point is the first depth event that reaches the snapshot's
// lastUpdateId (spot: u > lastUpdateId; USD-M: u >= lastUpdateId); trades
// recorded before it are history, not stream. lastU is the u of the last
// depth event.
func recordedTrades(tb testing.TB, file string, usdm bool) (trades []recTrade, lastU int64) {
	tb.Helper()
	f, err := os.Open(file)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	// line holds what the test needs of a line. The frame's "data" is
	// read key by key: encoding/json matches keys case-insensitively, and
	// Binance's frames have both "m" and "M", "t" and "T", "e" and "E".
	type line struct {
		LastID int64
		E      string
		T, U   int64
		P, Q   string
		M      bool
		TT, EE int64
	}
	parse := func(frame []byte) (line, error) {
		var l line
		var top struct {
			LastID int64                      `json:"lastUpdateId"`
			Data   map[string]json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(frame, &top); err != nil {
			return l, err
		}
		l.LastID = top.LastID
		for k, dst := range map[string]any{"e": &l.E, "t": &l.T, "u": &l.U, "p": &l.P, "q": &l.Q, "m": &l.M, "T": &l.TT, "E": &l.EE} {
			if raw, ok := top.Data[k]; ok {
				if err := json.Unmarshal(raw, dst); err != nil {
					return l, fmt.Errorf("%q: %w", k, err)
				}
			}
		}
		return l, nil
	}
	var lines []line
	lid := int64(-1)
	for sc.Scan() {
		_, frame, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		l, err := parse([]byte(frame))
		if err != nil {
			tb.Fatalf("%s: %v", file, err)
		}
		if l.LastID != 0 && lid < 0 {
			lid = l.LastID
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		tb.Fatal(err)
	}
	if lid < 0 {
		tb.Fatalf("%s: no depth snapshot", file)
	}
	syncAt := -1
	for i, l := range lines {
		if l.E == "depthUpdate" && (l.U > lid || usdm && l.U == lid) {
			syncAt = i
			break
		}
	}
	if syncAt < 0 {
		tb.Fatalf("%s: no depth event reaches the snapshot", file)
	}
	var out []recTrade
	for _, l := range lines[syncAt+1:] {
		if l.E == "depthUpdate" {
			lastU = l.U
		}
		if l.E == "trade" {
			out = append(out, recTrade{ID: l.T, Price: l.P, Qty: l.Q, BuyerMaker: l.M, Time: l.TT, EventTime: l.EE})
		}
	}
	if len(out) == 0 {
		tb.Fatalf("%s: no trades", file)
	}
	return out, lastU
}

// sameDec compares two decimal texts as exact rationals.
func sameDec(a, b string) bool {
	x, ok1 := new(big.Rat).SetString(a)
	y, ok2 := new(big.Rat).SetString(b)
	return ok1 && ok2 && x.Cmp(y) == 0
}

// TestEmbeddedStoreLocked: a second embedded server on the same data
// directory is refused (the server itself does not lock its store), and
// the directory is free again once the first has closed; what the first
// stored is still there.
func TestEmbeddedStoreLocked(t *testing.T) {
	dir := t.TempDir()
	first, err := bus.StartEmbedded(bus.EmbeddedConfig{DataDir: dir, Port: -1, Logger: stacktest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := bus.Connect(ctx, first.ClientURL(), bus.ConnectConfig{Logger: stacktest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bus.EnsureStream(ctx, js, bus.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	subj := bus.Subject(market.Spot, "BTCUSDT", bus.TopicTrades)
	if _, err := js.Publish(ctx, subj, []byte("{}"), jetstream.WithMsgID("spot.BTCUSDT.t.1")); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	if second, err := bus.StartEmbedded(bus.EmbeddedConfig{DataDir: dir, Port: -1, Logger: stacktest.Logger(t)}); !errors.Is(err, dirlock.ErrLocked) {
		if second != nil {
			second.Close()
		}
		t.Fatalf("second server on the same store: %v; want dirlock.ErrLocked", err)
	}
	first.Close()
	again := mustBusAt(t, dir)
	info, err := again.stream.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Subjects[subj] != 1 {
		t.Fatalf("after a restart the stream holds %v on %s, want the 1 message stored before", info.State.Subjects, subj)
	}
}
