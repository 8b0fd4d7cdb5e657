// Package metrics exposes the service to Prometheus on a private registry
// (never the global one, so several services or tests in one process do not
// collide).
//
// Most figures are read from service.Status and the push hub's Stats at
// scrape time by a custom Collector, so the hot path carries no
// instrumentation; the only per-event work is one histogram observation of
// the event-to-processing lag in the service's event hook, and one per API
// request.
//
// Names follow Prometheus conventions: an orderflow_ prefix, _total for
// counters, base units (_seconds, _bytes).
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/orderflow/orderflow/book"
	"github.com/orderflow/orderflow/feed"
	"github.com/orderflow/orderflow/push"
	"github.com/orderflow/orderflow/service"
)

// Metrics is the registry of one service and its API.
type Metrics struct {
	reg      *prometheus.Registry
	lag      prometheus.Histogram
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	now      func() time.Time
}

// New builds the registry: the service's collector, the push hub's (hub
// may be nil), the Go runtime and process collectors, the lag histogram
// and the API request metrics.
func New(svc *service.Service, hub *push.Hub) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), now: time.Now}
	m.lag = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "orderflow_event_lag_seconds",
		Help: "Time from the exchange's event time (E) to processing by the service, per trade.",
		// From 1 ms to about 65 s: loopback replays sit at the bottom,
		// live links at tens of milliseconds, stalls at the top.
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 17),
	})
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "orderflow_api_requests_total",
		Help: "HTTP API requests by route pattern, method and status code.",
	}, []string{"route", "method", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "orderflow_api_request_duration_seconds",
		Help:    "HTTP API request latency by route pattern (streams: their whole life).",
		Buckets: prometheus.DefBuckets,
	}, []string{"route"})
	m.reg.MustRegister(m.lag, m.requests, m.latency, &serviceCollector{svc: svc},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if hub != nil {
		m.reg.MustRegister(&hubCollector{hub: hub})
	}
	return m
}

// Registry returns the private registry, to add collectors or gather in
// tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// ObserveEvent is a service event hook: it records the lag of each trade
// (local now minus the exchange's event time E). Closed bars carry no
// lag. It never blocks.
func (m *Metrics) ObserveEvent(ev service.Event) {
	if ev.Trade == nil || ev.Trade.EventTime == 0 {
		return
	}
	lag := m.now().Sub(time.UnixMilli(ev.Trade.EventTime))
	m.lag.Observe(max(lag, 0).Seconds())
}

