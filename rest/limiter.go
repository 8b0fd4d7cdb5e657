package rest

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// BanError is returned while Binance has banned this client's IP (HTTP 418)
// or when a request gets the 418 itself. No request is sent until Until.
type BanError struct {
	Until time.Time
}

// Error implements error.
func (e *BanError) Error() string {
	return fmt.Sprintf("rest: IP banned by Binance (HTTP 418) until %s", e.Until.UTC().Format(time.RFC3339))
}

// weightLimiter is the client-side request-weight budget. Binance counts
// weight per IP in fixed one-minute windows (REST "LIMITS": "IP limits";
// header X-MBX-USED-WEIGHT-1M). Each request reserves its weight before it is
// sent, so concurrent callers can never overshoot the budget between them; a
// response's header then corrects the count, because other processes on the
// same IP spend the same budget and the server is the authority.
type weightLimiter struct {
	mu    sync.Mutex
	limit int

	minute    int64 // Unix minute of the current window
	used      int   // weight believed spent in this minute, incl. in flight
	serverMax int   // highest X-MBX-USED-WEIGHT-1M seen this minute, -1 if none
	inflight  int   // reserved this minute, response not yet seen

	pausedUntil time.Time // after a 429: nobody sends before this
	bannedUntil time.Time // after a 418: every call fails before this

	waits uint64 // reservations that had to wait for the budget
}

func newWeightLimiter(limit int) *weightLimiter {
	return &weightLimiter{limit: limit, serverMax: -1}
}

// roll moves to now's minute window. Called with mu held.
func (l *weightLimiter) roll(now time.Time) {
	m := now.Unix() / 60
	if m != l.minute {
		l.minute = m
		l.used = 0
		l.serverMax = -1
		// Requests still in flight were counted by the server in the minute
		// they were sent; they no longer weigh on this one.
		l.inflight = 0
	}
}

// reserve blocks until w weight fits in the current minute and no 429 pause
// is running, then books it. It returns the minute the weight was booked in
// (settle needs it), a *BanError during a ban, or ctx's error.
func (l *weightLimiter) reserve(ctx context.Context, w int) (int64, error) {
	if w > l.limit {
		return 0, fmt.Errorf("rest: request weight %d exceeds the per-minute limit %d", w, l.limit)
	}
	counted := false
	for {
		l.mu.Lock()
		now := time.Now()
		if now.Before(l.bannedUntil) {
			until := l.bannedUntil
			l.mu.Unlock()
			return 0, &BanError{Until: until}
		}
		var wait time.Duration
		if now.Before(l.pausedUntil) {
			wait = l.pausedUntil.Sub(now)
		} else {
			l.roll(now)
			if l.used+w <= l.limit {
				l.used += w
				l.inflight += w
				m := l.minute
				l.mu.Unlock()
				return m, nil
			}
			wait = time.Unix((l.minute+1)*60, 0).Sub(now)
			if !counted {
				l.waits++
				counted = true
			}
		}
		l.mu.Unlock()
		if err := sleep(ctx, wait); err != nil {
			return 0, err
		}
	}
}

// settle records the response to a request booked in minute with weight w.
// header is the X-MBX-USED-WEIGHT-1M value ("" if absent), which includes
// this request.
func (l *weightLimiter) settle(minute int64, w int, header string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if minute != l.minute {
		return // the window has moved on; the old count no longer matters
	}
	l.inflight -= w
	if l.inflight < 0 {
		l.inflight = 0
	}
	h, err := strconv.Atoi(header)
	if err != nil || h < 0 {
		return
	}
	// Responses can arrive out of order; the highest count is the latest.
	if h > l.serverMax {
		l.serverMax = h
	}
	l.used = l.serverMax + l.inflight
}

// pause stops every request until t (HTTP 429 with Retry-After).
func (l *weightLimiter) pause(t time.Time) {
	l.mu.Lock()
	if t.After(l.pausedUntil) {
		l.pausedUntil = t
	}
	l.mu.Unlock()
}

// ban fails every request until t (HTTP 418).
func (l *weightLimiter) ban(t time.Time) {
	l.mu.Lock()
	if t.After(l.bannedUntil) {
		l.bannedUntil = t
	}
	l.mu.Unlock()
}

type limiterState struct {
	used, limit  int
	waits        uint64
	pausedUntil  time.Time
	bannedUntil  time.Time
	windowMinute int64
}

func (l *weightLimiter) state() limiterState {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll(time.Now())
	return limiterState{used: l.used, limit: l.limit, waits: l.waits, pausedUntil: l.pausedUntil, bannedUntil: l.bannedUntil, windowMinute: l.minute}
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SnapshotGate spreads depth-snapshot requests out: at most Concurrency run
// at once and two starts are at least Spacing apart. Depth snapshots are the
// heaviest market-data requests (spot limit=5000 weighs 250 of 6,000 per
// minute), and a reconnect makes every symbol resync at the same moment; the
// gate turns that herd into an orderly queue, and the weight limiter then
// keeps the queue within the budget. One gate may be shared by several
// Clients (e.g. spot and USD-M ones on the same IP). Its zero value is not
// usable: call NewSnapshotGate.
type SnapshotGate struct {
	slots   chan struct{}
	spacing time.Duration

	mu        sync.Mutex
	nextStart time.Time
}

// NewSnapshotGate returns a gate letting concurrency requests run at once
// (at least 1) with starts spacing apart.
func NewSnapshotGate(concurrency int, spacing time.Duration) *SnapshotGate {
	if concurrency < 1 {
		concurrency = 1
	}
	return &SnapshotGate{slots: make(chan struct{}, concurrency), spacing: spacing}
}

// Acquire waits for a slot and for this caller's start time, then returns a
// release function the caller must call when its request is done.
func (g *SnapshotGate) Acquire(ctx context.Context) (release func(), err error) {
	select {
	case g.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	g.mu.Lock()
	now := time.Now()
	start := g.nextStart
	if start.Before(now) {
		start = now
	}
	g.nextStart = start.Add(g.spacing)
	g.mu.Unlock()
	if err := sleep(ctx, time.Until(start)); err != nil {
		<-g.slots
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(func() { <-g.slots }) }, nil
}
