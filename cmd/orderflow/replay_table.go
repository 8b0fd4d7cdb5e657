package main

import (
	"fmt"

	"github.com/orderflow/orderflow/replay"
)

// printReplayTable prints a human summary of a replay: one row per symbol.
func printReplayTable(env *environ, res *replay.Result, _ string) error {
	tw := newTable(env.stdout)
	fmt.Fprintln(tw, "SYMBOL\tMARKET\tTRADES\tBUY VOL\tSELL VOL\tDELTA\tVWAP\tBEST BID\tBEST ASK\tBOOK ID")
	for _, s := range res.Engine.Symbols() {
		t := s.Flow.Totals()
		vwap := "-"
		if t.Trades > 0 {
			vwap = t.VWAP.String()
		}
		bid, ask, id := "-", "-", "-"
		if bk := s.Book(); bk != nil && s.Synced() {
			if l, ok := bk.BestBid(); ok {
				bid = l.Qty.String() + " @ " + l.Price.String()
			}
			if l, ok := bk.BestAsk(); ok {
				ask = l.Qty.String() + " @ " + l.Price.String()
			}
			id = fmt.Sprint(bk.UpdateID())
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Market, t.Trades,
			t.BuyVolume, t.SellVolume, t.Delta, vwap, bid, ask, id)
	}
	st := res.Stats
	fmt.Fprintf(tw, "\nrecords %d, frames %d, trades %d, depth updates %d, snapshots %d, decode errors %d, rejected trades %d\n",
		res.Records, st.Frames, st.Trades, st.DepthUpdates, st.Snapshots, st.DecodeErrors, st.TradeRejected)
	return tw.Flush()
}
