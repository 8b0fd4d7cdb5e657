package book

import (
	"iter"
	"sort"

	"github.com/orderflow/orderflow/market"
)

// HistoryOptions configures a History. The zero value means the defaults.
type HistoryOptions struct {
	// Interval is the exchange time between frames, ms (default 1000).
	Interval int64
	// Depth is the number of levels kept per side (default 20).
	Depth int
	// Capacity is the number of frames kept; the oldest is overwritten
	// when full (default 600: ten minutes at the default interval).
	Capacity int
}

// Frame is the top of a book at one moment.
type Frame struct {
	// Time is the exchange event time (E, ms) passed to Record.
	Time     int64
	UpdateID int64
	Bids     []market.Level // best first
	Asks     []market.Level // best first
}

// Clone returns a copy of f that does not share memory with the History.
func (f Frame) Clone() Frame {
	f.Bids = append([]market.Level(nil), f.Bids...)
	f.Asks = append([]market.Level(nil), f.Asks...)
	return f
}

// History keeps frames of the top levels of a book at a fixed interval of
// exchange time, in a bounded ring: for heatmaps and "where were the walls
// five minutes ago". Driven by exchange time, a replay records the same
// frames as the live run. Once the ring is full, recording reuses the
// memory of the frame it overwrites. It is not safe for concurrent use.
type History struct {
	interval int64
	depth    int
	frames   []Frame        // ring of at most capacity frames
	levels   []market.Level // every frame's Bids and Asks, allocated at the first Record
	capacity int
	start    int   // index of the oldest frame
	last     int64 // interval bucket of the newest frame
	late     uint64
}

// NewHistory returns an empty History.
func NewHistory(opts HistoryOptions) *History {
	if opts.Interval <= 0 {
		opts.Interval = 1000
	}
	if opts.Depth <= 0 {
		opts.Depth = 20
	}
	if opts.Capacity <= 0 {
		opts.Capacity = 600
	}
	return &History{interval: opts.Interval, depth: opts.Depth, capacity: opts.Capacity}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && (a < 0) {
		q--
	}
	return q
}

// Record stores the top of b at event time eventTimeMs when that time falls
// in a later interval than the newest frame (intervals are aligned to
// multiples of Interval, so frames line up across symbols and replays). It
// reports whether it recorded. A time in an earlier interval than the newest
// frame is not recorded and is counted in Late. Record only a synced book.
func (h *History) Record(eventTimeMs int64, b *Book) bool {
	bucket := floorDiv(eventTimeMs, h.interval)
	if len(h.frames) > 0 && bucket <= h.last {
		if bucket < h.last {
			h.late++
		}
		return false
	}
	var f *Frame
	if len(h.frames) < h.capacity {
		if h.levels == nil {
			// The whole ring at the first frame, in two allocations, so
			// that recording allocates nothing afterwards (it used to grow
			// one frame, and two level slices, per interval for the first
			// Capacity intervals: 0.01 allocations per pipeline event).
			h.frames = make([]Frame, 0, h.capacity)
			h.levels = make([]market.Level, 2*h.depth*h.capacity)
		}
		k := 2 * h.depth * len(h.frames)
		h.frames = append(h.frames, Frame{
			Bids: h.levels[k : k : k+h.depth],
			Asks: h.levels[k+h.depth : k+h.depth : k+2*h.depth],
		})
		f = &h.frames[len(h.frames)-1]
	} else {
		f = &h.frames[h.start]
		h.start = (h.start + 1) % h.capacity
	}
	f.Time = eventTimeMs
	f.UpdateID = b.UpdateID()
	f.Bids = b.Bids(h.depth, f.Bids[:0])
	f.Asks = b.Asks(h.depth, f.Asks[:0])
	h.last = bucket
	return true
}

// Len returns the number of frames held.
func (h *History) Len() int { return len(h.frames) }

// Late returns how many Record calls carried a time older than the newest
// frame's interval.
func (h *History) Late() uint64 { return h.late }

// frame returns the i-th oldest frame.
func (h *History) frame(i int) *Frame {
	return &h.frames[(h.start+i)%len(h.frames)]
}

// At returns the newest frame recorded at or before t, or false when every
// frame is newer (or there is none). The frame shares memory with the
// History and stays valid until the next Record: Clone it to keep it.
func (h *History) At(t int64) (Frame, bool) {
	n := len(h.frames)
	i := sort.Search(n, func(i int) bool { return h.frame(i).Time > t })
	if i == 0 {
		return Frame{}, false
	}
	return *h.frame(i - 1), true
}

// Range iterates over the frames with from <= Time <= to, oldest first.
// The frames share memory with the History: do not Record during the
// iteration, and Clone a frame to keep it.
func (h *History) Range(from, to int64) iter.Seq[Frame] {
	return func(yield func(Frame) bool) {
		n := len(h.frames)
		i := sort.Search(n, func(i int) bool { return h.frame(i).Time >= from })
		for ; i < n; i++ {
			f := h.frame(i)
			if f.Time > to || !yield(*f) {
				return
			}
		}
	}
}
