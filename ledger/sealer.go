package ledger

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/strata-events/strata"
)

// DefaultBatch is how many leaves one sealing transaction writes unless [WithBatch] says
// otherwise.
const DefaultBatch = 10_000

type config struct {
	batch    int
	signer   note.Signer
	interval time.Duration
	log      *slog.Logger
	// beforeAppend is called before each batch is stored; a test hook (crash tests).
	beforeAppend func(batch int)
}

// Option configures a Sealer.
type Option func(*config)

// WithBatch sets how many leaves one transaction seals (1 to strata.MaxLedgerBatch).
func WithBatch(n int) Option { return func(c *config) { c.batch = n } }

// WithSigner makes the sealer sign checkpoints with s; s's name is the log's origin.
func WithSigner(s note.Signer) Option { return func(c *config) { c.signer = s } }

// WithCheckpointInterval sets how often [Sealer.Run] signs a checkpoint when the tree has
// grown; the default is one minute. It must be more than 0.
func WithCheckpointInterval(d time.Duration) Option { return func(c *config) { c.interval = d } }

// WithLogger sets the logger of [Sealer.Run]; the default discards.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// Sealer appends the events of a store's global log to its ledger, in log order. Several
// sealers may run against one store (in several processes): each batch commits only if the
// ledger head is still the one it extends, so no event is sealed twice or skipped, and a sealer
// that crashed resumes from the stored head. A Sealer is safe for concurrent use.
type Sealer struct {
	store strata.Store
	ls    strata.LedgerStore
	cfg   config

	mu   sync.Mutex
	head strata.LedgerHead
	b    *builder // the tree at head; nil until loaded or after a failed batch
}

