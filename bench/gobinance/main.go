// Command gobinance is the peer baseline of `orderflow bench --baseline`:
// the same recordings processed the way a Go user of
// github.com/adshao/go-binance/v2 would process them, timed the same way
// orderflow's pipeline is timed.
//
// What it does per record, so the comparison is honest (PERFORMANCE.md has
// the side-by-side table):
//
//   - Frames are decoded with encoding/json into go-binance's own event types
//     (WsCombinedTradeEvent, WsAggTradeEvent, WsCombinedBookTickerEvent); a
//     depth diff, which go-binance cannot unmarshal with encoding/json
//     (its Bid/Ask are structs, the wire has arrays), is decoded into an
//     equivalent struct and converted to []binance.Bid/[]binance.Ask. With
//     -decoder=simplejson, depth frames and snapshots are decoded the way
//     go-binance's own combined depth handler and DepthService do
//     (github.com/bitly/go-simplejson), which is slower.
//   - The stream type is found by a byte search in the envelope, not a
//     second decode: the cheapest honest dispatch.
//   - The book is a map[float64]float64 per side with the best price kept
//     incrementally (a rescan only when the best level is removed); it is
//     synchronized by Binance's spot procedure (snapshot lastUpdateId,
//     U/u continuity) and checked for a crossed top after every applied
//     diff, as orderflow's book.Syncer does.
//   - Every trade updates float64 totals (buy/sell volume, notional, delta,
//     high/low/last), a 10,000-trade history ring, one-second buckets for
//     the rolling windows, 1-minute bars with a footprint map, a session
//     volume profile map, and the large-trade threshold (99th percentile of
//     the last 1,000 sizes, kept in a sorted slice).
//   - bookTicker prices and quantities are parsed and kept per symbol.
//
// Recordings are read and split into records in memory first (timed
// apart), then processed in rounds with fresh state until -duration has
// passed. The output (-json) carries the same end-of-run summary as
// orderflow's, so the caller can check both sides did the same work.
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gobinance:", err)
		os.Exit(1)
	}
}

// Result is the JSON the program prints; field names match what
// orderflow's bench package reads.
type Result struct {
	Decoder       string        `json:"decoder"`
	Records       int           `json:"records"`
	Bytes         int64         `json:"bytes"`
	LoadNanos     int64         `json:"load_ns"`
	Rounds        int           `json:"rounds"`
	Events        int64         `json:"events"`
	WallNanos     int64         `json:"wall_ns"`
	CPUNanos      int64         `json:"cpu_ns"`
	Mallocs       uint64        `json:"mallocs"`
	AllocBytes    uint64        `json:"alloc_bytes"`
	PeakHeapInuse uint64        `json:"peak_heap_inuse"`
	Sys           uint64        `json:"sys"`
	GCs           uint32        `json:"gcs"`
	Rejected      int64         `json:"rejected"`
	Summaries     []SymbolTotal `json:"summaries"`
}

// SymbolTotal is one symbol's end state (the fields of orderflow's
// bench.Summary).
type SymbolTotal struct {
	Symbol     string `json:"symbol"`
	Trades     int64  `json:"trades"`
	BuyVolume  string `json:"buy_volume"`
	SellVolume string `json:"sell_volume"`
	VWAP       string `json:"vwap"`
	BestBid    string `json:"best_bid"`
	BestAsk    string `json:"best_ask"`
	BidLevels  int    `json:"bid_levels"`
	AskLevels  int    `json:"ask_levels"`
	Applied    uint64 `json:"depth_applied"`
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gobinance", flag.ContinueOnError)
	fs.SetOutput(stderr)
	jsonOut := fs.Bool("json", false, "print the result as JSON")
	duration := fs.Duration("duration", 0, "keep replaying (fresh state each round) for this long")
	minRounds := fs.Int("min-rounds", 1, "least number of rounds")
	decoder := fs.String("decoder", "stdjson", "depth decoding: stdjson or simplejson (go-binance's own handler path)")
	cpus := fs.Int("cpus", 0, "GOMAXPROCS (0: leave as is)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("no recording given")
	}
	if *decoder != "stdjson" && *decoder != "simplejson" {
		return fmt.Errorf("-decoder %q: want stdjson or simplejson", *decoder)
	}
	if *cpus > 0 {
		runtime.GOMAXPROCS(*cpus)
	}
	start := time.Now()
	recs, nbytes, err := load(fs.Args())
	if err != nil {
		return err
	}
	res := &Result{Decoder: *decoder, Records: len(recs), Bytes: nbytes, LoadNanos: time.Since(start).Nanoseconds()}
	measure(recs, nbytes, *decoder == "simplejson", *duration, max(*minRounds, 1), res)
	if *jsonOut {
		return json.NewEncoder(stdout).Encode(res)
	}
	fmt.Fprintf(stdout, "go-binance baseline (%s): %d records, %d rounds, %.0f events/s (CPU), %.2f allocs/event, %d rejected\n",
		res.Decoder, res.Records, res.Rounds, float64(res.Events)/(float64(res.CPUNanos)/1e9),
		float64(res.Mallocs)/float64(res.Events), res.Rejected)
	for _, s := range res.Summaries {
		fmt.Fprintf(stdout, "  %+v\n", s)
	}
	return nil
}