// ObserveRequest records one API request.
func (m *Metrics) ObserveRequest(route, method string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

var (
	descStreamUp = prometheus.NewDesc("orderflow_stream_connected",
		"1 when the WebSocket connection is connected, else 0.", []string{"stream"}, nil)
	descReconnects = prometheus.NewDesc("orderflow_stream_reconnects_total",
		"Reconnections of the WebSocket connection.", []string{"stream"}, nil)
	descMessages = prometheus.NewDesc("orderflow_stream_messages_received_total",
		"Frames received on the WebSocket connection.", []string{"stream"}, nil)
	descBytes = prometheus.NewDesc("orderflow_stream_received_bytes_total",
		"Bytes received on the WebSocket connection.", []string{"stream"}, nil)
	descRotations = prometheus.NewDesc("orderflow_stream_rotations_total",
		"Make-before-break connection rotations.", []string{"stream"}, nil)
	descStale = prometheus.NewDesc("orderflow_stream_stale_total",
		"Connections closed by the stale-feed watchdog.", []string{"stream"}, nil)
	descDecodeErrors = prometheus.NewDesc("orderflow_decode_errors_total",
		"Frames the decoder rejected.", nil, nil)
	descFrames = prometheus.NewDesc("orderflow_engine_frames_total",
		"Frames the engine processed.", nil, nil)
	descRejected = prometheus.NewDesc("orderflow_trades_rejected_total",
		"Trades refused as duplicate or out of order.", nil, nil)
	descLateTrades = prometheus.NewDesc("orderflow_bar_late_trades_total",
		"Trades that arrived after the watermark had closed their bar (--bar-lateness); each amended the closed bar or opened an overdue one.", nil, nil)
	descAmendedBars = prometheus.NewDesc("orderflow_bars_amended_total",
		"Closed bars that late trades amended (each sent again to push clients marked revised).", nil, nil)
	descUnknown = prometheus.NewDesc("orderflow_engine_unknown_total",
		"Well-formed frames the engine does not handle, by kind.", []string{"kind"}, nil)
	descTrades = prometheus.NewDesc("orderflow_trades_total",
		"Trades accepted into the metrics.", []string{"symbol"}, nil)
	descSynced = prometheus.NewDesc("orderflow_book_synced",
		"1 when the symbol's local book is synchronized, else 0.", []string{"symbol"}, nil)
	descUpdateID = prometheus.NewDesc("orderflow_book_update_id",
		"The update id the local book is at.", []string{"symbol"}, nil)
	descResyncs = prometheus.NewDesc("orderflow_book_resyncs_total",
		"Book snapshot requests by cause (initial is the first sync).", []string{"symbol", "cause"}, nil)
	descBackfill = prometheus.NewDesc("orderflow_backfill_trades_total",
		"Trades recovered from REST, by outcome.", []string{"outcome"}, nil)
	descBackfillReq = prometheus.NewDesc("orderflow_backfill_requests_total",
		"REST trade backfill requests, by result.", []string{"result"}, nil)
	descUp = prometheus.NewDesc("orderflow_service_running",
		"1 when the service is running, else 0.", nil, nil)
	descReady = prometheus.NewDesc("orderflow_service_ready",
		"1 when every stream is connected and every book synced (as /readyz), else 0.", nil, nil)
	descCaptureActive = prometheus.NewDesc("orderflow_capture_active",
		"1 while the run's capture writes, 0 once a write error stopped it (absent when capture is off).", nil, nil)
	descCaptureRecords = prometheus.NewDesc("orderflow_capture_records_total",
		"Records of the run's capture by outcome: written, dropped (writer queue full), lost (capture stopped by a write error).", []string{"outcome"}, nil)
	descCaptureBytes = prometheus.NewDesc("orderflow_capture_bytes_total",
		"Bytes written to the run's capture files.", nil, nil)
	descCaptureFiles = prometheus.NewDesc("orderflow_capture_files_total",
		"Capture files the run has opened (rotations + 1).", nil, nil)
	descCaptureErrors = prometheus.NewDesc("orderflow_capture_errors_total",
		"Capture write errors (each stops the run's capture; the service keeps running).", nil, nil)
)

// serviceCollector reads service.Status at scrape time.
type serviceCollector struct{ svc *service.Service }

func (c *serviceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStreamUp, descReconnects, descMessages, descBytes, descRotations, descStale,
		descDecodeErrors, descFrames, descRejected, descLateTrades, descAmendedBars, descUnknown, descTrades, descSynced, descUpdateID, descResyncs,
		descBackfill, descBackfillReq, descUp, descReady, descCaptureActive, descCaptureRecords, descCaptureBytes,
		descCaptureFiles, descCaptureErrors} {
		ch <- d
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *serviceCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.svc.Status()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge(descUp, b2f(st.State == service.Running.String()))
	gauge(descReady, b2f(st.Ready()))
	for _, s := range st.Streams {
		gauge(descStreamUp, b2f(s.State == feed.StateConnected.String()), s.Name)
		counter(descReconnects, float64(s.Reconnects), s.Name)
		counter(descMessages, float64(s.Frames), s.Name)
		counter(descBytes, float64(s.Bytes), s.Name)
		counter(descRotations, float64(s.Rotations), s.Name)
		counter(descStale, float64(s.Stale), s.Name)
	}
	e := st.Engine
	counter(descDecodeErrors, float64(e.DecodeErrors))
	counter(descFrames, float64(e.Frames))
	counter(descRejected, float64(e.TradeRejected))
	counter(descLateTrades, float64(e.LateTrades))
	counter(descAmendedBars, float64(e.AmendedBars))
	counter(descUnknown, float64(e.Unknown), "event")
	counter(descUnknown, float64(e.UnknownSymbol), "symbol")
	counter(descUnknown, float64(e.ErrorFrames), "error_frame")
	for _, s := range st.Symbols {
		counter(descTrades, float64(s.Trades), s.Symbol)
		gauge(descSynced, b2f(s.BookSynced), s.Symbol)
		gauge(descUpdateID, float64(s.UpdateID), s.Symbol)
		for cause := book.Cause(1); cause < book.NumCauses; cause++ {
			if cause == book.CauseStale || cause == book.CauseUnexpected {
				continue // Ignored reasons, never a resync
			}
			counter(descResyncs, float64(s.BookStats.Resyncs[cause]), s.Symbol, cause.String())
		}
	}
	b := st.Backfill
	counter(descBackfill, float64(b.Fetched), "fetched")
	counter(descBackfill, float64(b.Duplicates), "duplicate")
	counter(descBackfill, float64(b.Missing), "missing")
	counter(descBackfillReq, float64(b.Requests-b.Errors), "ok")
	counter(descBackfillReq, float64(b.Errors), "error")
	if c := st.Capture; c != nil {
		gauge(descCaptureActive, b2f(c.Active))
		counter(descCaptureRecords, float64(c.Records), "written")
		counter(descCaptureRecords, float64(c.Dropped), "dropped")
		counter(descCaptureRecords, float64(c.Lost), "lost")
		counter(descCaptureBytes, float64(c.Bytes))
		counter(descCaptureFiles, float64(c.Files))
		counter(descCaptureErrors, float64(c.Errors))
	}
}

var (
	descPushClients = prometheus.NewDesc("orderflow_push_clients",
		"Push (SSE and WebSocket) clients connected now.", nil, nil)
	descPushSent = prometheus.NewDesc("orderflow_push_messages_sent_total",
		"Messages queued to push clients.", nil, nil)
	descPushDropped = prometheus.NewDesc("orderflow_push_messages_dropped_total",
		"Messages skipped, by where: a slow client's full queue, or the hub's full inbox.", []string{"where"}, nil)
	descPushKicked = prometheus.NewDesc("orderflow_push_clients_disconnected_total",
		"Push clients disconnected for staying behind.", nil, nil)
)

// hubCollector reads the push hub's Stats at scrape time.
type hubCollector struct{ hub *push.Hub }

func (c *hubCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPushClients
	ch <- descPushSent
	ch <- descPushDropped
	ch <- descPushKicked
}

func (c *hubCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.hub.Stats()
	ch <- prometheus.MustNewConstMetric(descPushClients, prometheus.GaugeValue, float64(s.Subscribers))
	ch <- prometheus.MustNewConstMetric(descPushSent, prometheus.CounterValue, float64(s.Sent))
	ch <- prometheus.MustNewConstMetric(descPushDropped, prometheus.CounterValue, float64(s.Dropped), "client")
	ch <- prometheus.MustNewConstMetric(descPushDropped, prometheus.CounterValue, float64(s.InboxDropped), "inbox")
	ch <- prometheus.MustNewConstMetric(descPushKicked, prometheus.CounterValue, float64(s.Kicked))
}