// NewSealer returns a sealer for store, which must implement strata.LedgerStore.
func NewSealer(store strata.Store, opts ...Option) (*Sealer, error) {
	ls, ok := store.(strata.LedgerStore)
	if !ok {
		return nil, strata.Errorf(strata.Invalid, "new sealer", "the store (%T) keeps no ledger: it does not implement strata.LedgerStore", store)
	}
	cfg := config{batch: DefaultBatch, interval: time.Minute, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.batch < 1 || cfg.batch > strata.MaxLedgerBatch {
		return nil, strata.Errorf(strata.Invalid, "new sealer", "batch %d outside 1-%d", cfg.batch, strata.MaxLedgerBatch)
	}
	if cfg.interval <= 0 {
		return nil, strata.Errorf(strata.Invalid, "new sealer", "checkpoint interval %s, want more than 0", cfg.interval)
	}
	return &Sealer{store: store, ls: ls, cfg: cfg}, nil
}

// load reads the stored head and the tree's edge, unless they are loaded.
func (s *Sealer) load(ctx context.Context) error {
	if s.b != nil {
		return nil
	}
	head, err := s.ls.LedgerHead(ctx)
	if err != nil {
		return err
	}
	b, err := resume(ctx, s.ls, head.Size)
	if err != nil {
		return err
	}
	s.head, s.b = head, b
	return nil
}

// SealOnce seals every event committed now and returns the number of leaves it added and the
// new head.
func (s *Sealer) SealOnce(ctx context.Context) (int, strata.LedgerHead, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	total := 0
	for {
		n, err := s.sealBatch(ctx, nil)
		total += n
		if err != nil || n < s.cfg.batch {
			return total, s.head, err
		}
	}
}

// sealBatch seals up to one batch of events after the head: those yielded by pending when it
// is set, else read with ReadAll.
func (s *Sealer) sealBatch(ctx context.Context, pending []strata.Event) (int, error) {
	if err := s.load(ctx); err != nil {
		return 0, err
	}
	leaves := make([]strata.LedgerLeaf, 0, min(s.cfg.batch, 1024))
	var buf []byte
	add := func(e *strata.Event) error {
		buf = EncodeLeaf(buf[:0], e)
		leaves = append(leaves, strata.LedgerLeaf{Index: s.head.Size + uint64(len(leaves)), EventID: e.ID, Position: e.Position, Stream: e.Stream, Version: e.Version})
		return s.b.add(LeafHash(buf))
	}
	var err error
	if pending != nil {
		for i := range pending {
			if err = add(&pending[i]); err != nil {
				break
			}
		}
	} else {
		for e, rerr := range s.store.ReadAll(ctx, strata.ReadAllOptions{After: s.head.Last, Limit: s.cfg.batch}) {
			if err = rerr; err != nil {
				break
			}
			if err = add(&e); err != nil {
				break
			}
		}
	}
	if err != nil || len(leaves) == 0 {
		s.b = nil // the builder may hold part of the batch: reload next time
		return 0, err
	}
	tiles := s.b.flush()
	if s.cfg.beforeAppend != nil {
		s.cfg.beforeAppend(len(leaves))
	}
	from := s.head
	if err := s.ls.AppendLedger(ctx, from, leaves, tiles); err != nil {
		s.b = nil
		return 0, err
	}
	s.head.Size += uint64(len(leaves))
	s.head.Last = leaves[len(leaves)-1].Position
	return len(leaves), nil
}

// Head returns the ledger head, as stored.
func (s *Sealer) Head(ctx context.Context) (strata.LedgerHead, error) { return s.ls.LedgerHead(ctx) }

// Checkpoint signs a checkpoint of the sealed tree and stores it, unless the latest stored
// checkpoint already has this size; it returns the stored checkpoint either way. It needs
// [WithSigner].
func (s *Sealer) Checkpoint(ctx context.Context) (strata.LedgerCheckpoint, error) {
	const op = "checkpoint"
	if s.cfg.signer == nil {
		return strata.LedgerCheckpoint{}, strata.Errorf(strata.Invalid, op, "the sealer has no signing key")
	}
	head, err := s.ls.LedgerHead(ctx)
	if err != nil {
		return strata.LedgerCheckpoint{}, err
	}
	latest, err := s.ls.LatestLedgerCheckpoint(ctx)
	switch {
	case err == nil && !signedBy(latest.Note, s.cfg.signer):
		// Signing on would mix two logs' checkpoints in one, or replace the other key's
		// checkpoint (and its cosignatures) at the same size.
		return strata.LedgerCheckpoint{}, strata.Errorf(strata.Invalid, op, "the log's checkpoints are signed by another key than %s (the latest, at %d leaves, is not signed by it): a log keeps one signing key; use that one", s.cfg.signer.Name(), latest.Size)
	case err == nil && latest.Size >= head.Size:
		return latest, nil
	case err != nil && !errors.Is(err, strata.ErrNotFound):
		return strata.LedgerCheckpoint{}, err
	}
	tr := newTileReader(s.ls)
	root, err := rootAt(ctx, tr, head.Size)
	if err != nil {
		return strata.LedgerCheckpoint{}, err
	}
	if latest.Size > 0 {
		if err := extends(ctx, tr, latest, head.Size, root); err != nil {
			return strata.LedgerCheckpoint{}, err
		}
	}
	msg, err := SignCheckpoint(Checkpoint{Origin: s.cfg.signer.Name(), Size: head.Size, Root: root}, s.cfg.signer)
	if err != nil {
		return strata.LedgerCheckpoint{}, err
	}
	c := strata.LedgerCheckpoint{Size: head.Size, Note: msg}
	if err := s.ls.SaveLedgerCheckpoint(ctx, c); err != nil {
		return strata.LedgerCheckpoint{}, err
	}
	return c, nil
}

// Run seals continuously: it follows the log with Subscribe from the ledger head, seals what
// arrives in batches, and, with a signer, signs a checkpoint every checkpoint interval when the
// tree has grown. It returns when ctx ends (with ctx's error) or on a failure other than a
// Conflict (another sealer advanced the head, after which Run resumes from the new head).
func (s *Sealer) Run(ctx context.Context) error {
	for {
		err := s.run(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !errors.Is(err, strata.ErrConflict) {
			return err
		}
		s.cfg.log.Info("ledger head moved by another sealer; resuming", "err", err)
	}
}

func (s *Sealer) run(ctx context.Context) error {
	// Catch up with ReadAll first: it reads in large pages.
	if _, _, err := s.SealOnce(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	from := s.head.Last
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type item struct {
		e   strata.Event
		err error
	}
	ch := make(chan item, s.cfg.batch)
	go func() {
		defer close(ch)
		for e, err := range s.store.Subscribe(ctx, from, strata.Filter{}) {
			select {
			case ch <- item{e, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	var tick <-chan time.Time
	if s.cfg.signer != nil {
		t := time.NewTicker(s.cfg.interval)
		defer t.Stop()
		tick = t.C
		if _, err := s.Checkpoint(ctx); err != nil {
			return err
		}
	}
	batch := make([]strata.Event, 0, s.cfg.batch)
	var subErr error
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick:
			if _, err := s.Checkpoint(ctx); err != nil {
				return err
			}
			continue
		case it, ok := <-ch:
			if !ok {
				return ctx.Err()
			}
			if it.err != nil {
				return it.err
			}
			batch = append(batch[:0], it.e)
		}
	drain:
		for len(batch) < s.cfg.batch {
			select {
			case it, ok := <-ch:
				if !ok {
					break drain
				}
				if it.err != nil {
					subErr = it.err
					break drain
				}
				batch = append(batch, it.e)
			default:
				break drain
			}
		}
		s.mu.Lock()
		var err error
		if len(batch) > 0 && !s.head.Last.Less(batch[0].Position) {
			err = strata.Errorf(strata.Conflict, "seal", "the subscription is behind the ledger head")
		} else {
			_, err = s.sealBatch(ctx, batch)
		}
		s.mu.Unlock()
		if err != nil {
			return err
		}
		if subErr != nil {
			return subErr
		}
	}
}

// extends checks that the tree of size n with root, as the stored tiles give it, extends the
// latest checkpoint signed before, by a consistency proof from the same tiles: a sealer must
// never sign a fork of its own log, whatever changed the tiles (a bug, or someone who can write
// to the database but does not hold the key).
func extends(ctx context.Context, tr *tileReader, latest strata.LedgerCheckpoint, n uint64, root Hash) error {
	const op = "checkpoint"
	prev, err := noteCheckpoint(latest.Note)
	if err != nil {
		return strata.Errorf(strata.Internal, op, "the latest checkpoint, at %d leaves: %w", latest.Size, err)
	}
	p, err := consistency(ctx, tr, prev.Size, n)
	if err != nil {
		return err
	}
	if err := VerifyConsistency(prev.Size, n, prev.Root, root, p); err != nil {
		return strata.Errorf(strata.Internal, op, "the tree of %d leaves that the stored tiles give does not extend the checkpoint signed at %d leaves, so it is not signed (run strata verify): %w", n, prev.Size, err)
	}
	return nil
}

// signedBy reports whether the signed note msg carries a signature line of signer (its name
// and key hash). It does not verify the signature: it tells which key signed a checkpoint
// this log stored, and ledger.Audit verifies them.
func signedBy(msg []byte, signer note.Signer) bool {
	_, err := note.Open(msg, note.VerifierList())
	var unk *note.UnverifiedNoteError
	if !errors.As(err, &unk) {
		return false
	}
	for _, sig := range unk.Note.UnverifiedSigs {
		if sig.Name == signer.Name() && sig.Hash == signer.KeyHash() {
			return true
		}
	}
	return false
}
