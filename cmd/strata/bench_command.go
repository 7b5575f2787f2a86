package main

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata/aggregate"
	"github.com/strata-events/strata/examples/pki"
)

// benchStrataCommands handles total IssueCertificate commands through the certificate aggregate,
// each client issuing certificates one after another, each to a stream of its own: every command
// loads its (new) stream, decides, and appends one event with the expected version. It is the
// command path of an application, measured against the raw INSERT of one event per transaction.
// strataCommandRounds handles one IssueCertificate command per planned event, each to a new
// certificate stream.
func strataCommandRounds(ctx context.Context, env *benchEnv, plan [][]int) (workloadRounds, error) {
	reg, err := pki.NewRegistry()
	if err != nil {
		return nil, err
	}
	certs, err := aggregate.New(env.st, reg, pki.CertificateDecider)
	if err != nil {
		return nil, err
	}
	type job struct {
		id  uuid.UUID
		cmd pki.IssueCertificate
	}
	from := time.Date(2023, 3, 14, 0, 0, 0, 0, time.UTC)
	jobs := make([][]job, len(plan))
	for c, sizes := range plan {
		for i := range sizes {
			serial := fmt.Sprintf("B%03X%06X", c, i)
			jobs[c] = append(jobs[c], job{id: uuid.Must(uuid.NewV7()), cmd: pki.IssueCertificate{
				Serial: serial, SubjectID: "subject-" + serial, SubjectDN: "CN=host-" + serial + ".example.com,O=Example GmbH,C=DE",
				SubjectEmail: "pki@example.com", ValidFrom: from, ValidTo: from.AddDate(1, 0, 0)}})
		}
	}
	return stampedRounds(ctx, env, plan, func(ctx context.Context, r int) (time.Duration, error) {
		return runClients(ctx, len(plan), func(ctx context.Context, c int) error {
			from, to := roundBatches(len(jobs[c]), r)
			for _, j := range jobs[c][from:to] {
				if _, err := certs.Handle(ctx, aggregate.Envelope[pki.CertificateCommand]{
					ID: j.id, Stream: pki.CertificateStream(j.cmd.Serial), Command: j.cmd, Meta: benchMeta}); err != nil {
					return err
				}
			}
			return nil
		})
	})
}
