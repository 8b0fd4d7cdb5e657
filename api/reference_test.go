package api_test

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"math/big"
	"os"
	"sort"
	"strings"
	"testing"
)

// reference is what an independent loop over the raw recording computes:
// plain encoding/json and math/big, none of orderflow's decoders or sums.
type reference struct {
	trades  []refTrade
	minutes map[int64]*refBucket // by minute start (Unix ms)
	buyVol  *big.Rat
	sellVol *big.Rat
	// book after every diff: price text -> qty, zero quantities removed
	bids, asks map[string]*big.Rat
	bookID     int64
	preRoll    int // trades before the sync point, which the simulator does not publish
	// frames is the top of the book after the first diff of every second
	// of event time E (the history's rule), oldest first.
	frames []refFrame
	// The snapshot's depth (its longer side's level count) and its worst
	// prices: where the book is certain (see depthflow.Tracker.Reset).
	snapLimit                  int
	snapWorstBid, snapWorstAsk *big.Rat
}

// refFrame is the top refFrameDepth levels of each side at event time E.
type refFrame struct {
	time, updateID int64
	bids, asks     [][2]string // price and qty as 8-decimal text, best first
}

const refFrameDepth = 20

type refTrade struct {
	id       int64
	t        int64
	price    *big.Rat
	qty      *big.Rat
	buy      bool // taker buy: m=false
	notional *big.Rat
	priceS   string
}

type refBucket struct {
	trades  int64
	buyVol  *big.Rat
	sellVol *big.Rat
}

func rat(t testing.TB, s string) *big.Rat {
	t.Helper()
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		t.Fatalf("reference: bad decimal %q", s)
	}
	return r
}

