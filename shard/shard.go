// Package shard shares a symbol list among several orderflow instances on
// one NATS JetStream bus: each symbol is owned by exactly one live
// instance, through a lease in a JetStream key-value bucket, and moves to
// another instance within a bounded time when its owner dies.
//
// Two buckets hold the state (bus contract, docs/bus.md):
//
//	orderflow-members  key = instance id, value = JSON Membership, written
//	                   every TTL/3; the bucket's TTL drops a dead instance.
//	orderflow-leases   key = "<market>.<SYMBOL>", value = owner instance id;
//	                   won with Create (fails if the key is held), renewed
//	                   with Update at the revision held, given up with
//	                   Delete at that revision; the bucket's TTL frees a
//	                   dead owner's keys.
//
// The desired owner of a symbol is the rendezvous hash (Owner) over the
// live members. Every TTL/3 a Member renews its leases, gives up (Delete)
// those whose desired owner is another live member, and tries to win
// (Create) the free ones it is the desired owner of. The key-value store's
// compare-and-set makes ownership exclusive; a Member also treats a lease
// as lost once 80% of the TTL has passed since the start of its last
// successful write, so it stops before the server frees the key for
// someone else. Failover bound: a dead owner's leases expire TTL after its
// last renewal, and the desired new owner takes them at its next round,
// TTL/3 later at most: TTL + TTL/3 (8 s with the default 6 s TTL).
//
// Concurrency: Run is one goroutine, the only one that writes the buckets
// and calls Acquire and Release, never with a lock held; Status and Owned
// may be called from anywhere.
package shard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderflow/orderflow/market"
)

// Bucket names of the bus contract.
const (
	MembersBucket = "orderflow-members"
	LeasesBucket  = "orderflow-leases"
)

// DefaultTTL is the lease and membership TTL when Config.TTL is zero.
const DefaultTTL = 6 * time.Second

// validFraction is the part of the TTL, from the start of the last
// successful write, during which a Member counts a lease as its own. The
// rest is a margin for the time Release takes and for clock rates.
const validFraction = 0.8

// Config configures a Member. Zero fields take the documented defaults.
type Config struct {
	// JetStream is the bus connection. Required.
	JetStream jetstream.JetStream
	// Market is part of every lease key ("spot.BTCUSDT"). Default spot.
	Market market.Kind
	// Symbols is the list shared by every instance. Upper case.
	Symbols []string
	// ID names this instance, unique on the bus: letters, digits, '-' and
	// '_'. Default: host name, process id and a random suffix.
	ID string
	// TTL is the lease and membership lifetime without renewal. Default 6 s;
	// the rounds run every TTL/3.
	TTL time.Duration
	// Replicas of the two buckets when this Member creates them. Default
	// 1; 3 in a three-node cluster.
	Replicas int
	// Acquire is called once a lease is won, before the symbol is counted
	// as owned; it starts the symbol's streams (service.AddSymbolFrom). An
	// error gives the lease up again (retried at a later round). Its
	// context ends when the new lease, or an earlier-won one, would stop
	// being valid: it must return by then.
	Acquire func(ctx context.Context, symbol string) error
	// Release is called before a lease is given up, and when one is found
	// lost; it stops the symbol's streams (service.RemoveSymbol). Its
	// error is logged: the lease goes anyway.
	Release func(ctx context.Context, symbol string) error
	// Logger receives the logs. Default slog.Default().
	Logger *slog.Logger
}

// Membership is the value of a member's key.
type Membership struct {
	ID      string    `json:"id"`
	Started time.Time `json:"started"`
	Symbols []string  `json:"symbols"` // owned, sorted
}

// Status is a Member's state and counters.
type Status struct {
	ID      string
	Members []string          // live members at the last round, sorted
	Owned   map[string]uint64 // symbol -> lease revision held
	// Counters since New.
	Acquired int64 // leases won (Create) and started (Acquire)
	Released int64 // leases given up to their desired owner or at the end
	Lost     int64 // leases found taken or expired: their streams stopped
	Refused  int64 // leases won whose Acquire failed, given up again
	Errors   int64 // bucket operations that failed (retried next round)
	Rounds   int64
}

// Member takes part in the sharing. Create it with New, run it with Run.
type Member struct {
	cfg      Config
	log      *slog.Logger
	interval time.Duration
	started  time.Time

	mu     sync.Mutex // guards status and leases' keys for readers
	leases map[string]*lease
	st     Status

	// uncertain: symbols whose last Create got no answer (Run's
	// goroutine only).
	uncertain map[string]bool
}

type lease struct {
	rev     uint64
	renewed time.Time // start of the last successful write
	valid   time.Time // held until then unless renewed
}

