package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/query"
)

// demoModel folds a demo certificate stream: its payloads merged as JSON, with a status that
// each event type sets.
func demoModel() query.Model[map[string]any] {
	m := query.JSONModel()
	merge := m.Evolve
	m.Name = "strata.demo-certificate/1"
	m.Evolve = func(ctx context.Context, s map[string]any, e strata.Event) (map[string]any, error) {
		s, err := merge(ctx, s, e)
		if err != nil {
			return s, err
		}
		if st, ok := map[string]string{"CertificateIssued": "active", "RevocationRequested": "revocation requested",
			"CertificateRenewed": "renewed", "CertificateRevoked": "revoked"}[e.Type]; ok {
			s["status"] = st
		}
		return s, nil
	}
	// A revocation holds from its invalidity date, which may lie before it was decided.
	m.ValidTime = query.FieldValidTime("invalidSince")
	return m
}

func str(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}

// answerAuditor is DESIGN §1's auditor at work with strata state, history and query: the
// state of the revoked certificate at 09:00 on 14 March 2023 (as known now, and as known
// before the revocation was recorded), what changed it that day and who approved it, every
// event of the incident and of the operator's session, and what retention would remove.
func (d *demo) answerAuditor(ctx context.Context) error {
	stream := d.stream("0B1C")
	m := demoModel()
	out := d.out
	fmt.Fprintf(out, "\nThe auditor's questions, answered by strata state, history and query\n")

	var revocation strata.Event
	for e, err := range d.st.ReadStream(ctx, stream, strata.ReadStreamOptions{}) {
		if err != nil {
			return err
		}
		if e.Type == "CertificateRevoked" {
			revocation = e
		}
	}
	if revocation.Type == "" {
		return fmt.Errorf("demo: %s has no revocation", stream)
	}
	var inv struct {
		InvalidSince time.Time `json:"invalidSince"`
		ApprovedBy   string    `json:"approvedBy"`
	}
	_ = json.Unmarshal(revocation.Data, &inv)

	at := day("2023-03-14 09:00")
	now, err := query.StateAt(ctx, d.st, m, stream, query.At{Occurred: at})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  Q: what was %s's state at 09:00 on 14 March 2023?\n", stream)
	fmt.Fprintf(out, "     $ strata state %s --at 2023-03-14T09:00 --known-at now --valid-field invalidSince\n", stream)
	fmt.Fprintf(out, "     %s (version %d)\n", describe(now.State), now.Version)
	fmt.Fprintf(out, "     the revocation, decided at %s, declares the key invalid since %s: it holds from then\n",
		revocation.OccurredAt.Format("15:04"), inv.InvalidSince.Format("15:04"))
	before := revocation.RecordedAt.Add(-time.Microsecond)
	old, err := query.StateAt(ctx, d.st, m, stream, query.At{Recorded: before, Occurred: at})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "     $ strata state %s --at 2023-03-14T09:00 --known-at %s --valid-field invalidSince   (just before the revocation was recorded)\n     %s\n",
		stream, before.Format(time.RFC3339Nano), describe(old.State))
	early, err := query.StateAt(ctx, d.st, m, stream, query.At{Occurred: day("2023-03-14 07:00")})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "     $ strata state %s --at 2023-03-14T07:00 --known-at now --valid-field invalidSince\n     %s\n", stream, describe(early.State))

	fmt.Fprintf(out, "  Q: what changed it that day, and who approved it?\n")
	fmt.Fprintf(out, "     $ strata history %s\n", stream)
	for e, err := range query.History(ctx, d.st, m, stream, query.HistoryOptions{}) {
		if err != nil {
			return err
		}
		if e.OccurredAt.Format("2006-01-02") != "2023-03-14" {
			continue
		}
		var changes []string
		for _, c := range e.Diff {
			if c.Path == "/reason" || c.Path == "/status" || c.Path == "/approvedBy" || c.Path == "/invalidSince" {
				changes = append(changes, query.FormatChange(c))
			}
		}
		fmt.Fprintf(out, "     %s v%d %s by %s (session %s), why: %s, correlation %s\n       %s\n",
			e.OccurredAt.Format("15:04"), e.Version, e.Type, e.Principal, e.Session, orDash(e.Reason), e.Correlation, strings.Join(changes, "; "))
	}
	fmt.Fprintf(out, "     approved by: %s\n", inv.ApprovedBy)

	fmt.Fprintf(out, "  Q: which events belong to the incident, and what else did the operator do in that session?\n")
	var incident []string
	for e, err := range query.ByCorrelation(ctx, d.st, demoTenant, revocation.Meta.Correlation) {
		if err != nil {
			return err
		}
		incident = append(incident, fmt.Sprintf("%s v%d %s", e.Stream, e.Version, e.Type))
	}
	fmt.Fprintf(out, "     $ strata query --tenant %s --correlation %s --all\n     %s\n", demoTenant, revocation.Meta.Correlation, strings.Join(incident, ", "))
	n, err := query.Count(ctx, d.st, strata.EventQuery{Tenant: demoTenant, Session: revocation.Meta.Session})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "     $ strata query --tenant %s --session %s --count\n     {\"count\":%d}\n", demoTenant, revocation.Meta.Session, n)
	other, err := query.Count(ctx, d.st, strata.EventQuery{Tenant: "another-ca", Session: revocation.Meta.Session})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "     the same question for tenant another-ca finds %d: a query never crosses tenants\n", other)

	fmt.Fprintf(out, "  Q: what would retention remove, and is the revoked certificate's stream safe from it?\n")
	if rs, ok := d.st.(strata.RetentionStore); ok {
		if err := rs.PlaceLegalHold(ctx, strata.LegalHold{Stream: stream, Reason: "audit 2023-03 (incident-2023-0314)", HeldBy: "auditor"}); err != nil {
			return err
		}
		plan, err := (&query.Retention{}).Plan(ctx, d.st)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "     $ strata retention hold %s --reason 'audit 2023-03'; strata retention plan\n", stream)
		fmt.Fprintf(out, "     %d events recorded more than 90 days ago would lose their payloads (tombstones keep their leaf hashes); %d stream(s) under legal hold are never touched\n",
			plan.Removed, plan.Held)
	}
	return nil
}

func describe(s map[string]any) string {
	var b strings.Builder
	b.WriteString(str(s["status"]))
	if r := str(s["reason"]); r != "" {
		b.WriteString(", reason " + r)
	}
	if v := str(s["invalidSince"]); v != "" {
		b.WriteString(", invalid since " + v)
	}
	if v := str(s["approvedBy"]); v != "" {
		b.WriteString(", approved by " + v)
	}
	if b.Len() == 0 {
		return "unknown (no events)"
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
