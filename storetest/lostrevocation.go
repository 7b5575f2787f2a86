package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

// LostRevocation plays the lost revocation on st, for a test of a reader that follows the log
// (a hub, a projection, a transmitter). The stream certificate-A must hold one event. A
// revocation appended to it is held open before its commit while an issuance is appended to
// certificate-B: with parallel writers the issuance commits first, at a higher position, and
// LostRevocation then waits settle for the reader to run past it if it would; with serial
// writers the issuance waits, and LostRevocation waits settle for nothing to happen. Then it
// calls during (if not nil), still with the revocation open, lets the revocation commit, and
// returns its ID once both appends have committed. A reader that is gap-free delivers both.
func LostRevocation(t testing.TB, ctx context.Context, st strata.Store, settle time.Duration, during func()) uuid.UUID {
	t.Helper()
	written, release := make(chan struct{}), make(chan struct{})
	revID := uuid.New()
	revErr := make(chan error, 1)
	go func() {
		hook := strata.WithBeforeCommit(ctx, func(context.Context) error {
			close(written)
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		})
		_, err := st.Append(hook, "certificate-A", strata.Exact(1), strata.EventData{ID: revID, Type: "CertificateRevoked"})
		revErr <- err
	}()
	<-written
	issErr := make(chan error, 1)
	go func() {
		_, err := st.Append(ctx, "certificate-B", strata.NoStream, strata.EventData{Type: "CertificateIssued"})
		issErr <- err
	}()
	select {
	case err := <-issErr: // parallel writers: the issuance commits first
		if err != nil {
			t.Fatal(err)
		}
		issErr <- nil
		time.Sleep(settle) // let the reader run past the issuance if it would
	case <-time.After(settle): // serial writers: the issuance waits
	}
	if during != nil {
		during()
	}
	close(release)
	if err := <-revErr; err != nil {
		t.Fatal(err)
	}
	if err := <-issErr; err != nil {
		t.Fatal(err)
	}
	return revID
}