// New checks cfg and returns a Member.
func New(cfg Config) (*Member, error) {
	if cfg.JetStream == nil {
		return nil, errors.New("shard: no JetStream connection")
	}
	if cfg.Acquire == nil || cfg.Release == nil {
		return nil, errors.New("shard: Acquire and Release are required")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.TTL < 300*time.Millisecond {
		return nil, fmt.Errorf("shard: TTL %v: want at least 300ms", cfg.TTL)
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ID == "" {
		cfg.ID = defaultID()
	}
	if !validID(cfg.ID) {
		return nil, fmt.Errorf("shard: instance id %q: want 1 to 64 letters, digits, '-' or '_'", cfg.ID)
	}
	seen := map[string]bool{}
	var syms []string
	for _, s := range cfg.Symbols {
		s = strings.ToUpper(strings.TrimSpace(s))
		if !validID(s) {
			return nil, fmt.Errorf("shard: symbol %q: want letters and digits", s)
		}
		if !seen[s] {
			seen[s] = true
			syms = append(syms, s)
		}
	}
	cfg.Symbols = syms
	return &Member{cfg: cfg, log: cfg.Logger.With("instance", cfg.ID), interval: cfg.TTL / 3,
		leases: map[string]*lease{}, uncertain: map[string]bool{}, st: Status{ID: cfg.ID}}, nil
}

// CheckID reports whether id can name an instance: 1 to 64 letters,
// digits, '-' or '_' (a key of the members bucket).
func CheckID(id string) error {
	if !validID(id) {
		return fmt.Errorf("shard: instance id %q: want 1 to 64 letters, digits, '-' or '_'", id)
	}
	return nil
}

func validID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func defaultID() string {
	host, _ := os.Hostname()
	var b strings.Builder
	for _, c := range host {
		if c < 128 && validID(string(c)) {
			b.WriteRune(c)
		}
	}
	h := b.String()
	if len(h) > 32 {
		h = h[:32]
	}
	if h == "" {
		h = "orderflow"
	}
	return fmt.Sprintf("%s-%d-%04x", h, os.Getpid(), rand.Uint32()&0xffff)
}

// ID returns the instance id.
func (m *Member) ID() string { return m.cfg.ID }

// Key returns the lease key of a symbol: "<market>.<SYMBOL>".
func (m *Member) Key(symbol string) string { return m.cfg.Market.String() + "." + symbol }

// Status returns a copy of the state and counters.
func (m *Member) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.st
	st.Members = slices.Clone(m.st.Members)
	st.Owned = make(map[string]uint64, len(m.leases))
	for s, l := range m.leases {
		st.Owned[s] = l.rev
	}
	return st
}

// Owned returns the symbols this instance owns, sorted.
func (m *Member) Owned() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.leases))
}

// Buckets opens the two buckets, creating those missing with the given
// TTL and replicas. An existing bucket is used as it is: the first
// instance to start sets them up. Creation is attempted with a short
// bound and retried as an open. (Measured on a three-node cluster: three
// instances calling CreateOrUpdateKeyValue at once for a 3-replica bucket
// stalled 6 to 8 s; open-or-create takes under 0.1 s.)
func Buckets(ctx context.Context, js jetstream.JetStream, ttl time.Duration, replicas int) (members, leases jetstream.KeyValue, err error) {
	mk := func(name, desc string) (jetstream.KeyValue, error) {
		var last error
		for attempt := 0; ; attempt++ {
			// Bounded per attempt: a request caught in a leader change
			// can go unanswered.
			octx, cancel := context.WithTimeout(ctx, 2*time.Second)
			kv, err := js.KeyValue(octx, name)
			cancel()
			if err == nil {
				return kv, nil
			}
			if !errors.Is(err, jetstream.ErrBucketNotFound) {
				last = err
			} else {
				cctx, cancel := context.WithTimeout(ctx, time.Second+time.Duration(attempt)*500*time.Millisecond)
				kv, err = js.CreateKeyValue(cctx, jetstream.KeyValueConfig{
					Bucket: name, Description: desc, History: 1, TTL: ttl,
					Storage: jetstream.FileStorage, Replicas: replicas,
				})
				cancel()
				if err == nil {
					return kv, nil
				}
				last = err
			}
			if ctx.Err() != nil {
				return nil, fmt.Errorf("shard: bucket %s: %w", name, errors.Join(last, ctx.Err()))
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(rand.IntN(100)+20) * time.Millisecond):
			}
		}
	}
	if members, err = mk(MembersBucket, "orderflow instances, refreshed every TTL/3"); err != nil {
		return nil, nil, err
	}
	if leases, err = mk(LeasesBucket, "orderflow symbol leases: <market>.<SYMBOL> = owner instance id"); err != nil {
		return nil, nil, err
	}
	return members, leases, nil
}

