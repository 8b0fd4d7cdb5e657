package feed

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/orderflow/orderflow/binance"
)

// PoolOptions configure a Pool.
type PoolOptions struct {
	// Conn is the template for every connection (BaseURL, Market, Handler,
	// timeouts...); its Streams and Path are set by the pool.
	Conn Options
	// MaxStreamsPerConn caps each connection. Default and maximum
	// binance.MaxStreamsPerConn.
	MaxStreamsPerConn int
}

// Pool spreads streams over as many Conns as needed: each carries at most
// MaxStreamsPerConn streams, all under one path (on USD-M, depth and
// bookTicker under /public, aggTrade and trade under /market:
// binance.StreamPath). Add and Remove change the set live without touching
// other streams' connections; a connection left empty is closed.
//
// The Handler is shared: calls from different connections may run
// concurrently, calls for one stream never overlap.
type Pool struct {
	opts PoolOptions

	mu     sync.Mutex
	conns  []*poolConn
	where  map[string]*poolConn
	runCtx context.Context // non-nil while Run runs
	wg     sync.WaitGroup
}

type poolConn struct {
	c      *Conn
	path   string
	n      int // streams assigned, including ones being added
	cancel context.CancelFunc
}

// NewPool returns an empty pool.
func NewPool(opts PoolOptions) (*Pool, error) {
	if opts.Conn.Handler == nil {
		return nil, errors.New("feed: PoolOptions.Conn.Handler is required")
	}
	if opts.MaxStreamsPerConn <= 0 || opts.MaxStreamsPerConn > binance.MaxStreamsPerConn {
		opts.MaxStreamsPerConn = binance.MaxStreamsPerConn
	}
	return &Pool{opts: opts, where: make(map[string]*poolConn)}, nil
}

// Run runs every connection of the pool (and those Add creates later) until
// ctx is done, then returns nil after all of them have stopped.
func (p *Pool) Run(ctx context.Context) error {
	p.mu.Lock()
	if p.runCtx != nil {
		p.mu.Unlock()
		return ErrRunning
	}
	p.runCtx = ctx
	for _, pc := range p.conns {
		p.startLocked(pc)
	}
	p.mu.Unlock()
	<-ctx.Done()
	p.mu.Lock()
	p.runCtx = nil
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

// startLocked runs pc under the pool's Run. mu held, runCtx set.
func (p *Pool) startLocked(pc *poolConn) {
	ctx, cancel := context.WithCancel(p.runCtx)
	pc.cancel = cancel
	p.wg.Go(func() { _ = pc.c.Run(ctx) }) // Run only fails with ErrRunning
}

// Add subscribes streams, each on a connection of its path with room, or on
// a new connection. Streams already in the pool are ignored.
func (p *Pool) Add(ctx context.Context, streams ...string) error {
	add, err := normalize(streams)
	if err != nil {
		return err
	}
	p.mu.Lock()
	groups := make(map[*poolConn][]string)
	var fresh []*poolConn
	for _, s := range add {
		if p.where[s] != nil {
			continue
		}
		path := binance.StreamPath(p.opts.Conn.Market, channelOf(s))
		var pc *poolConn
		for _, c := range p.conns {
			if c.path == path && c.n < p.opts.MaxStreamsPerConn {
				pc = c
				break
			}
		}
		if pc == nil {
			opts := p.opts.Conn
			opts.Path, opts.Streams = path, nil
			c, err := NewConn(opts)
			if err != nil {
				p.mu.Unlock()
				return err
			}
			pc = &poolConn{c: c, path: path}
			p.conns = append(p.conns, pc)
			fresh = append(fresh, pc)
		}
		pc.n++
		p.where[s] = pc
		groups[pc] = append(groups[pc], s)
	}
	// A new connection is dialed with its streams in the URL: set them
	// before it starts.
	for _, pc := range fresh {
		list := groups[pc]
		slices.Sort(list)
		pc.c.mu.Lock()
		pc.c.streams = list
		pc.c.mu.Unlock()
		delete(groups, pc)
		if p.runCtx != nil {
			p.startLocked(pc)
		}
	}
	p.mu.Unlock()

	var errs []error
	for pc, list := range groups {
		if err := pc.c.Subscribe(ctx, list...); err != nil {
			errs = append(errs, err)
			p.mu.Lock()
			for _, s := range list {
				if !slices.Contains(pc.c.Streams(), s) && p.where[s] == pc {
					delete(p.where, s)
					pc.n--
				}
			}
			p.mu.Unlock()
		}
	}
	return errors.Join(errs...)
}

// Remove unsubscribes streams; a connection left without streams is closed.
func (p *Pool) Remove(ctx context.Context, streams ...string) error {
	del, err := normalize(streams)
	if err != nil {
		return err
	}
	p.mu.Lock()
	groups := make(map[*poolConn][]string)
	var stop []*poolConn
	for _, s := range del {
		pc := p.where[s]
		if pc == nil {
			continue
		}
		delete(p.where, s)
		pc.n--
		groups[pc] = append(groups[pc], s)
	}
	for pc := range groups {
		if pc.n == 0 {
			stop = append(stop, pc)
			delete(groups, pc)
			p.conns = slices.DeleteFunc(p.conns, func(c *poolConn) bool { return c == pc })
		}
	}
	p.mu.Unlock()
	for _, pc := range stop {
		if pc.cancel != nil {
			pc.cancel() // Run's WaitGroup waits for it to end
		}
	}
	var errs []error
	for pc, list := range groups {
		if err := pc.c.Unsubscribe(ctx, list...); err != nil {
			errs = append(errs, fmt.Errorf("feed: pool remove: %w", err))
		}
	}
	return errors.Join(errs...)
}

// ConnStatus is one connection of a Pool.
type ConnStatus struct {
	Path    string
	Streams []string
	Status  Status
}

// Status returns every connection's path, streams and status.
func (p *Pool) Status() []ConnStatus {
	p.mu.Lock()
	conns := slices.Clone(p.conns)
	p.mu.Unlock()
	out := make([]ConnStatus, 0, len(conns))
	for _, pc := range conns {
		out = append(out, ConnStatus{Path: pc.path, Streams: pc.c.Streams(), Status: pc.c.Status()})
	}
	return out
}
