package httpapi

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/projection"
)

// metrics are the server's Prometheus metrics.
type metrics struct {
	gatherer     prometheus.Gatherer
	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	appended     prometheus.Counter
	appendErrors *prometheus.CounterVec
	read         prometheus.Counter
	subscribers  prometheus.Gauge
	sseDropped   prometheus.Counter
	sseFollowers prometheus.Gauge
	sseRejoined  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, st strata.Store) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "strata_http_request_duration_seconds", Help: "Latency of HTTP requests (not subscriptions) by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		appended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_events_appended_total", Help: "Events appended over HTTP (acknowledged, replays not counted).",
		}),
		appendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_append_errors_total", Help: "Failed HTTP appends by error code.",
		}, []string{"code"}),
		read: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_events_read_total", Help: "Events returned by reads and subscriptions.",
		}),
		subscribers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strata_sse_subscribers", Help: "Open SSE subscriptions.",
		}),
		sseDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_sse_disconnected_slow_total", Help: "Subscribers disconnected because they did not keep up.",
		}),
		sseFollowers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strata_sse_followers", Help: "Live followers of the log that SSE subscriptions share (1 while any runs).",
		}),
		sseRejoined: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_sse_rejoined_total", Help: "Times a subscription fell behind the shared live feed, read on from the store and joined it again.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.appended, m.appendErrors, m.read, m.subscribers, m.sseDropped, m.sseFollowers, m.sseRejoined, &storeCollector{store: st}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{})
}

// storeCollector reports, at scrape time, how far the ledger sealer and the projections lag
// behind the log. /metrics needs no key, and a collection reads up to maxLagCount events and
// every projection's status: scrapes share one collection at a time, and its result for
// storeMetricsTTL, so that a client asking in a loop costs the database no more than a
// scraper does.
type storeCollector struct {
	store strata.Store

	mu   sync.Mutex
	at   time.Time
	last []prometheus.Metric
}

// storeMetricsTTL is how long a collection of the store's metrics serves later scrapes.
const storeMetricsTTL = time.Second

var (
	descSealed      = prometheus.NewDesc("strata_ledger_leaves", "Events sealed into the ledger.", nil, nil)
	descSealerLag   = prometheus.NewDesc("strata_ledger_lag_events", "Committed events not sealed yet (counted up to 10000).", nil, nil)
	descSealerLagS  = prometheus.NewDesc("strata_ledger_lag_seconds", "Age of the oldest unsealed event.", nil, nil)
	descProjLag     = prometheus.NewDesc("strata_projection_lag_events", "Events a projection partition has still to handle.", []string{"projection", "version", "partition"}, nil)
	descProjLagSecs = prometheus.NewDesc("strata_projection_lag_seconds", "How long the oldest event a partition has still to handle has waited.", []string{"projection", "version", "partition"}, nil)
)

const maxLagCount = 10_000

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSealed, descSealerLag, descSealerLagS, descProjLag, descProjLagSecs} {
		ch <- d
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at.IsZero() || time.Since(c.at) >= storeMetricsTTL {
		c.last, c.at = c.collect(), time.Now()
	}
	for _, m := range c.last {
		ch <- m
	}
}

// collect reads the store's metrics.
func (c *storeCollector) collect() []prometheus.Metric {
	var ms []prometheus.Metric
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if ls, ok := c.store.(strata.LedgerStore); ok {
		if head, err := ls.LedgerHead(ctx); err == nil {
			ms = append(ms, prometheus.MustNewConstMetric(descSealed, prometheus.GaugeValue, float64(head.Size)))
			n, age := 0, 0.0
			for e, err := range c.store.ReadAll(ctx, strata.ReadAllOptions{After: head.Last, Limit: maxLagCount}) {
				if err != nil {
					break
				}
				if n == 0 {
					age = time.Since(e.RecordedAt).Seconds()
				}
				n++
			}
			ms = append(ms, prometheus.MustNewConstMetric(descSealerLag, prometheus.GaugeValue, float64(n)))
			ms = append(ms, prometheus.MustNewConstMetric(descSealerLagS, prometheus.GaugeValue, age))
		}
	}
	if _, ok := c.store.(strata.ProjectionStore); ok {
		sts, err := projection.Statuses(ctx, c.store, "")
		if err != nil {
			return ms
		}
		for _, st := range sts {
			labels := []string{st.Key.Name, itoa(int64(st.Key.Version)), itoa(int64(st.Key.Partition))}
			ms = append(ms, prometheus.MustNewConstMetric(descProjLag, prometheus.GaugeValue, float64(st.LagEvents), labels...))
			ms = append(ms, prometheus.MustNewConstMetric(descProjLagSecs, prometheus.GaugeValue, st.LagSeconds, labels...))
		}
	}
	return ms
}
