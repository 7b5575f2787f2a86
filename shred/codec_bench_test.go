package shred_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/codec"
	"github.com/strata-events/strata/inmem"
	"github.com/strata-events/strata/shred"
)

// BenchmarkCodec measures the pipeline alone, without a database: encoding and decoding one
// event with two sensitive fields, and the same event with none.
func BenchmarkCodec(b *testing.B) {
	ctx := context.Background()
	st := inmem.New()
	defer st.Close()
	kekText, _ := shred.GenerateKEK()
	kek, _ := shred.ParseKEK(kekText)
	p, err := shred.New(ctx, st, kek)
	if err != nil {
		b.Fatal(err)
	}
	protected, plain := codec.NewRegistry(), codec.NewRegistry()
	_ = codec.Register[certIssued](protected, "CertIssued", 1)
	_ = codec.Register[certPlain](plain, "CertPlain", 1)
	protected.Use(p)
	from := time.Date(2023, 3, 14, 0, 0, 0, 0, time.UTC)
	v := certPlain{Serial: "4F2A9C0D", SubjectID: "subject-1", SubjectDN: "CN=host-0001.example.com,O=Example GmbH,C=DE",
		SubjectEmail: "pki@example.com", ValidFrom: from, ValidTo: from.AddDate(1, 0, 0)}
	for _, c := range []struct {
		name string
		reg  *codec.Registry
		v    any
	}{{"plain", plain, v}, {"protected", protected, certIssued(v)}} {
		d, err := c.reg.Encode(ctx, c.v, strata.Metadata{})
		if err != nil {
			b.Fatal(err)
		}
		ev := strata.Event{ID: d.ID, Type: d.Type, Schema: d.Schema, Data: d.Data, Meta: d.Meta}
		b.Run(c.name+"/encode", func(b *testing.B) {
			for b.Loop() {
				if _, err := c.reg.Encode(ctx, c.v, strata.Metadata{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/decode", func(b *testing.B) {
			for b.Loop() {
				if _, err := c.reg.Decode(ctx, ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCodecCollections measures the pipeline on an event whose personal data lies in the
// elements of a slice and the values of a map (five approvers, two contacts: fourteen sealed
// values), against the same event with nothing marked.
func BenchmarkCodecCollections(b *testing.B) {
	type member struct {
		Name  string `json:"name" strata:"sensitive"`
		Email string `json:"email" strata:"sensitive"`
		Role  string `json:"role"`
	}
	type approved struct {
		Serial    string            `json:"serial"`
		SubjectID string            `json:"subjectId" strata:"subject"`
		Approvers []member          `json:"approvers"`
		Contacts  map[string]member `json:"contacts"`
	}
	type memberPlain struct {
		Name  string `json:"name"`
		Email string `json:"email"`
		Role  string `json:"role"`
	}
	type approvedPlain struct {
		Serial    string                 `json:"serial"`
		SubjectID string                 `json:"subjectId"`
		Approvers []memberPlain          `json:"approvers"`
		Contacts  map[string]memberPlain `json:"contacts"`
	}
	ctx := context.Background()
	st := inmem.New()
	defer st.Close()
	kekText, _ := shred.GenerateKEK()
	kek, _ := shred.ParseKEK(kekText)
	p, err := shred.New(ctx, st, kek)
	if err != nil {
		b.Fatal(err)
	}
	protected, plain := codec.NewRegistry(), codec.NewRegistry()
	protected.Use(p)
	if err := codec.Register[approved](protected, "Approved", 1); err != nil {
		b.Fatal(err)
	}
	if err := codec.Register[approvedPlain](plain, "ApprovedPlain", 1); err != nil {
		b.Fatal(err)
	}
	v := approved{Serial: "4F2A9C0D", SubjectID: "subject-1", Contacts: map[string]member{}}
	vp := approvedPlain{Serial: "4F2A9C0D", SubjectID: "subject-1", Contacts: map[string]memberPlain{}}
	for i := range 5 {
		m := member{Name: fmt.Sprintf("Approver %d", i), Email: fmt.Sprintf("approver-%d@example.com", i), Role: "committee"}
		v.Approvers = append(v.Approvers, m)
		vp.Approvers = append(vp.Approvers, memberPlain(m))
	}
	for _, k := range []string{"security", "legal"} {
		m := member{Name: "Contact " + k, Email: k + "@example.com", Role: k}
		v.Contacts[k], vp.Contacts[k] = m, memberPlain(m)
	}
	for _, c := range []struct {
		name string
		reg  *codec.Registry
		v    any
	}{{"plain", plain, vp}, {"protected", protected, v}} {
		d, err := c.reg.Encode(ctx, c.v, strata.Metadata{})
		if err != nil {
			b.Fatal(err)
		}
		ev := strata.Event{ID: d.ID, Type: d.Type, Schema: d.Schema, Data: d.Data, Meta: d.Meta}
		b.Run(c.name+"/encode", func(b *testing.B) {
			for b.Loop() {
				if _, err := c.reg.Encode(ctx, c.v, strata.Metadata{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/decode", func(b *testing.B) {
			for b.Loop() {
				if _, err := c.reg.Decode(ctx, ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
