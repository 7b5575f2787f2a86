package main

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/hub"
	"github.com/strata-events/strata/transmit"
)

// newTransmitCollector returns the metrics of the transmitters m runs.
func newTransmitCollector(st strata.Store, m *transmit.Manager) prometheus.Collector {
	filters := make(map[string]hub.Filter)
	for _, tc := range m.Config().Transmitters {
		if f, err := tc.Filter.Compile(); err == nil {
			filters[tc.Name] = f
		}
	}
	return &transmitCollector{store: st, m: m, filters: filters}
}

// transmitCollector reports each transmitter's deliveries and, at scrape time, its backlog: the
// matching events after its checkpoint (counted up to maxBacklogCount). The part of the filter
// the store can apply (hub.Narrow) is pushed down to the read, as the transmitter does, so that
// unselected events after the checkpoint do not hide selected ones from the count.
//
// /metrics needs no key: scrapes share one count of the backlogs at a time, and its result
// for backlogTTL, as the store collector of package httpapi does.
type transmitCollector struct {
	store   strata.Store
	m       *transmit.Manager
	filters map[string]hub.Filter

	mu        sync.Mutex
	backlogAt time.Time
	backlog   map[string]float64
}

// backlogTTL is how long a count of the backlogs serves later scrapes.
const backlogTTL = time.Second

const (
	maxBacklogCount = 10_000
	// maxBacklogScan bounds the events one scrape reads per transmitter, for filters the store
	// cannot apply.
	maxBacklogScan = 10 * maxBacklogCount
)

var (
	descTransmitSent    = prometheus.NewDesc("strata_transmitter_sent_total", "Events a transmitter delivered.", []string{"transmitter"}, nil)
	descTransmitFailed  = prometheus.NewDesc("strata_transmitter_failed_total", "Failed delivery attempts of a transmitter.", []string{"transmitter"}, nil)
	descTransmitDead    = prometheus.NewDesc("strata_transmitter_dead_total", "Events a transmitter dead-lettered.", []string{"transmitter"}, nil)
	descTransmitBacklog = prometheus.NewDesc("strata_transmitter_backlog_events", "Matching events after a transmitter's checkpoint (counted up to 10000).", []string{"transmitter"}, nil)
	descTransmitActive  = prometheus.NewDesc("strata_transmitter_active", "1 when this process holds the transmitter's lease and delivers, 0 while it stands by.", []string{"transmitter"}, nil)
	descTransmitPruned  = prometheus.NewDesc("strata_transmitter_pruned_total", "Delivery records a transmitter pruned on its schedule, by status.", []string{"transmitter", "status"}, nil)
)

func (c *transmitCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTransmitSent, descTransmitFailed, descTransmitDead, descTransmitBacklog, descTransmitActive, descTransmitPruned} {
		ch <- d
	}
}

func (c *transmitCollector) Collect(ch chan<- prometheus.Metric) {
	backlog := c.backlogs()
	for name, t := range c.m.Transmitters() {
		sent, failed, dead := t.Counts()
		ch <- prometheus.MustNewConstMetric(descTransmitSent, prometheus.CounterValue, float64(sent), name)
		ch <- prometheus.MustNewConstMetric(descTransmitFailed, prometheus.CounterValue, float64(failed), name)
		ch <- prometheus.MustNewConstMetric(descTransmitDead, prometheus.CounterValue, float64(dead), name)
		active := 0.0
		if t.Active() {
			active = 1
		}
		ch <- prometheus.MustNewConstMetric(descTransmitActive, prometheus.GaugeValue, active, name)
		prunedSent, prunedDead := t.Pruned()
		ch <- prometheus.MustNewConstMetric(descTransmitPruned, prometheus.CounterValue, float64(prunedSent), name, "sent")
		ch <- prometheus.MustNewConstMetric(descTransmitPruned, prometheus.CounterValue, float64(prunedDead), name, "dead")
		if n, ok := backlog[name]; ok {
			ch <- prometheus.MustNewConstMetric(descTransmitBacklog, prometheus.GaugeValue, n, name)
		}
	}
}

// backlogs returns each transmitter's backlog, counted at most once per backlogTTL.
func (c *transmitCollector) backlogs() map[string]float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.backlogAt.IsZero() && time.Since(c.backlogAt) < backlogTTL {
		return c.backlog
	}
	out := map[string]float64{}
	ts, ok := c.store.(strata.TransmitStore)
	if !ok {
		c.backlog, c.backlogAt = out, time.Now()
		return out
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for name := range c.m.Transmitters() {
		cp, err := ts.TransmitCheckpoint(ctx, name)
		if err != nil {
			continue
		}
		f := c.filters[name]
		if f == nil {
			f = hub.All()
		}
		n := 0
		for e, err := range c.store.ReadAll(ctx, strata.ReadAllOptions{After: cp, Filter: hub.Narrow(f), Limit: maxBacklogScan}) {
			if err != nil {
				break
			}
			if f.Match(&e) {
				if n++; n >= maxBacklogCount {
					break
				}
			}
		}
		out[name] = float64(n)
	}
	c.backlog, c.backlogAt = out, time.Now()
	return out
}
