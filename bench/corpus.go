// Package bench measures orderflow's pipeline on real recordings: throughput
// of decode, book and metrics per event, allocations, memory, the same work
// done the way a go-binance user would (a separate module, run as a child
// process), frame-to-metric latency over loopback WebSocket, and scale to
// many symbols against the simulator.
//
// The measuring code keeps what it times apart from what it does not:
// recordings are decompressed and split into frames in memory first (Load,
// timed on its own), then the pipeline runs on that memory alone.
//
// Concurrency: Load and RunPipeline start no goroutines. Latency and Scale
// start servers and a service; each returns only after everything it
// started has ended.
package bench

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/orderflow/orderflow/capture"
	"github.com/orderflow/orderflow/market"
)

// DefaultFiles are the recordings the figures in PERFORMANCE.md use: two
// contiguous files of Binance spot BTCUSDT (trade, depth@100ms, bookTicker
// and one REST snapshot), relative to the repository root.
var DefaultFiles = []string{
	"testdata/binance/hft-spot-btcusdt-20240808.txt.gz",
	"testdata/binance/hft-spot-btcusdt-20240809.txt.gz",
}

// Record is one recorded message held in memory.
type Record struct {
	Kind        capture.RecordKind
	Symbol      string // set for snapshots
	Market      market.Kind
	MarketKnown bool
	Local       int64 // recorder receive time, Unix ns (merge order only)
	Data        []byte
}

// Corpus is a set of recordings decompressed and split into records in
// memory, in local receive order across files.
type Corpus struct {
	Files   []string
	Records []Record
	// Bytes is the sum of the records' payload sizes: the JSON the pipeline
	// reads (what MB/s is computed from).
	Bytes int64
	// FileBytes is the size of the files on disk (compressed).
	FileBytes int64
	// Frames and Snapshots count records by kind.
	Frames, Snapshots int
	// LoadTime is the wall time of reading, decompressing and splitting,
	// measured apart from the pipeline.
	LoadTime time.Duration
}

// Load reads files fully into memory. Records of several files are merged
// by local receive time (stable, so one symbol's contiguous files stay in
// file order), as replay does.
func Load(files []string) (*Corpus, error) {
	if len(files) == 0 {
		return nil, errors.New("bench: no files")
	}
	start := time.Now()
	c := &Corpus{Files: slices.Clone(files)}
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			c.FileBytes += st.Size()
		}
		if err := c.readFile(f); err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(c.Records, func(a, b Record) int { return cmp.Compare(a.Local, b.Local) })
	c.LoadTime = time.Since(start)
	return c, nil
}

func (c *Corpus) readFile(path string) error {
	r, err := capture.Open(path, capture.OpenOptions{})
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer r.Close()
	// One arena per file keeps the frames contiguous in memory, as a
	// socket read buffer would, and costs one allocation per growth
	// instead of one per record.
	var arena []byte
	type span struct{ off, n int }
	var spans []span
	first := len(c.Records)
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		var le *capture.LineError
		if errors.As(err, &le) {
			// A malformed line is the recording's problem, not the
			// benchmark's: fail so figures never silently cover less data.
			return fmt.Errorf("bench: %s: %w", path, err)
		}
		if err != nil {
			return fmt.Errorf("bench: %s: %w", path, err)
		}
		spans = append(spans, span{len(arena), len(rec.Data)})
		arena = append(arena, rec.Data...)
		c.Records = append(c.Records, Record{Kind: rec.Kind, Symbol: rec.Symbol, Market: rec.Market,
			MarketKnown: rec.MarketKnown, Local: rec.Local})
		c.Bytes += int64(len(rec.Data))
		if rec.Kind == capture.Snapshot {
			c.Snapshots++
		} else {
			c.Frames++
		}
	}
	for i, s := range spans {
		c.Records[first+i].Data = arena[s.off : s.off+s.n : s.off+s.n]
	}
	return nil
}
