package flow

import (
	"cmp"
	"slices"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// ProfileLevel is the volume traded at one price (or price group).
type ProfileLevel struct {
	Price      fixed.Dec `json:"price"`
	BuyVolume  Volume    `json:"buyVolume"`
	SellVolume Volume    `json:"sellVolume"`
}

// Volume returns the level's total volume.
func (l ProfileLevel) Volume() Volume {
	return Volume(fixed.Int128(l.BuyVolume).Add(fixed.Int128(l.SellVolume)))
}

// Profile is a volume profile: volume at price over a time range, with its
// point of control and value area.
//
// Rules:
//   - Levels are the traded prices, grouped by Config.PriceGroup, sorted
//     ascending; untraded prices are absent.
//   - POC is the price with the most volume; on a tie, the lowest.
//   - The value area starts at the POC and grows one price at a time: it
//     compares the volume of the next traded price above the area with the
//     next traded price below, and adds the larger (the lower one on a
//     tie; the only one left at an edge), until its volume*100 >=
//     ValueAreaPercent*total. This is the single-price convention, not
//     Market Profile's pairs of two.
type Profile struct {
	// From and To are the range asked for (Unix ms, To exclusive; 0 = open).
	// For a session profile they are the session's bounds.
	From int64 `json:"from"`
	To   int64 `json:"to"`
	// FirstTime and LastTime are the first and last trade times covered.
	FirstTime       int64          `json:"firstTime"`
	LastTime        int64          `json:"lastTime"`
	Levels          []ProfileLevel `json:"levels"`
	Volume          Volume         `json:"volume"`
	POC             fixed.Dec      `json:"poc"`
	POCVolume       Volume         `json:"pocVolume"`
	ValueAreaLow    fixed.Dec      `json:"valueAreaLow"`
	ValueAreaHigh   fixed.Dec      `json:"valueAreaHigh"`
	ValueAreaVolume Volume         `json:"valueAreaVolume"`
}

// finish sorts the levels and computes the POC and value area.
func (p *Profile) finish(pct int64) {
	slices.SortFunc(p.Levels, func(a, b ProfileLevel) int { return cmp.Compare(a.Price, b.Price) })
	if len(p.Levels) == 0 {
		return
	}
	var total fixed.Int128
	ipoc := 0
	var best fixed.Int128
	for i, l := range p.Levels {
		v := fixed.Int128(l.Volume())
		total = total.Add(v)
		if i == 0 || v.Cmp(best) > 0 {
			best, ipoc = v, i
		}
	}
	p.Volume, p.POC, p.POCVolume = Volume(total), p.Levels[ipoc].Price, Volume(best)
	lo, hi := ipoc, ipoc
	area := best
	goal := mulSmall(total, pct)
	for mulSmall(area, 100).Cmp(goal) < 0 && (lo > 0 || hi < len(p.Levels)-1) {
		var below, above fixed.Int128
		if lo > 0 {
			below = fixed.Int128(p.Levels[lo-1].Volume())
		}
		if hi < len(p.Levels)-1 {
			above = fixed.Int128(p.Levels[hi+1].Volume())
		}
		if hi == len(p.Levels)-1 || (lo > 0 && below.Cmp(above) >= 0) {
			lo--
			area = area.Add(below)
		} else {
			hi++
			area = area.Add(above)
		}
	}
	p.ValueAreaLow, p.ValueAreaHigh, p.ValueAreaVolume = p.Levels[lo].Price, p.Levels[hi].Price, Volume(area)
}

// sessionProfile is the volume profile of the current session, kept up to
// date trade by trade: an index from price to a slot of levels.
type sessionProfile struct {
	ms          int64
	group       fixed.Dec
	start       int64
	have        bool
	first, last int64
	index       map[fixed.Dec]int32
	levels      []ProfileLevel
}

func (s *sessionProfile) init(ms int64, group fixed.Dec) {
	s.ms, s.group = ms, group
	s.index = make(map[fixed.Dec]int32, 1024)
	s.levels = make([]ProfileLevel, 0, 1024)
}

func (s *sessionProfile) add(tr *market.Trade, side market.Side) {
	start := floorDiv(tr.Time, s.ms) * s.ms
	if !s.have || start != s.start {
		// A new session: reuse the storage.
		clear(s.index)
		s.levels = s.levels[:0]
		s.start, s.have, s.first = start, true, tr.Time
	}
	s.last = tr.Time
	p := groupPrice(tr.Price, s.group)
	i, ok := s.index[p]
	if !ok {
		i = int32(len(s.levels))
		s.levels = append(s.levels, ProfileLevel{Price: p})
		s.index[p] = i
	}
	l := &s.levels[i]
	if side == market.Buy {
		l.BuyVolume = Volume(fixed.Int128(l.BuyVolume).AddDec(tr.Qty))
	} else {
		l.SellVolume = Volume(fixed.Int128(l.SellVolume).AddDec(tr.Qty))
	}
}

// SessionProfile returns the volume profile of the current session
// (Config.ProfileSession, aligned to the Unix epoch: the UTC day by
// default), built from every trade of the session. ok is false before the
// first trade.
func (t *Tracker) SessionProfile() (Profile, bool) {
	s := &t.session
	if !s.have {
		return Profile{}, false
	}
	p := Profile{From: s.start, To: s.start + s.ms, FirstTime: s.first, LastTime: s.last,
		Levels: slices.Clone(s.levels)}
	p.finish(t.cfg.ValueAreaPercent)
	return p, true
}

// Profile returns the volume profile of the bars of the shortest
// configured interval whose Start is in [from, to) (to = 0: no upper
// bound), closed bars and the open one. Its time resolution is therefore
// that interval, and it reaches back only as far as Config.BarHistory
// bars. ok is false if no bar matches.
func (t *Tracker) Profile(from, to int64) (Profile, bool) {
	bs := t.bars[0]
	p := Profile{From: from, To: to}
	index := make(map[fixed.Dec]int)
	use := func(b *Bar) {
		if b.Start < from || (to != 0 && b.Start >= to) {
			return
		}
		if len(index) == 0 && p.FirstTime == 0 {
			p.FirstTime = b.FirstTime
		}
		p.LastTime = b.LastTime
		for _, l := range b.Footprint {
			i, ok := index[l.Price]
			if !ok {
				i = len(p.Levels)
				index[l.Price] = i
				p.Levels = append(p.Levels, ProfileLevel{Price: l.Price})
			}
			pl := &p.Levels[i]
			pl.BuyVolume = Volume(fixed.Int128(pl.BuyVolume).Add(fixed.Int128(l.BuyVolume)))
			pl.SellVolume = Volume(fixed.Int128(pl.SellVolume).Add(fixed.Int128(l.SellVolume)))
		}
	}
	for k := 0; k < bs.n; k++ {
		use(&bs.ring[(bs.start+k)%len(bs.ring)])
	}
	if bs.open {
		use(&bs.cur)
	}
	if len(p.Levels) == 0 {
		return Profile{}, false
	}
	p.finish(t.cfg.ValueAreaPercent)
	return p, true
}
