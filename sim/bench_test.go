package sim

import (
	"context"
	"testing"
)

// BenchmarkReplayUnpaced measures one full unpaced replay of the 10-symbol
// spot recording to one client subscribed to every depth and bookTicker
// stream over a loopback WebSocket: ns/op is per event.
func BenchmarkReplayUnpaced(b *testing.B) {
	rec := mustLoad(b, spot10)
	path := "/stream?streams="
	for i, n := range rec.Symbols() {
		if i > 0 {
			path += "/"
		}
		l := lower(n)
		path += l + "@depth@100ms/" + l + "@bookTicker"
	}
	b.ReportAllocs()
	b.ResetTimer()
	events := 0
	for b.Loop() {
		b.StopTimer()
		s, err := New(Config{Recording: rec, Speed: -1, Paused: true})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		c := mustDial(b, s, path)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				if _, _, err := c.Read(context.Background()); err != nil {
					return
				}
			}
		}()
		b.StartTimer()
		s.Play()
		<-s.Done()
		b.StopTimer()
		events += rec.Events()
		s.Close()
		<-done
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

// BenchmarkEncodeDepth measures encoding the real depth events of one
// recorded symbol (AXSBNB).
func BenchmarkEncodeDepth(b *testing.B) {
	rec := mustLoad(b, spot10)
	sd := rec.syms[0]
	e := enc{kind: rec.market, sym: sd.name, pw: sd.priceW, qw: sd.qtyW}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		for i := range sd.depth {
			buf = e.depth(buf[:0], &sd.depth[i], shift{})
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(sd.depth)), "ns/event")
}