// Run takes part until ctx ends, then releases every lease it holds (so
// the others take them at their next round rather than after the TTL) and
// removes its membership. Until the buckets can be created or opened it
// retries (logged, counted in Errors). It returns nil after ctx ends.
func (m *Member) Run(ctx context.Context) error {
	m.started = time.Now()
	var members, leases jetstream.KeyValue
	for attempt := 1; ; attempt++ {
		// Not cut short by ctx: a bucket creation abandoned mid-request
		// goes on in the server, and an embedded server shut down at
		// that moment never stops the new bucket's store. Bounded on
		// its own; ctx is honoured once the server has answered.
		setup, cancel := context.WithTimeout(context.WithoutCancel(ctx), max(m.cfg.TTL, 5*time.Second))
		var err error
		members, leases, err = Buckets(setup, m.cfg.JetStream, m.cfg.TTL, m.cfg.Replicas)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			break
		}
		// The bus may be starting or electing leaders: keep trying.
		m.count(func(st *Status) { st.Errors++ })
		m.log.Warn("shard: bucket setup failed; retrying", "attempt", attempt, "err", err)
		t := time.NewTimer(min(time.Duration(attempt)*m.interval, 5*time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
	m.adoptBucketTTL(ctx, leases)
	m.log.Info("Shard member started", "symbols", len(m.cfg.Symbols), "ttl", m.cfg.TTL, "market", m.cfg.Market.String())
	timer := time.NewTimer(0)
	defer timer.Stop()
	next := time.Now()
	for {
		select {
		case <-ctx.Done():
			m.leave(members, leases)
			return nil
		case <-timer.C:
		}
		m.expire(ctx)
		if !time.Now().Before(next) {
			m.round(ctx, members, leases)
			next = time.Now().Add(m.interval)
			m.expire(ctx)
		}
		// Wake at the next round, or earlier when a lease would lapse
		// first (renewals failing).
		wake := next
		m.mu.Lock()
		for _, l := range m.leases {
			if l.valid.Before(wake) {
				wake = l.valid
			}
		}
		m.mu.Unlock()
		timer.Reset(max(time.Until(wake), time.Millisecond))
	}
}

// adoptBucketTTL makes the leases bucket's TTL this member's: an existing
// bucket keeps the TTL it was created with, and a member counting on a
// longer one than the server applies could still hold a lease the server
// has freed. Run's goroutine, before the first round.
func (m *Member) adoptBucketTTL(ctx context.Context, leases jetstream.KeyValue) {
	for {
		octx, cancel := context.WithTimeout(ctx, max(m.cfg.TTL, 2*time.Second))
		st, err := leases.Status(octx)
		cancel()
		if err == nil {
			if ttl := st.TTL(); ttl > 0 && ttl != m.cfg.TTL {
				m.log.Warn("shard: the leases bucket has another TTL: using it", "configured", m.cfg.TTL, "bucket", ttl)
				m.cfg.TTL, m.interval = ttl, ttl/3
			}
			return
		}
		if ctx.Err() != nil {
			return
		}
		m.opFailed("leases bucket status", err)
	}
}

// opCtx bounds one bucket operation: the round's interval, and never past
// the earliest lease's validity, so a hanging call cannot keep a lapsed
// lease counted as held.
func (m *Member) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithDeadline(ctx, m.heldUntil(time.Now().Add(m.interval)))
}

// heldUntil returns d, or the end of the validity of a held lease if that
// comes first: Run is the only goroutine that notices a lapsed lease, so
// nothing it waits for may outlast one.
func (m *Member) heldUntil(d time.Time) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, l := range m.leases {
		if l.valid.Before(d) {
			d = l.valid
		}
	}
	return d
}

func (m *Member) count(f func(st *Status)) {
	m.mu.Lock()
	f(&m.st)
	m.mu.Unlock()
}

func (m *Member) opFailed(what string, err error) {
	m.count(func(st *Status) { st.Errors++ })
	m.log.Warn("shard: "+what+" failed; retrying next round", "err", err)
}

