package bus

import "github.com/prometheus/client_golang/prometheus"

var (
	descSourceMsgs = prometheus.NewDesc("orderflow_bus_source_messages_total",
		"Messages the bus source read, by topic.", []string{"topic"}, nil)
	descSourceDropped = prometheus.NewDesc("orderflow_bus_source_dropped_total",
		"Messages the bus source did not apply, by reason.", []string{"reason"}, nil)
	descSourceRestarts = prometheus.NewDesc("orderflow_bus_source_restarts_total",
		"Consumers the bus source created again after a failure.", nil, nil)
	descSourceReordered = prometheus.NewDesc("orderflow_bus_source_reordered_total",
		"Trades and book diffs stored in the stream before what they follow, held and applied in order.", nil, nil)
	descSourceGapSkipped = prometheus.NewDesc("orderflow_bus_source_gap_skipped_total",
		"Missing trade ids and book diff gaps the reorder buffers gave up waiting for.", nil, nil)
)

// Describe implements prometheus.Collector.
func (s *Source) Describe(ch chan<- *prometheus.Desc) {
	ch <- descSourceMsgs
	ch <- descSourceDropped
	ch <- descSourceRestarts
	ch <- descSourceReordered
	ch <- descSourceGapSkipped
}

// Collect implements prometheus.Collector.
func (s *Source) Collect(ch chan<- prometheus.Metric) {
	st := s.Stats()
	for _, m := range []struct {
		t Topic
		n int64
	}{{TopicTrades, st.Trades}, {TopicBookDelta, st.Deltas}, {TopicBookSnapshot, st.Snapshots}} {
		ch <- prometheus.MustNewConstMetric(descSourceMsgs, prometheus.CounterValue, float64(m.n), m.t.String())
	}
	for _, d := range []struct {
		reason string
		n      int64
	}{{"invalid", st.Invalid}, {"duplicate", st.Duplicates}, {"unsynced", st.Unsynced}, {"gap", st.Gaps}} {
		ch <- prometheus.MustNewConstMetric(descSourceDropped, prometheus.CounterValue, float64(d.n), d.reason)
	}
	ch <- prometheus.MustNewConstMetric(descSourceRestarts, prometheus.CounterValue, float64(st.Restarts))
	ch <- prometheus.MustNewConstMetric(descSourceReordered, prometheus.CounterValue, float64(st.Reordered))
	ch <- prometheus.MustNewConstMetric(descSourceGapSkipped, prometheus.CounterValue, float64(st.GapSkipped))
}

var _ prometheus.Collector = (*Source)(nil)
