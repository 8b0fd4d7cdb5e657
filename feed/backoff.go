package feed

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// Backoff is an exponential backoff with full jitter: the wait before retry
// number attempt (0-based) is drawn uniformly from [Min, min(Max, Min*2^attempt)].
// Drawing over the whole range (rather than adding a little noise to a fixed
// delay) spreads clients that lost their connections together, so they do not
// redial together.
type Backoff struct {
	Min, Max time.Duration
}

// Delay returns the wait before retry number attempt (0-based).
func (b Backoff) Delay(attempt int) time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = time.Millisecond
	}
	if hi < lo {
		hi = lo
	}
	ceil := hi
	if attempt < 62 {
		if c := lo << attempt; c > 0 && c < hi && c>>attempt == lo {
			ceil = c
		}
	}
	return lo + rand.N(ceil-lo+1)
}

// DialLimiter bounds connection attempts over a sliding window. Binance
// allows 300 WebSocket connection attempts per 5 minutes per IP (spot
// "WebSocket Limits"); exceeding it gets the IP banned, so every Conn of a
// process shares one limiter (DefaultDialLimiter unless Options say
// otherwise). It is safe for concurrent use.
type DialLimiter struct {
	window time.Duration

	mu    sync.Mutex
	times []time.Time // the last n attempts, ring buffer
	next  int         // index of the oldest entry
}

// DefaultDialLimiter is the process-wide limiter: 300 attempts per 5 minutes.
var DefaultDialLimiter = NewDialLimiter(300, 5*time.Minute)

// NewDialLimiter allows n attempts (at least 1) within any window.
func NewDialLimiter(n int, window time.Duration) *DialLimiter {
	return &DialLimiter{window: window, times: make([]time.Time, max(n, 1))}
}

// Wait blocks until an attempt is allowed and books it, or returns ctx's
// error.
func (l *DialLimiter) Wait(ctx context.Context) error {
	for {
		l.mu.Lock()
		now := time.Now()
		oldest := l.times[l.next]
		if oldest.IsZero() || now.Sub(oldest) >= l.window {
			l.times[l.next] = now
			l.next = (l.next + 1) % len(l.times)
			l.mu.Unlock()
			return nil
		}
		wait := l.window - now.Sub(oldest)
		l.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}