// round is one pass: membership, renewals, hand-overs, acquisitions.
func (m *Member) round(ctx context.Context, members, leases jetstream.KeyValue) {
	m.count(func(st *Status) { st.Rounds++ })
	owned := m.Owned()
	val, _ := json.Marshal(Membership{ID: m.cfg.ID, Started: m.started.UTC(), Symbols: owned})
	octx, cancel := m.opCtx(ctx)
	_, err := members.Put(octx, m.cfg.ID, val)
	cancel()
	if err != nil {
		m.opFailed("membership refresh", err)
	}

	// Renew first: it keeps what is held valid whatever else fails.
	for _, sym := range owned {
		m.renew(ctx, leases, sym)
	}

	live, err := m.liveMembers(ctx, members)
	if err != nil {
		m.opFailed("member list", err)
		return // without the live set, neither give up nor take anything
	}
	m.mu.Lock()
	m.st.Members = live
	m.mu.Unlock()

	for _, sym := range m.Owned() {
		if o := Owner(live, sym); o != m.cfg.ID {
			m.handOver(ctx, leases, sym, o)
		}
	}
	for _, sym := range m.cfg.Symbols {
		if Owner(live, sym) != m.cfg.ID || slices.Contains(owned, sym) {
			continue
		}
		m.mu.Lock()
		_, held := m.leases[sym]
		m.mu.Unlock()
		if !held {
			// A lease that lapsed while the round ran (its renewal
			// failed, a slow call) is dropped before the next slow call.
			m.expire(ctx)
			m.take(ctx, leases, sym)
			// Starting a symbol can take a while (its subscription is
			// confirmed first): keep the others renewed meanwhile.
			m.renewDue(ctx, leases)
		}
	}
}

// renewDue renews the leases whose last renewal is half a round old.
func (m *Member) renewDue(ctx context.Context, leases jetstream.KeyValue) {
	var due []string
	now := time.Now()
	m.mu.Lock()
	for s, l := range m.leases {
		if now.Sub(l.renewed) >= m.interval/2 {
			due = append(due, s)
		}
	}
	m.mu.Unlock()
	slices.Sort(due)
	for _, s := range due {
		m.renew(ctx, leases, s)
	}
}

// liveMembers lists the member keys, with this instance always in.
func (m *Member) liveMembers(ctx context.Context, members jetstream.KeyValue) ([]string, error) {
	octx, cancel := m.opCtx(ctx)
	defer cancel()
	kl, err := members.ListKeys(octx)
	if err != nil {
		return nil, err
	}
	defer kl.Stop()
	live := []string{m.cfg.ID}
	for k := range kl.Keys() {
		if k != m.cfg.ID {
			live = append(live, k)
		}
	}
	if octx.Err() != nil {
		return nil, fmt.Errorf("list members: %w", octx.Err())
	}
	slices.Sort(live)
	return live, nil
}

// renew extends a held lease at its revision.
func (m *Member) renew(ctx context.Context, leases jetstream.KeyValue, sym string) {
	m.mu.Lock()
	l := m.leases[sym]
	m.mu.Unlock()
	if l == nil {
		return
	}
	start := time.Now()
	octx, cancel := m.opCtx(ctx)
	rev, err := leases.Update(octx, m.Key(sym), []byte(m.cfg.ID), l.rev)
	cancel()
	switch {
	case err == nil:
		m.mu.Lock()
		l.rev, l.renewed, l.valid = rev, start, m.validUntil(start)
		m.mu.Unlock()
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound):
		if rev, ok := m.ownWrite(ctx, leases, sym, l.rev); ok {
			// An earlier renewal timed out here but was stored: claim
			// the lease again at that revision.
			start := time.Now()
			octx, cancel := m.opCtx(ctx)
			rev, err = leases.Update(octx, m.Key(sym), []byte(m.cfg.ID), rev)
			cancel()
			if err == nil {
				m.mu.Lock()
				l.rev, l.renewed, l.valid = rev, start, m.validUntil(start)
				m.mu.Unlock()
				return
			}
		}
		// Expired (renewals failed for a TTL) and maybe taken: it is not
		// ours any more.
		m.lose(ctx, sym, err)
	default:
		m.opFailed("renew "+sym, err)
	}
}

// ownWrite reads a lease key after a refused write: if its latest value is
// this instance's id at a revision after since, one of our writes whose
// answer was lost was stored, and its revision is returned.
func (m *Member) ownWrite(ctx context.Context, leases jetstream.KeyValue, sym string, since uint64) (uint64, bool) {
	octx, cancel := m.opCtx(ctx)
	defer cancel()
	e, err := leases.Get(octx, m.Key(sym))
	if err != nil || e.Operation() != jetstream.KeyValuePut || string(e.Value()) != m.cfg.ID || e.Revision() <= since {
		return 0, false
	}
	return e.Revision(), true
}

func (m *Member) validUntil(start time.Time) time.Time {
	return start.Add(time.Duration(float64(m.cfg.TTL) * validFraction))
}

