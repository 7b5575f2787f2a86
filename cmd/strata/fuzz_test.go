package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-events/strata"
)

// FuzzParseDSN checks --db values: an Invalid error, or a DSN of a known backend whose
// flag form (without a password) reads back as the same DSN.
func FuzzParseDSN(f *testing.F) {
	for _, s := range []string{"sqlite:strata.db", "sqlite:///var/lib/strata.db", "mem:", "mem://", "postgres://u:pw@h:5432/db?sslmode=disable",
		"postgresql://h/db?schema=audit&group_commit=8", "postgres://h/db?schema=", "postgres://h/%zz", "mysql://root:pw@127.0.0.1:3306/test", "mysql:///x", "strata.db", ":x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDSN(s)
		if err != nil {
			if strata.ErrorCode(err) != strata.Invalid {
				t.Fatalf("%q: %v is not Invalid", s, err)
			}
			return
		}
		switch d.backend {
		case backendSQLite, backendPostgres, backendMySQL, backendMem:
		default:
			t.Fatalf("%q: backend %q", s, d.backend)
		}
		_ = d.String()
		if d.backend != backendPostgres {
			return
		}
		back, err := parseDSN(d.flagValue())
		if err != nil {
			t.Fatalf("%q: flag form %q: %v", s, d.flagValue(), err)
		}
		if back.schema != d.schema || back.groupSet != d.groupSet || back.groupCommit != d.groupCommit {
			t.Fatalf("%q → %+v → %q → %+v", s, d, d.flagValue(), back)
		}
	})
}

// FuzzParseExpected checks --expect: an Invalid error or a valid expected version.
func FuzzParseExpected(f *testing.F) {
	for _, s := range []string{"any", "no-stream", "EXISTS", "0", "42", "-1", "9223372036854775808", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := parseExpected(s); err != nil && strata.ErrorCode(err) != strata.Invalid {
			t.Fatalf("%q: %v is not Invalid", s, err)
		}
	})
}

// FuzzParseMeta checks --meta pairs: an Invalid error, or metadata holding every pair.
func FuzzParseMeta(f *testing.F) {
	f.Add("tenant=acme", "ticket=T-9")
	f.Add("a=b", "a=c")
	f.Add("=x", "y")
	f.Add("principal=", "sig.kid=k=v")
	f.Fuzz(func(t *testing.T, a, b string) {
		m, err := parseMeta("append", []string{a, b})
		if err != nil {
			if strata.ErrorCode(err) != strata.Invalid {
				t.Fatalf("%q %q: %v is not Invalid", a, b, err)
			}
			return
		}
		for _, p := range []string{a, b} {
			k, v, _ := cutEq(p)
			if m.Get(k) != v {
				t.Fatalf("%q %q: %s is %q", a, b, k, m.Get(k))
			}
		}
	})
}

func cutEq(p string) (string, string, bool) {
	for i := range len(p) {
		if p[i] == '=' {
			return p[:i], p[i+1:], true
		}
	}
	return p, "", false
}

// FuzzParseEventKeys checks --event-key files: an Invalid error or a verifier per flag.
func FuzzParseEventKeys(f *testing.F) {
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAXgvYe71JZd3I9/2zJXjeq3wbZZM2MXGmb5tizrXZ7+E=\n-----END PUBLIC KEY-----\n"))
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE4VYO2z0TpbV/2xcRkIKulYTYAdqB\nt5Z7iOAcqWNnnQV5L3Fk6A/TCfYUo+n69QiNVCG8MXpqeBWZxDsz+ntprQ==\n-----END PUBLIC KEY-----\n"))
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"))
	f.Add([]byte("not pem"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "key.pem")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		vs, err := parseEventKeys([]string{"k=" + path})
		if err != nil {
			if strata.ErrorCode(err) != strata.Invalid {
				t.Fatalf("%v is not Invalid", err)
			}
			return
		}
		if len(vs) != 1 || vs[0].KeyID() != "k" {
			t.Fatalf("verifiers %v", vs)
		}
		// The file holds an Ed25519 or a P-256 key: ES256 is ECDSA over P-256 only.
		block, _ := pem.Decode(b)
		if pub, err := x509.ParsePKIXPublicKey(block.Bytes); err == nil {
			if k, ok := pub.(*ecdsa.PublicKey); ok && k.Curve != elliptic.P256() {
				t.Fatalf("an ECDSA key on %s accepted as %s", k.Curve.Params().Name, vs[0].Algorithm())
			}
		}
	})
}

// FuzzTimeFlags runs commands with any time flag (--occurred, --from, --at) on an in-memory
// store: the command succeeds or exits with the Invalid code and one "strata: " line.
func FuzzTimeFlags(f *testing.F) {
	for _, s := range []string{"2023-03-14T09:00:00Z", "2023-03-14T09:00:00.123456789+01:00", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "-90d", "now", "2023-03-14", "yesterday", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ctx := context.Background()
		for _, args := range [][]string{
			{"append", "s", "T", `{"a":1}`, "--occurred", s},
			{"query", "--tenant", "acme", "--from", s},
			{"state", "s", "--at", s},
		} {
			r := cli(t, ctx, "mem:", "", args...)
			if r.code == 0 {
				continue
			}
			if r.code != exitInvalid || !strings.HasPrefix(r.stderr, "strata: ") || strings.Count(r.stderr, "\n") != 1 || strings.Contains(r.stderr, "panic") {
				t.Fatalf("%q: exit %d: %q", args, r.code, r.stderr)
			}
		}
	})
}
