package depthflow

// NotReady says why a metric is not ready (its Ready field false). The
// zero value means ready.
//
// The known range is the book's (book.Book.KnownRange): from each side's
// best price out to the worst price of the last REST snapshot. Beyond it a
// level that has not changed since the snapshot is missing from the book,
// so a band, wall neighbourhood or touch range reaching there may miss
// quantity. A metric is ready only when the whole price range it reads
// lies inside the known range of every side it reads.
type NotReady uint8

// Reasons for a metric not being ready.
const (
	// NotReadyNoTouch: a side of the book is empty (no mid, no bands).
	NotReadyNoTouch NotReady = iota + 1
	// NotReadyBidsUnknown: the range reaches bids below the known range.
	NotReadyBidsUnknown
	// NotReadyAsksUnknown: the range reaches asks above the known range.
	NotReadyAsksUnknown
	// NotReadyBothUnknown: both of the above.
	NotReadyBothUnknown
	// NotReadyFewLevels: walls only: the side has at most WallNeighbors
	// levels, so no level has a full neighbourhood.
	NotReadyFewLevels
	// NotReadyWarmingUp: liquidity only: the window reaches back before
	// the first update since New or the last Reset.
	NotReadyWarmingUp
	// NotReadyMissingBefore: liquidity only: the window holds an update
	// whose level changes are unknown (OnDepth without BeforeDepth).
	NotReadyMissingBefore
)

var notReadyNames = [...]string{"", "no_touch", "bids_beyond_known_range", "asks_beyond_known_range",
	"both_beyond_known_range", "too_few_levels", "warming_up", "missing_before"}

// String names the reason ("" when ready).
func (r NotReady) String() string {
	if int(r) < len(notReadyNames) {
		return notReadyNames[r]
	}
	return "unknown"
}

// MarshalText implements encoding.TextMarshaler.
func (r NotReady) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// beyond returns the reason for a range whose bid side (bidOut) and ask
// side (askOut) reach beyond the known range, 0 when neither does.
func beyond(bidOut, askOut bool) NotReady {
	switch {
	case bidOut && askOut:
		return NotReadyBothUnknown
	case bidOut:
		return NotReadyBidsUnknown
	case askOut:
		return NotReadyAsksUnknown
	}
	return 0
}