// expire drops the leases whose validity passed without a renewal.
func (m *Member) expire(ctx context.Context) {
	now := time.Now()
	var gone []string
	m.mu.Lock()
	for s, l := range m.leases {
		if !now.Before(l.valid) {
			gone = append(gone, s)
		}
	}
	m.mu.Unlock()
	slices.Sort(gone)
	for _, s := range gone {
		m.lose(ctx, s, errors.New("not renewed within the TTL"))
	}
}

// lose stops a symbol whose lease is no longer ours.
func (m *Member) lose(ctx context.Context, sym string, why error) {
	m.mu.Lock()
	delete(m.leases, sym)
	m.st.Lost++
	m.mu.Unlock()
	m.log.Warn("shard: lease lost: stopping the symbol", "symbol", sym, "why", why)
	m.release(ctx, sym)
}

// release calls Release with a bounded context.
func (m *Member) release(ctx context.Context, sym string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.cfg.TTL)
	defer cancel()
	if err := m.cfg.Release(rctx, sym); err != nil {
		m.log.Warn("shard: release callback failed", "symbol", sym, "err", err)
	}
}

// handOver gives a lease up to its desired owner: the symbol stops here
// first, then the key is deleted at our revision, so the two instances
// never stream it at once.
func (m *Member) handOver(ctx context.Context, leases jetstream.KeyValue, sym, to string) {
	m.mu.Lock()
	l := m.leases[sym]
	if l != nil {
		delete(m.leases, sym)
		m.st.Released++
	}
	m.mu.Unlock()
	if l == nil {
		return
	}
	if to != "" {
		m.log.Info("shard: handing a symbol over to its desired owner", "symbol", sym, "to", to)
	} else {
		m.log.Info("shard: releasing a symbol (leaving)", "symbol", sym)
	}
	m.release(ctx, sym)
	m.deleteLease(ctx, leases, sym, l.rev)
}

func (m *Member) deleteLease(ctx context.Context, leases jetstream.KeyValue, sym string, rev uint64) {
	octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.interval)
	defer cancel()
	err := leases.Delete(octx, m.Key(sym), jetstream.LastRevision(rev))
	if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		// Left to expire: the new owner waits up to a TTL.
		m.opFailed("delete lease "+sym, err)
	}
}

// take tries to win a free lease and start the symbol.
func (m *Member) take(ctx context.Context, leases jetstream.KeyValue, sym string) {
	start := time.Now()
	octx, cancel := m.opCtx(ctx)
	rev, err := leases.Create(octx, m.Key(sym), []byte(m.cfg.ID))
	cancel()
	if errors.Is(err, jetstream.ErrKeyExists) && m.uncertain[sym] {
		// Our last attempt failed with no answer: if it was stored after
		// all, the key holds our id. Claim it at its revision.
		delete(m.uncertain, sym)
		if r, ok := m.ownWrite(ctx, leases, sym, 0); ok {
			start = time.Now()
			octx, cancel := m.opCtx(ctx)
			rev, err = leases.Update(octx, m.Key(sym), []byte(m.cfg.ID), r)
			cancel()
		}
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return // held by another instance: it hands over or expires
	}
	if err != nil {
		m.uncertain[sym] = true
		m.opFailed("create lease "+sym, err)
		return
	}
	delete(m.uncertain, sym)
	actx, cancel := context.WithDeadline(ctx, m.heldUntil(m.validUntil(start)))
	err = m.cfg.Acquire(actx, sym)
	cancel()
	if err != nil {
		m.count(func(st *Status) { st.Refused++ })
		m.log.Warn("shard: starting a won symbol failed: lease given up", "symbol", sym, "err", err)
		m.release(ctx, sym)
		m.deleteLease(ctx, leases, sym, rev)
		return
	}
	m.mu.Lock()
	m.leases[sym] = &lease{rev: rev, renewed: start, valid: m.validUntil(start)}
	m.st.Acquired++
	m.mu.Unlock()
	m.log.Info("shard: symbol acquired", "symbol", sym, "revision", rev)
}

// leave releases everything and removes the membership, under a context
// of its own: ctx has ended.
func (m *Member) leave(members, leases jetstream.KeyValue) {
	ctx := context.Background()
	held := m.Owned()
	for _, sym := range held {
		m.handOver(ctx, leases, sym, "")
	}
	octx, cancel := context.WithTimeout(ctx, m.interval)
	defer cancel()
	if err := members.Delete(octx, m.cfg.ID); err != nil {
		m.opFailed("membership removal", err)
	}
	m.log.Info("Shard member left", "released", len(held))
}
