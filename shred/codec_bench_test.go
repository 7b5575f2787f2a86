package shred_test

import (
	"context"
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
