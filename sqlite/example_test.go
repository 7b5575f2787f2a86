package sqlite_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/sqlite"
)

func ExampleOpen() {
	dir, err := os.MkdirTemp("", "strata-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "strata.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()

	res, err := st.Append(ctx, "certificate-7F3A", strata.NoStream,
		strata.EventData{Type: "CertificateIssued", Data: []byte(`{"serial":"7F3A"}`)},
		strata.EventData{Type: "CertificateRevoked", Data: []byte(`{"reason":"keyCompromise"}`)})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("appended versions", res.FirstVersion, "to", res.LastVersion)

	for e, err := range st.ReadAll(ctx, strata.ReadAllOptions{}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.Position, e.Stream, e.Version, e.Type, string(e.Data))
	}
	// Output:
	// appended versions 1 to 2
	// 1 certificate-7F3A 1 CertificateIssued {"serial":"7F3A"}
	// 2 certificate-7F3A 2 CertificateRevoked {"reason":"keyCompromise"}
}
