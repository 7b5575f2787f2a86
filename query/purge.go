package query

import (
	"context"
	"time"

	"github.com/strata-events/strata"
)

// DeliveryPurger is the Purger of transmission records: for every transmitter, the records
// of events delivered (sent) before the cutoff. Failed, dead and pending records are kept: a
// dead letter waits for an operator, whatever its age.
func DeliveryPurger(ts strata.TransmitStore) Purger { return deliveryPurger{ts} }

type deliveryPurger struct{ ts strata.TransmitStore }

func (deliveryPurger) Name() string { return "deliveries" }

func (p deliveryPurger) Purge(ctx context.Context, before time.Time, dryRun bool) (int64, error) {
	states, err := p.ts.TransmitterStates(ctx)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, s := range states {
		got, err := p.ts.PruneDeliveryRecords(ctx, strata.DeliveryPrune{Transmitter: s.Name, SentBefore: before, DryRun: dryRun})
		if err != nil {
			return n, err
		}
		n += got.Sent
	}
	return n, nil
}
