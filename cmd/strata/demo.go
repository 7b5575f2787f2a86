package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/ledger"
	"github.com/strata-events/strata/shred"
)

func newDemoCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Write a small certificate history and read it back as an auditor would",
		Long: `Write the life of a few certificates (DESIGN §1) to the database: issuances, a renewal, and a
revocation approved by a committee with a backdated invalidity date. On the way, the revocation's
transaction is held open while another operator issues a certificate, and a subscriber started
before both shows that the revocation was not lost. Then print each certificate's history and the
global log.

The demo can run any number of times on the same database: every run after the first uses its own
certificate serials.`,
		Args: argsExactly(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			ctx := cmd.Context()
			st, d, err := g.open(ctx)
			if err != nil {
				return err
			}
			defer closeStore(st, &err)
			out := bufio.NewWriter(cmd.OutOrStdout())
			defer func() {
				if ferr := out.Flush(); err == nil {
					err = ferr
				}
			}()
			kek, err := g.kek()
			if err != nil {
				return err
			}
			return runDemo(ctx, st, d, out, kek)
		},
	}
}

// The payloads of the certificate domain. Field order is the JSON order.
type (
	certificateIssued struct {
		Serial       string    `json:"serial"`
		SubjectDN    string    `json:"subjectDN"`
		SubjectEmail string    `json:"subjectEmail,omitempty"`
		ValidFrom    time.Time `json:"validFrom"`
		ValidTo      time.Time `json:"validTo"`
		Renews       string    `json:"renews,omitempty"`
	}
	certificateRenewed struct {
		Serial    string `json:"serial"`
		RenewedBy string `json:"renewedBy"`
	}
	revocationRequested struct {
		Serial string `json:"serial"`
		Reason string `json:"reason"`
	}
	certificateRevoked struct {
		Serial       string    `json:"serial"`
		Reason       string    `json:"reason"`
		InvalidSince time.Time `json:"invalidSince"`
		ApprovedBy   string    `json:"approvedBy"`
	}
)

// demoTenant is the certificate authority of the demo.
const demoTenant = "acme-ca"

func day(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err) // constant input
	}
	return t
}

// demo holds one run's state.
type demo struct {
	st     strata.Store
	out    io.Writer
	run    int64
	serial func(base string) string
	// kek is the configured key-encryption key for personal data, nil when none is.
	kek *shred.LocalKEK
}

func (d *demo) stream(base string) string { return "certificate-" + d.serial(base) }

func (d *demo) event(typ string, payload any, occurred string, meta strata.Metadata) strata.EventData {
	b, err := json.Marshal(payload)
	if err != nil {
		panic(err) // the payload types above always marshal
	}
	meta.Tenant = demoTenant
	meta.Category = "pki"
	return strata.EventData{ID: uuid.Must(uuid.NewV7()), Type: typ, Data: b, Meta: meta, OccurredAt: day(occurred)}
}

