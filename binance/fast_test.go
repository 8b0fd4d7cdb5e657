package binance

import (
	"testing"
)

// generalDecode decodes with the general scanner only, as Decode did before
// the fast path.
func generalDecode(d *Decoder, frame []byte, m *Message) error {
	if err := d.decode(frame, m); err != nil {
		return withKind(err, d.seenKind(frame))
	}
	return nil
}

// checkFastAgainstGeneral fails when the fast path accepts frame and the
// general path does not, or gives another Message. It reports whether the
// fast path took the frame.
func checkFastAgainstGeneral(t testing.TB, fd, gd *Decoder, frame []byte) bool {
	t.Helper()
	var fm, gm Message
	took := fd.fast(frame, &fm)
	gerr := generalDecode(gd, frame, &gm)
	if !took {
		// Decode must then be exactly the general path.
		var dm Message
		derr := fd.Decode(frame, &dm)
		if (derr == nil) != (gerr == nil) || (derr != nil && derr.Error() != gerr.Error()) {
			t.Fatalf("Decode error %v, general %v\nframe: %q", derr, gerr, frame)
		}
		if derr == nil {
			if diff := messageDiff(&dm, &gm); diff != "" {
				t.Fatalf("Decode differs from the general path: %s\nframe: %q", diff, frame)
			}
		}
		return false
	}
	if gerr != nil {
		t.Fatalf("fast path accepted a frame the general path refuses (%v)\nframe: %q", gerr, frame)
	}
	if diff := messageDiff(&fm, &gm); diff != "" {
		t.Fatalf("fast path differs from the general path: %s\nframe: %q", diff, frame)
	}
	return true
}

// TestFastPathTakesRealFrames: every trade, aggTrade, depthUpdate and
// bookTicker frame of the real recordings (both markets, both recorders)
// takes the fast path, and decodes to what the general path gives. The
// recordings test (TestRecordings) compares Decode, and so the fast path,
// with an independent encoding/json + math/big reference.
func TestFastPathTakesRealFrames(t *testing.T) {
	for _, file := range []string{
		"hft-spot-btcusdt-20240808.txt.gz",
		"hft-usdm-btcusdt-20240718.txt.gz",
		"cryptofeed-spot-10sym-20210405.txt.gz",
		"cryptofeed-usdm-5sym-20210405.txt.gz",
	} {
		t.Run(file, func(t *testing.T) {
			fd, gd := NewDecoder(), NewDecoder()
			byKind := map[Kind]int{}
			for _, r := range readRecording(t, file) {
				if r.snapshot {
					continue
				}
				var gm Message
				if err := generalDecode(gd, r.data, &gm); err != nil {
					continue // not a frame of ours (cryptofeed's own lines)
				}
				took := checkFastAgainstGeneral(t, fd, gd, r.data)
				switch gm.Kind {
				case KindTrade, KindAggTrade, KindDepthUpdate, KindBookTicker:
					if !took {
						t.Fatalf("line %d: a real %v frame missed the fast path: %.200q", r.line, gm.Kind, r.data)
					}
					byKind[gm.Kind]++
				}
			}
			if len(byKind) < 3 {
				t.Fatalf("only %v: the recording should hold at least three kinds", byKind)
			}
			t.Logf("fast path: %v", byKind)
		})
	}
}

// mutate returns the variants of frame a fuzzer would try first: every
// byte deleted, doubled, or replaced with one of the bytes that matter to
// JSON and to the fast path's assumptions.
func mutate(frame []byte, yield func([]byte)) {
	repl := []byte{'"', '\\', ' ', ',', ':', '{', '}', '[', ']', '0', '9', '.', '-', 'e', 'u', 0x1f}
	buf := make([]byte, 0, len(frame)+1)
	for i := range frame {
		yield(append(append(buf[:0], frame[:i]...), frame[i+1:]...))
		yield(append(append(buf[:0], frame[:i+1]...), frame[i:]...))
		for _, c := range repl {
			if c == frame[i] {
				continue
			}
			buf = append(buf[:0], frame...)
			buf[i] = c
			yield(buf)
		}
	}
	for n := 0; n < len(frame); n++ {
		yield(frame[:n]) // every truncation
	}
}

// TestFastMatchesGeneralOnMutatedFrames is the deterministic half of the
// differential test: real frames of every kind and market, each mutated
// at every byte; whenever the fast path takes a variant, the general path
// must accept it and give the same Message.
func TestFastMatchesGeneralOnMutatedFrames(t *testing.T) {
	seeds, _ := realSeeds(t)
	// One frame per kind and recording is enough for every byte position
	// of every layout (and keeps the test quick under -race).
	var frames [][]byte
	seen := map[string]bool{}
	for _, f := range seeds {
		var m Message
		if err := NewDecoder().Decode(f, &m); err != nil {
			t.Fatal(err)
		}
		key := m.Kind.String() + "/" + string(f[:min(len(f), 24)])
		if len(f) > 800 || seen[key] {
			continue
		}
		seen[key] = true
		frames = append(frames, f)
	}
	fd, gd := NewDecoder(), NewDecoder()
	var variants, took int
	for _, f := range frames {
		if !checkFastAgainstGeneral(t, fd, gd, f) {
			var m Message
			if err := fd.Decode(f, &m); err == nil && m.Kind != KindReply && m.Kind != KindError && m.Kind != KindUnknown {
				t.Fatalf("seed %q (%v) missed the fast path", f, m.Kind)
			}
		}
		mutate(f, func(v []byte) {
			variants++
			if checkFastAgainstGeneral(t, fd, gd, v) {
				took++
			}
		})
	}
	// Many mutations keep a valid frame (a digit for a digit): the fast
	// path must have been exercised on those, not only refused everything.
	if took < variants/20 {
		t.Fatalf("the fast path took %d of %d variants: the test does not exercise it", took, variants)
	}
	t.Logf("%d variants of %d real frames, %d taken by the fast path", variants, len(frames), took)
}

// FuzzFastMatchesGeneral: for any input, a frame the fast path takes is
// one the general path accepts with the same Message; on any other, Decode
// is the general path.
func FuzzFastMatchesGeneral(f *testing.F) {
	frames, _ := realSeeds(f)
	for _, fr := range frames {
		f.Add(fr)
	}
	for _, s := range []string{
		`{"stream":"x","data":{"u":1,"s":"X","b":"1","B":"2","a":"3","A":"4"}}`,
		`{"u":1,"s":"X","b":"1","B":"2","a":"3","A":"4","e":"trade"}`,
		`{"e":"trade","E":1,"s":"X","t":1,"p":"1","q":"1","T":1,"m":true,"t":2}`,
		`{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"pu":0,"b":[["1","1"]],"a":[[ "2" , "0" ]]}`,
		`{"e":"aggTrade","E":1,"s":"X","a":1,"p":"1","q":"1","f":1,"l":1,"T":1,"m":false,"M":null,"x":-1.5e3}`,
		`{"stream":"a\"b","data":{"e":"trade"}}`,
	} {
		f.Add([]byte(s))
	}
	fd, gd := NewDecoder(), NewDecoder()
	f.Fuzz(func(t *testing.T, frame []byte) {
		checkFastAgainstGeneral(t, fd, gd, frame)
	})
}
