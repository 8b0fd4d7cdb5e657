package sim

import (
	"context"
	"sync"
	"time"
)

// clock maps the replay's exchange time (ms) to wall time: sim =
// simAnchor + (wall - wallAnchor) * speed. Pausing freezes it; an unpaced
// clock (speed <= 0) simply follows the events.
type clock struct {
	mu         sync.Mutex
	speed      float64 // <= 0: unpaced
	paused     bool
	wallAnchor time.Time
	simAnchor  int64
	last       int64 // time of the last event released
	wake       chan struct{}
}

func newClock(speed float64, start int64, paused bool) *clock {
	return &clock{speed: speed, paused: paused, wallAnchor: time.Now(), simAnchor: start, last: start, wake: make(chan struct{})}
}

// nowLocked returns the current sim time in ms.
func (c *clock) nowLocked() int64 {
	if c.paused || c.speed <= 0 {
		return max(c.simAnchor, c.last)
	}
	t := c.simAnchor + int64(float64(time.Since(c.wallAnchor).Milliseconds())*c.speed)
	return max(t, c.last)
}

func (c *clock) now() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nowLocked()
}

func (c *clock) setPaused(p bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p == c.paused {
		return
	}
	if p {
		c.simAnchor = c.nowLocked()
	} else {
		c.wallAnchor = time.Now()
		c.simAnchor = max(c.simAnchor, c.last)
	}
	c.paused = p
	close(c.wake)
	c.wake = make(chan struct{})
}

// wait blocks until sim time t is due (or ctx ends) and records t as the
// latest event time.
func (c *clock) wait(ctx context.Context, t int64) error {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		c.mu.Lock()
		wake := c.wake
		if c.paused {
			c.mu.Unlock()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-wake:
				continue
			}
		}
		var d time.Duration
		if c.speed > 0 {
			due := c.wallAnchor.Add(time.Duration(float64(t-c.simAnchor) / c.speed * float64(time.Millisecond)))
			d = time.Until(due)
		}
		if d <= 0 {
			c.last = max(c.last, t)
			c.mu.Unlock()
			return ctx.Err()
		}
		c.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		case <-timer.C:
		}
	}
}