func runDemo(ctx context.Context, st strata.Store, db dsn, out io.Writer, kek *shred.LocalKEK) error {
	// The demo signs checkpoints with its own key. A log that another key signs would refuse
	// that only after the whole run was written: refuse it before writing anything.
	skey, _, err := demoKey()
	if err != nil {
		return err
	}
	signer, err := ledger.NewSigner(skey)
	if err != nil {
		return err
	}
	if err := checkSigningKey(ctx, st, "demo", signer); err != nil {
		return fmt.Errorf("%w; run the demo on a database of its own (--db sqlite:demo.db)", err)
	}
	// Each run registers itself in the stream strata-demo; its version numbers the runs, so a
	// second run on the same database picks serials that do not collide with the first.
	res, err := st.Append(ctx, "strata-demo", strata.Any, strata.EventData{Type: "DemoStarted", Data: json.RawMessage(`{"by":"strata demo"}`)})
	if err != nil {
		return err
	}
	d := &demo{st: st, out: out, run: res.LastVersion, serial: func(b string) string { return b }, kek: kek}
	if d.run > 1 {
		d.serial = func(b string) string { return fmt.Sprintf("%02X%s", d.run, b) }
	}
	// A database where someone wrote these streams by hand: move on to serials that are free.
	for free := false; !free; {
		free = true
		for _, base := range []string{"7F3A", "9A40", "0B1C", "5D2E"} {
			info, err := st.StreamInfo(ctx, d.stream(base))
			if err != nil {
				return err
			}
			if info.Exists {
				free = false
				d.run++
				if d.run == 2 {
					d.serial = func(b string) string { return fmt.Sprintf("%02X%s", d.run, b) }
				}
				break
			}
		}
	}
	var cursor strata.Position
	for e, err := range st.ReadStream(ctx, "strata-demo", strata.ReadStreamOptions{From: res.LastVersion, Limit: 1}) {
		if err != nil {
			return err
		}
		cursor = e.Position
	}

	fmt.Fprintf(out, "strata demo on %s (run %d)\n", db, d.run)
	if d.run > 1 {
		fmt.Fprintf(out, "  certificate-7F3A and friends exist already (an earlier run?): this run's serials start with %02X\n", d.run)
	}
	fmt.Fprintln(out)

	alice := "CN=alice.example.com,O=Example GmbH,C=DE"
	steps := []struct {
		say     string
		appends []strata.StreamAppend
	}{
		{"operator:jdoe issues " + d.serial("7F3A") + " for alice.example.com", []strata.StreamAppend{{
			Stream: d.stream("7F3A"), Expected: strata.NoStream,
			Events: []strata.EventData{d.event("CertificateIssued", certificateIssued{
				Serial: d.serial("7F3A"), SubjectDN: alice, SubjectEmail: "alice@example.com",
				ValidFrom: day("2022-03-15 00:00"), ValidTo: day("2023-03-15 00:00"),
			}, "2022-03-14 09:12", strata.Metadata{Principal: "operator:jdoe", Session: "sess-1a2b", Correlation: "req-2022-0311", Subsystem: "ra"})},
		}}},
		{"operator:mkim issues " + d.serial("0B1C") + " for vpn.example.com", []strata.StreamAppend{{
			Stream: d.stream("0B1C"), Expected: strata.NoStream,
			Events: []strata.EventData{d.event("CertificateIssued", certificateIssued{
				Serial: d.serial("0B1C"), SubjectDN: "CN=vpn.example.com,O=Example GmbH,C=DE",
				ValidFrom: day("2022-11-01 00:00"), ValidTo: day("2023-11-01 00:00"),
			}, "2022-10-31 16:40", strata.Metadata{Principal: "operator:mkim", Session: "sess-77c0", Correlation: "req-2022-1102", Subsystem: "ra"})},
		}}},
		{"operator:jdoe renews " + d.serial("7F3A") + " as " + d.serial("9A40") + " (one transaction over both streams)", []strata.StreamAppend{
			{
				Stream: d.stream("9A40"), Expected: strata.NoStream,
				Events: []strata.EventData{d.event("CertificateIssued", certificateIssued{
					Serial: d.serial("9A40"), SubjectDN: alice, SubjectEmail: "alice@example.com",
					ValidFrom: day("2023-03-01 00:00"), ValidTo: day("2024-03-15 00:00"), Renews: d.serial("7F3A"),
				}, "2023-03-01 10:00", strata.Metadata{Principal: "operator:jdoe", Session: "sess-2c9e", Correlation: "req-2023-0301", Subsystem: "ra"})},
			},
			{
				Stream: d.stream("7F3A"), Expected: strata.Exact(1),
				Events: []strata.EventData{d.event("CertificateRenewed", certificateRenewed{Serial: d.serial("7F3A"), RenewedBy: d.serial("9A40")},
					"2023-03-01 10:00", strata.Metadata{Principal: "operator:jdoe", Session: "sess-2c9e", Correlation: "req-2023-0301", Subsystem: "ra"})},
			},
		}},
	}
	for _, s := range steps {
		if _, err := st.AppendMulti(ctx, s.appends...); err != nil {
			return fmt.Errorf("demo: %s: %w", s.say, err)
		}
		fmt.Fprintf(out, "  %s\n", s.say)
	}

	// The key of 0B1C leaked: the operator files a revocation request; the committee approves
	// it; the revocation is backdated to when the key was compromised.
	request := d.event("RevocationRequested", revocationRequested{Serial: d.serial("0B1C"), Reason: "keyCompromise"},
		"2023-03-14 08:05", strata.Metadata{Principal: "operator:mkim", Session: "sess-91d4", Correlation: "incident-2023-0314", Subsystem: "revocation",
			Extra: map[string]string{"ticket": "SEC-4711"}})
	if _, err := st.Append(ctx, d.stream("0B1C"), strata.Exact(1), request); err != nil {
		return fmt.Errorf("demo: request revocation: %w", err)
	}
	fmt.Fprintf(out, "  operator:mkim requests revocation of %s (ticket SEC-4711)\n", d.serial("0B1C"))

	if err := d.race(ctx, db, cursor, request.ID); err != nil {
		return err
	}
	if err := d.domain(ctx); err != nil {
		return err
	}
	if err := d.ledger(ctx); err != nil {
		return err
	}
	if err := d.audit(ctx, cursor, db); err != nil {
		return err
	}
	return d.answerAuditor(ctx)
}