// record is one recorded message: a combined-stream frame or a REST depth
// snapshot body.
type record struct {
	snapshot bool
	symbol   string // snapshots: the symbol of the file's frames
	local    int64
	data     []byte
}

// load reads hftbacktest collector files ("<local_ns> <json>" lines, gzip
// or plain) into memory, merged by local time like orderflow's corpus.
func load(files []string) ([]record, int64, error) {
	var all []record
	var nbytes int64
	for _, f := range files {
		recs, err := loadFile(f)
		if err != nil {
			return nil, 0, err
		}
		for _, r := range recs {
			nbytes += int64(len(r.data))
		}
		all = append(all, recs...)
	}
	slices.SortStableFunc(all, func(a, b record) int {
		switch {
		case a.local < b.local:
			return -1
		case a.local > b.local:
			return 1
		}
		return 0
	})
	return all, nbytes, nil
}

func loadFile(path string) ([]record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		r = zr
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var recs []record
	var sym string
	var pendingSnap []int // snapshots seen before any frame named the symbol
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		sp := bytes.IndexByte(b, ' ')
		if sp <= 0 {
			return nil, fmt.Errorf("%s:%d: not an hftbacktest line", path, line)
		}
		local, err := strconv.ParseInt(string(b[:sp]), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: local time: %w", path, line, err)
		}
		data := bytes.Clone(b[sp+1:])
		rec := record{local: local, data: data}
		if i := bytes.Index(data, []byte(`"stream":"`)); i >= 0 {
			name := data[i+len(`"stream":"`):]
			if at := bytes.IndexByte(name, '@'); at > 0 {
				sym = strings.ToUpper(string(name[:at]))
				for _, j := range pendingSnap {
					recs[j].symbol = sym
				}
				pendingSnap = nil
			}
		} else {
			rec.snapshot, rec.symbol = true, sym
			if sym == "" {
				pendingSnap = append(pendingSnap, len(recs))
			}
		}
		recs = append(recs, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return recs, nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure runs rounds with fresh state, sampling memory like orderflow's
// RunPipeline does.
func measure(recs []record, nbytes int64, simple bool, d time.Duration, minRounds int, res *Result) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m0, b0, g0 := ms.Mallocs, ms.TotalAlloc, ms.NumGC
	res.PeakHeapInuse = ms.HeapInuse
	cpu0 := cpuTime()
	start := time.Now()
	var p *pipeline
	for res.Rounds < minRounds || time.Since(start) < d {
		p = newPipeline(simple)
		for i := range recs {
			if err := p.handle(&recs[i]); err != nil {
				p.rejected++
			}
			if i&8191 == 8191 {
				runtime.ReadMemStats(&ms)
				res.PeakHeapInuse = max(res.PeakHeapInuse, ms.HeapInuse)
			}
		}
		res.Rounds++
		res.Events += int64(len(recs))
		runtime.ReadMemStats(&ms)
		res.PeakHeapInuse = max(res.PeakHeapInuse, ms.HeapInuse)
	}
	res.WallNanos = time.Since(start).Nanoseconds()
	res.CPUNanos = (cpuTime() - cpu0).Nanoseconds()
	runtime.ReadMemStats(&ms)
	res.Mallocs, res.AllocBytes, res.GCs, res.Sys = ms.Mallocs-m0, ms.TotalAlloc-b0, ms.NumGC-g0, ms.Sys
	res.Rejected = p.rejected
	res.Summaries = p.summaries()
}
