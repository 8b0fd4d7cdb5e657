package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
)

// logRing is a slog.Handler that keeps the last warnings and errors of a
// service under test (for the FAILED reasons in the table) and counts
// records by message, optionally passing everything to another handler.
type logRing struct {
	next slog.Handler // may be nil
	st   *logState
	pre  string // attrs from WithAttrs, rendered
}

type logState struct {
	mu     sync.Mutex
	keep   int
	lines  []string
	counts map[string]int64
}

func newLogRing(next slog.Handler, keep int) *logRing {
	return &logRing{next: next, st: &logState{keep: keep, counts: map[string]int64{}}}
}

// Enabled keeps warnings and errors always, the rest when next wants them.
func (h *logRing) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || (h.next != nil && h.next.Enabled(ctx, l))
}

// Handle records warnings and errors and passes the record on.
func (h *logRing) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s%s", r.Level, r.Message, h.pre)
		r.Attrs(func(a slog.Attr) bool {
			fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
			return true
		})
		line := b.String()
		if len(line) > 300 {
			line = line[:300] + "..."
		}
		s := h.st
		s.mu.Lock()
		s.counts[r.Message]++
		s.lines = append(s.lines, line)
		if len(s.lines) > s.keep {
			s.lines = s.lines[len(s.lines)-s.keep:]
		}
		s.mu.Unlock()
	}
	if h.next != nil && h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

// WithAttrs renders the attributes into the kept lines.
func (h *logRing) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	var b strings.Builder
	b.WriteString(h.pre)
	for _, a := range as {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
	}
	c.pre = b.String()
	if h.next != nil {
		c.next = h.next.WithAttrs(as)
	}
	return &c
}

// WithGroup passes the group on; kept lines stay flat.
func (h *logRing) WithGroup(name string) slog.Handler {
	c := *h
	if h.next != nil {
		c.next = h.next.WithGroup(name)
	}
	return &c
}

// last returns up to n of the most recent warning and error lines.
func (h *logRing) last(n int) []string {
	s := h.st
	s.mu.Lock()
	defer s.mu.Unlock()
	from := max(0, len(s.lines)-n)
	return append([]string(nil), s.lines[from:]...)
}

// count returns how many warnings or errors had message msg.
func (h *logRing) count(msg string) int64 {
	s := h.st
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[msg]
}
