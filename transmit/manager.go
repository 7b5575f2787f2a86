package transmit

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/strata-events/strata"
)

// Manager runs the enabled transmitters of a Config against one store: it opens each one's
// sink through the factory registered for its type, runs it, and restarts it (with backoff)
// when its sink cannot be opened or the store fails, until its context ends.
//
// Wiring, e.g. in `strata serve --transmitters FILE`:
//
//	cfg, err := transmit.LoadConfig(path)
//	m, err := transmit.NewManager(store, cfg, transmit.WithSinks(map[string]transmit.SinkFactory{
//		"nats": nats.Factory, "amqp": amqp.Factory, "kafka": kafka.Factory,
//		"redis": redis.Factory, "webhook": webhook.Factory,
//	}), transmit.WithManagerLogger(logger))
//	go m.Run(ctx)
type Manager struct {
	store  strata.Store
	cfg    Config
	sinks  map[string]SinkFactory
	reveal Transform
	log    *slog.Logger
	// restartDelay is the first wait before a failed transmitter restarts.
	restartDelay, maxRestartDelay time.Duration
	pendingPoll                   time.Duration
	owner                         string

	mu      sync.Mutex
	running map[string]*Transmitter
}

// ManagerOption configures a Manager.
type ManagerOption func(*Manager)

// WithSinks registers the adapters by type name ("nats", "webhook", ...).
func WithSinks(factories map[string]SinkFactory) ManagerOption {
	return func(m *Manager) {
		for k, v := range factories {
			m.sinks[k] = v
		}
	}
}

// WithReveal gives transmitters configured with payload "revealed" the transform that
// decrypts sensitive fields (e.g. a *shred.Protector's Reveal). Without it such a
// configuration is rejected.
func WithReveal(fn Transform) ManagerOption { return func(m *Manager) { m.reveal = fn } }

// WithManagerLogger sets the logger of the manager and its transmitters.
func WithManagerLogger(l *slog.Logger) ManagerOption {
	return func(m *Manager) {
		if l != nil {
			m.log = l
		}
	}
}

// WithRestartDelay sets the first and the longest wait before a failed transmitter restarts
// (default 1s and 1m), and how often transmitters look for requeued dead letters.
func WithRestartDelay(first, longest, pendingPoll time.Duration) ManagerOption {
	return func(m *Manager) {
		if first > 0 {
			m.restartDelay = first
		}
		if longest >= m.restartDelay {
			m.maxRestartDelay = longest
		}
		if pendingPoll > 0 {
			m.pendingPoll = pendingPoll
		}
	}
}

// WithOwner sets the name the manager's transmitters hold their leases under (default
// DefaultOwner(), made once per Manager). It must be unique among the processes that run the
// same transmitters against one store.
func WithOwner(owner string) ManagerOption {
	return func(m *Manager) {
		if owner != "" {
			m.owner = owner
		}
	}
}

// NewManager checks cfg against the registered adapters and the store, and returns a Manager
// ready to Run. The store must implement strata.TransmitStore. Errors are Invalid.
func NewManager(store strata.Store, cfg Config, opts ...ManagerOption) (*Manager, error) {
	const op = "transmit manager"
	m := &Manager{store: store, cfg: cfg, sinks: map[string]SinkFactory{}, log: slog.Default(),
		restartDelay: time.Second, maxRestartDelay: time.Minute, pendingPoll: DefaultPendingPoll,
		running: map[string]*Transmitter{}}
	for _, o := range opts {
		o(m)
	}
	if _, ok := store.(strata.TransmitStore); !ok {
		return nil, strata.Errorf(strata.Invalid, op, "the store (%T) does not keep delivery records (strata.TransmitStore)", store)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if m.owner == "" {
		m.owner = DefaultOwner()
	}
	if err := strata.ValidateTransmitOwner(op, m.owner); err != nil {
		return nil, err
	}
	for _, t := range cfg.Transmitters {
		if !t.IsEnabled() {
			continue
		}
		if m.sinks[t.Type] == nil {
			known := make([]string, 0, len(m.sinks))
			for k := range m.sinks {
				known = append(known, k)
			}
			sort.Strings(known)
			return nil, strata.Errorf(strata.Invalid, op, "transmitter %q: unknown type %q (known: %v)", t.Name, t.Type, known)
		}
		if t.Payload == PayloadRevealed && m.reveal == nil {
			return nil, strata.Errorf(strata.Invalid, op, "transmitter %q: payload \"revealed\" needs a key-encryption key (the program gives none)", t.Name)
		}
	}
	return m, nil
}

// Config returns the manager's configuration.
func (m *Manager) Config() Config { return m.cfg }

// Owner returns the name the manager's transmitters hold their leases under.
func (m *Manager) Owner() string { return m.owner }

// Run runs every enabled transmitter until ctx ends, then closes their sinks and returns nil.
// A transmitter that fails is logged and restarted; it never stops the others. A transmitter
// whose lease another process holds waits as a standby (its sink open) and takes over when
// that process stops or dies; one that loses its lease is restarted as a standby.
func (m *Manager) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, tc := range m.cfg.Transmitters {
		if !tc.IsEnabled() {
			continue
		}
		wg.Go(func() { m.runOne(ctx, tc) })
	}
	wg.Wait()
	return nil
}

// Transmitters returns the transmitters running now, by name.
func (m *Manager) Transmitters() map[string]*Transmitter {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]*Transmitter, len(m.running))
	for k, v := range m.running {
		out[k] = v
	}
	return out
}

func (m *Manager) runOne(ctx context.Context, tc TransmitterConfig) {
	log := m.log.With("transmitter", tc.Name, "type", tc.Type)
	s, _ := tc.settings(m.cfg.Prune) // validated in NewManager
	wait := m.restartDelay
	for ctx.Err() == nil {
		err := m.runOnce(ctx, tc, s, log)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, strata.ErrTransmitLeaseLost) {
			log.Warn("transmitter lost its lease to another instance; standing by", "error", err, "wait", wait)
		} else {
			log.Error("transmitter stopped; restarting", "error", err, "wait", wait)
		}
		jittered := wait/2 + rand.N(wait/2+1)
		timer := time.NewTimer(jittered)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return
		}
		wait = min(wait*2, m.maxRestartDelay)
	}
}

func (m *Manager) runOnce(ctx context.Context, tc TransmitterConfig, s settings, log *slog.Logger) error {
	sink, err := m.sinks[tc.Type](ctx, SinkConfig{Name: tc.Name, Mode: s.mode, Options: tc.Options})
	if err != nil {
		return err
	}
	defer sink.Close()
	opts := []Option{
		WithFilter(s.filter), WithBatchSize(s.batch), WithRetry(s.maxRetries, s.retryDelay, s.maxDelay, s.exponential),
		WithSource(m.cfg.Source), WithLogger(m.log), WithPendingPoll(m.pendingPoll),
	}
	ttl, _ := m.cfg.leaseTTL() // validated in NewManager
	opts = append(opts, WithLease(m.owner, ttl))
	if s.prune.sent > 0 || s.prune.dead > 0 {
		opts = append(opts, WithPrune(s.prune.sent, s.prune.dead, s.prune.every))
	}
	switch s.payload {
	case PayloadRedacted:
		opts = append(opts, WithTransform(RedactEncrypted))
	case PayloadRevealed:
		opts = append(opts, WithTransform(m.reveal))
	}
	t, err := New(m.store, tc.Name, sink, opts...)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.running[tc.Name] = t
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.running, tc.Name)
		m.mu.Unlock()
	}()
	log.Info("transmitter started")
	err = t.Run(ctx)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}