// race is DESIGN §1's "two operators commit at once": the revocation writes first and holds its
// transaction open while an issuance commits; a subscriber started before both must receive the
// revocation all the same.
func (d *demo) race(ctx context.Context, db dsn, cursor strata.Position, requestID uuid.UUID) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The subscriber starts before both writers, like a CRL publisher following the log.
	type got struct {
		e   strata.Event
		err error
	}
	subCh := make(chan got, 64)
	subDone := make(chan struct{})
	go func() {
		defer close(subDone)
		for e, err := range d.st.Subscribe(ctx, cursor, strata.Filter{Tenant: demoTenant}) {
			select {
			case subCh <- got{e, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() { cancel(); <-subDone }()

	revocation := d.event("CertificateRevoked", certificateRevoked{
		Serial: d.serial("0B1C"), Reason: "keyCompromise", InvalidSince: day("2023-03-14 07:30"), ApprovedBy: "revocation-committee/RC-2023-11",
	}, "2023-03-14 10:15", strata.Metadata{Principal: "operator:mkim", Session: "sess-91d4", Correlation: "incident-2023-0314", Causation: requestID.String(), Subsystem: "revocation"})
	issuance := d.event("CertificateIssued", certificateIssued{
		Serial: d.serial("5D2E"), SubjectDN: "CN=api.example.com,O=Example GmbH,C=DE",
		ValidFrom: day("2023-03-14 10:15"), ValidTo: day("2024-03-14 10:15"),
	}, "2023-03-14 10:15", strata.Metadata{Principal: "operator:tnguyen", Session: "sess-4e10", Correlation: "req-2023-0314b", Subsystem: "ra"})

	held, release := make(chan struct{}), make(chan struct{})
	holdCtx := strata.WithBeforeCommit(ctx, func(ctx context.Context) error {
		close(held)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	revDone := make(chan error, 1)
	go func() {
		_, err := d.st.Append(holdCtx, d.stream("0B1C"), strata.Exact(2), revocation)
		revDone <- err
	}()
	select {
	case <-held:
	case err := <-revDone:
		return fmt.Errorf("demo: revoke: %w", err)
	}
	fmt.Fprintf(d.out, "\nTwo operators commit at once:\n")
	fmt.Fprintf(d.out, "  operator:mkim's revocation of %s (approved by revocation-committee/RC-2023-11) is written, transaction held open\n", d.serial("0B1C"))

	issDone := make(chan error, 1)
	go func() {
		_, err := d.st.Append(ctx, d.stream("5D2E"), strata.NoStream, issuance)
		issDone <- err
	}()
	// Writers that take turns (SQLite, in-memory) make the issuance wait for the revocation;
	// the others let it commit now. Give it the time a commit takes to show which it is.
	wait, serial := 5*time.Second, db.backend == backendSQLite || db.backend == backendMem
	if serial {
		wait = 100 * time.Millisecond
	}
	issued := false
	select {
	case err := <-issDone:
		if err != nil {
			close(release)
			<-revDone
			return fmt.Errorf("demo: issue 5D2E: %w", err)
		}
		issued = true
	case <-time.After(wait):
	}
	if issued {
		fmt.Fprintf(d.out, "  operator:tnguyen's issuance of %s commits while the revocation is still open\n", d.serial("5D2E"))
		// A reader that looks now. It must not pass the open revocation; it may wait for it,
		// so give up after a while rather than hold the demo.
		probeCtx, cancelProbe := context.WithTimeout(ctx, 3*time.Second)
		visible, blocked := "", false
		for e, err := range d.st.ReadAll(probeCtx, strata.ReadAllOptions{After: cursor, Filter: strata.Filter{Tenant: demoTenant}}) {
			if err != nil {
				if probeCtx.Err() != nil && ctx.Err() == nil {
					blocked = true
					break
				}
				cancelProbe()
				close(release)
				<-revDone
				return err
			}
			if e.ID == issuance.ID {
				visible = e.Position.String()
			}
		}
		cancelProbe()
		switch {
		case blocked:
			fmt.Fprintf(d.out, "  a reader of the global log is held up until the revocation ends (gave up after 3s)\n")
		case visible == "":
			fmt.Fprintf(d.out, "  a reader of the global log does not see it yet: readers wait for the open revocation, which sorts first\n")
		default:
			fmt.Fprintf(d.out, "  a reader of the global log sees it at position %s; the revocation will come after it\n", visible)
		}
	} else if serial {
		fmt.Fprintf(d.out, "  operator:tnguyen's issuance of %s waits: %s lets one writer commit at a time\n", d.serial("5D2E"), backendName(db.backend))
	} else {
		fmt.Fprintf(d.out, "  operator:tnguyen's issuance of %s has not committed after %s: it waits for the revocation\n", d.serial("5D2E"), wait)
	}
	close(release)
	if err := <-revDone; err != nil {
		return fmt.Errorf("demo: revoke: %w", err)
	}
	fmt.Fprintf(d.out, "  the revocation commits\n")
	if !issued {
		if err := <-issDone; err != nil {
			return fmt.Errorf("demo: issue 5D2E: %w", err)
		}
		fmt.Fprintf(d.out, "  then the issuance commits\n")
	}

	// What the subscriber received, up to both events.
	var received []string
	var revAt, issAt int
	timeout := time.After(30 * time.Second)
	for revAt == 0 || issAt == 0 {
		select {
		case g := <-subCh:
			if g.err != nil {
				return fmt.Errorf("demo: subscriber: %w", g.err)
			}
			if g.e.ID != revocation.ID && g.e.ID != issuance.ID {
				continue
			}
			received = append(received, g.e.Type+" "+serialOf(g.e)+" @"+g.e.Position.String())
			if g.e.ID == revocation.ID {
				revAt = len(received)
			} else {
				issAt = len(received)
			}
		case <-timeout:
			return strata.Errorf(strata.Internal, "demo", "the subscriber did not receive both events within 30s (got %v): the revocation was lost", received)
		}
	}
	fmt.Fprintf(d.out, "  a subscriber started before both received: %s\n", strings.Join(received, ", "))
	fmt.Fprintf(d.out, "  -> the revocation that started first and committed last was not lost\n")
	return nil
}

// audit prints what an auditor reads: each certificate's history, the answer to DESIGN §1's
// question, and the global log of this run.
func (d *demo) audit(ctx context.Context, cursor strata.Position, db dsn) error {
	var log []strata.Event
	for e, err := range d.st.ReadAll(ctx, strata.ReadAllOptions{After: cursor, Filter: strata.Filter{Tenant: demoTenant}}) {
		if err != nil {
			return err
		}
		log = append(log, e)
	}

	fmt.Fprintf(d.out, "\nCertificate histories (domain time UTC, version, type, principal, correlation, details)\n")
	var rows [][]string // nil: a stream header follows in heads
	var heads []string
	for _, base := range []string{"7F3A", "9A40", "0B1C", "5D2E"} {
		var evs []strata.Event
		for e, err := range d.st.ReadStream(ctx, d.stream(base), strata.ReadStreamOptions{}) {
			if err != nil {
				return err
			}
			evs = append(evs, e)
		}
		subject := ""
		if len(evs) > 0 {
			var p certificateIssued
			_ = json.Unmarshal(evs[0].Data, &p)
			subject = p.SubjectDN
		}
		heads = append(heads, d.stream(base)+"  "+subject)
		rows = append(rows, nil)
		for _, e := range evs {
			det := details(e)
			for _, c := range evs {
				if c.ID.String() == e.Meta.Causation {
					det += fmt.Sprintf(", caused by v%d %s", c.Version, c.Type)
				}
			}
			rows = append(rows, []string{"  " + e.OccurredAt.UTC().Format("2006-01-02 15:04"), fmt.Sprintf("v%d", e.Version), e.Type, e.Meta.Principal, e.Meta.Correlation, det})
		}
	}
	printRows(d.out, rows, heads)

	// The auditor's question of DESIGN §1, answered from 0B1C's history.
	at := day("2023-03-14 09:00")
	fmt.Fprintf(d.out, "\nAuditor: what was %s's state at 09:00 UTC on 14 March 2023, what changed it that day, who approved?\n", d.stream("0B1C"))
	state, changes, approvedBy := "unknown", []string{}, ""
	for e, err := range d.st.ReadStream(ctx, d.stream("0B1C"), strata.ReadStreamOptions{}) {
		if err != nil {
			return err
		}
		switch e.Type {
		case "CertificateIssued":
			var p certificateIssued
			_ = json.Unmarshal(e.Data, &p)
			if !at.Before(p.ValidFrom) && at.Before(p.ValidTo) {
				state = "valid"
			}
		case "CertificateRevoked":
			var p certificateRevoked
			_ = json.Unmarshal(e.Data, &p)
			if !at.Before(p.InvalidSince) {
				state = fmt.Sprintf("revoked (%s, invalid since %s; decided at %s, backdated)", p.Reason,
					p.InvalidSince.Format("15:04"), e.OccurredAt.UTC().Format("15:04"))
			}
			approvedBy = p.ApprovedBy
		}
		if e.OccurredAt.UTC().Format(time.DateOnly) == at.Format(time.DateOnly) {
			changes = append(changes, fmt.Sprintf("v%d %s %s by %s", e.Version, e.Type, e.OccurredAt.UTC().Format("15:04"), e.Meta.Principal))
		}
	}
	fmt.Fprintf(d.out, "  state at 09:00:    %s\n", state)
	fmt.Fprintf(d.out, "  changed that day:  %s\n", strings.Join(changes, "; "))
	fmt.Fprintf(d.out, "  approved by:       %s\n", approvedBy)

	fmt.Fprintf(d.out, "\nGlobal log of this run (position, recorded UTC, stream, version, type, principal)\n")
	rows = rows[:0]
	for _, e := range log {
		rows = append(rows, []string{"  " + e.Position.String(), e.RecordedAt.UTC().Format("2006-01-02 15:04:05.000000"), e.Stream, fmt.Sprintf("v%d", e.Version), e.Type, e.Meta.Principal})
	}
	printRows(d.out, rows, nil)

	db1 := ""
	if v := db.flagValue(); v != defaultDSN {
		db1 = " --db '" + v + "'"
	}
	if db.backend == backendMem {
		fmt.Fprintf(d.out, "\nThe in-memory store is gone now; run the demo on a file to explore it with strata read.\n")
		return nil
	}
	fmt.Fprintf(d.out, "\nExplore: strata read --all --from %s --tenant %s%s\n", cursor, demoTenant, db1)
	fmt.Fprintf(d.out, "         strata read %s%s\n", d.stream("0B1C"), db1)
	return nil
}

// backendName is a backend's name in prose.
func backendName(b string) string {
	switch b {
	case backendSQLite:
		return "SQLite"
	case backendPostgres:
		return "PostgreSQL"
	case backendMySQL:
		return "MySQL"
	}
	return "the in-memory store"
}

// printRows prints rows as aligned columns. A nil row prints the next of heads instead.
func printRows(w io.Writer, rows [][]string, heads []string) {
	var widths []int
	for _, r := range rows {
		for i, c := range r {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	for _, r := range rows {
		if r == nil {
			fmt.Fprintln(w, heads[0])
			heads = heads[1:]
			continue
		}
		var b strings.Builder
		for i, c := range r {
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)+2))
			}
		}
		fmt.Fprintln(w, b.String())
	}
}

// serialOf returns the serial field of a certificate event's payload.
func serialOf(e strata.Event) string {
	var p struct {
		Serial string `json:"serial"`
	}
	_ = json.Unmarshal(e.Data, &p)
	return p.Serial
}

// details summarizes the payload fields an auditor looks at.
func details(e strata.Event) string {
	var p map[string]any
	_ = json.Unmarshal(e.Data, &p)
	str := func(k string) string {
		s, _ := p[k].(string)
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			if t.Hour() == 0 && t.Minute() == 0 {
				return t.UTC().Format(time.DateOnly)
			}
			return t.UTC().Format("2006-01-02 15:04")
		}
		return s
	}
	var parts []string
	switch e.Type {
	case "CertificateIssued":
		parts = append(parts, "valid "+str("validFrom")+" to "+str("validTo"))
		if r := str("renews"); r != "" {
			parts = append(parts, "renews "+r)
		}
	case "CertificateRenewed":
		parts = append(parts, "renewed by "+str("renewedBy"))
	case "RevocationRequested":
		parts = append(parts, "reason "+str("reason"))
		if t := e.Meta.Extra["ticket"]; t != "" {
			parts = append(parts, "ticket "+t)
		}
	case "CertificateRevoked":
		parts = append(parts, str("reason"), "invalid since "+str("invalidSince"), "approved by "+str("approvedBy"))
	default:
		keys := make([]string, 0, len(p))
		for k := range p {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s=%v", k, p[k]))
		}
	}
	return strings.Join(parts, ", ")
}