// loadReference reads the hftbacktest files: trades of the @trade stream,
// the one REST snapshot and the depth diffs after it.
func loadReference(t testing.TB, files []string) *reference {
	t.Helper()
	ref := &reference{minutes: map[int64]*refBucket{}, buyVol: new(big.Rat), sellVol: new(big.Rat),
		bids: map[string]*big.Rat{}, asks: map[string]*big.Rat{}}
	type frame struct {
		Stream string          `json:"stream"`
		Data   json.RawMessage `json:"data"`
		// snapshot body
		LastUpdateID int64       `json:"lastUpdateId"`
		Bids         [][2]string `json:"bids"`
		Asks         [][2]string `json:"asks"`
	}
	type trade struct {
		ID int64  `json:"t"`
		P  string `json:"p"`
		Q  string `json:"q"`
		T  int64  `json:"T"`
		M  bool   `json:"m"`
		// "M" (best match) must be named too: encoding/json matches keys
		// case-insensitively unless an exact match exists.
		BestMatch bool `json:"M"`
	}
	type depth struct {
		U  int64       `json:"U"`
		Uf int64       `json:"u"`
		B  [][2]string `json:"b"`
		A  [][2]string `json:"a"`
	}
	haveSnap, bridged := false, false
	// scaled holds each price key as an integer of 1e-8 units, for
	// ordering the levels of the frames quickly.
	scaled := map[string]int64{}
	set := func(side map[string]*big.Rat, lv [][2]string) {
		for _, l := range lv {
			q := rat(t, l[1])
			key := rat(t, l[0]).FloatString(8)
			if _, ok := scaled[key]; !ok {
				n := new(big.Rat).Mul(rat(t, key), big.NewRat(100_000_000, 1))
				scaled[key] = n.Num().Int64()
			}
			if q.Sign() == 0 {
				delete(side, key)
			} else {
				side[key] = q
			}
		}
	}
	var lines []string
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(zr)
		sc.Buffer(make([]byte, 1<<20), 8<<20)
		for sc.Scan() {
			_, js, ok := strings.Cut(sc.Text(), " ")
			if !ok {
				t.Fatalf("reference: line without a space in %s", name)
			}
			lines = append(lines, js)
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		zr.Close()
		f.Close()
	}
	// Pass 1: the snapshot (a few diffs are recorded before it).
	for _, js := range lines {
		if strings.HasPrefix(js, `{"lastUpdateId"`) {
			var fr frame
			if err := json.Unmarshal([]byte(js), &fr); err != nil {
				t.Fatal(err)
			}
			haveSnap = true
			ref.bookID = fr.LastUpdateID
			set(ref.bids, fr.Bids)
			set(ref.asks, fr.Asks)
			break
		}
	}
	if !haveSnap {
		t.Fatal("reference: no snapshot in the recording")
	}
	// Pass 2: diffs past the snapshot in file order, trades from the
	// first of them on.
	for _, js := range lines {
		var fr frame
		if err := json.Unmarshal([]byte(js), &fr); err != nil {
			t.Fatalf("reference: %v", err)
		}
		switch {
		case fr.Stream == "":
		case strings.HasSuffix(fr.Stream, "@trade"):
			if !bridged {
				// The simulator publishes from the recording's sync
				// point on (the first diff past the snapshot, in file
				// order): earlier trades are its pre-roll.
				ref.preRoll++
				continue
			}
			var tr trade
			if err := json.Unmarshal(fr.Data, &tr); err != nil {
				t.Fatal(err)
			}
			rt := refTrade{id: tr.ID, t: tr.T, price: rat(t, tr.P), qty: rat(t, tr.Q), buy: !tr.M}
			rt.notional = new(big.Rat).Mul(rt.price, rt.qty)
			rt.priceS = rt.price.FloatString(8)
			ref.trades = append(ref.trades, rt)
			m := tr.T / 60000 * 60000
			b := ref.minutes[m]
			if b == nil {
				b = &refBucket{buyVol: new(big.Rat), sellVol: new(big.Rat)}
				ref.minutes[m] = b
			}
			b.trades++
			if rt.buy {
				b.buyVol.Add(b.buyVol, rt.qty)
				ref.buyVol.Add(ref.buyVol, rt.qty)
			} else {
				b.sellVol.Add(b.sellVol, rt.qty)
				ref.sellVol.Add(ref.sellVol, rt.qty)
			}
		case strings.Contains(fr.Stream, "@depth"):
			var d depth
			if err := json.Unmarshal(fr.Data, &d); err != nil {
				t.Fatal(err)
			}
			if d.Uf <= ref.bookID {
				continue
			}
			set(ref.bids, d.B)
			set(ref.asks, d.A)
			ref.bookID = d.Uf
			bridged = true
			// E through a map: the event also has "e", which encoding/json
			// would match to an "E" field case-insensitively.
			var keys map[string]json.RawMessage
			if err := json.Unmarshal(fr.Data, &keys); err != nil {
				t.Fatal(err)
			}
			var e int64
			if err := json.Unmarshal(keys["E"], &e); err != nil {
				t.Fatalf("reference: depth event time: %v", err)
			}
			if n := len(ref.frames); n == 0 || e/1000 > ref.frames[n-1].time/1000 {
				ref.frames = append(ref.frames, refFrame{time: e, updateID: d.Uf,
					bids: keyTop(ref.bids, scaled, true), asks: keyTop(ref.asks, scaled, false)})
			}
		}
	}
	return ref
}

// topLevels returns the best n levels of a side, best first.
func topLevels(side map[string]*big.Rat, n int, bids bool) [][2]*big.Rat {
	var out [][2]*big.Rat
	for p, q := range side {
		r, _ := new(big.Rat).SetString(p)
		out = append(out, [2]*big.Rat{r, q})
	}
	sort.Slice(out, func(i, j int) bool {
		c := out[i][0].Cmp(out[j][0])
		if bids {
			return c > 0
		}
		return c < 0
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// keyTop returns the best refFrameDepth levels of a side as 8-decimal
// price and qty text, best first.
func keyTop(side map[string]*big.Rat, scaled map[string]int64, bids bool) [][2]string {
	type kv struct {
		p int64
		k string
	}
	ls := make([]kv, 0, len(side))
	for k := range side {
		ls = append(ls, kv{scaled[k], k})
	}
	sort.Slice(ls, func(i, j int) bool {
		if bids {
			return ls[i].p > ls[j].p
		}
		return ls[i].p < ls[j].p
	})
	ls = ls[:min(len(ls), refFrameDepth)]
	out := make([][2]string, len(ls))
	for i, l := range ls {
		out[i] = [2]string{l.k, side[l.k].FloatString(8)}
	}
	return out
}
