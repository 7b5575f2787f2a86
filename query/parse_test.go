package query_test

import (
	"errors"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/query"
)

func TestParseSchedule(t *testing.T) {
	from := time.Date(2023, 3, 14, 9, 30, 0, 0, time.UTC) // a Tuesday
	for _, c := range []struct {
		expr string
		want time.Time
	}{
		{query.DefaultSchedule, time.Date(2023, 3, 15, 3, 0, 0, 0, time.UTC)},
		{"@daily", time.Date(2023, 3, 15, 0, 0, 0, 0, time.UTC)},
		{"@hourly", time.Date(2023, 3, 14, 10, 0, 0, 0, time.UTC)},
		{"*/15 * * * *", time.Date(2023, 3, 14, 9, 45, 0, 0, time.UTC)},
		{"0 9-17/4 * * 1-5", time.Date(2023, 3, 14, 13, 0, 0, 0, time.UTC)},
		{"0 0 * * 0", time.Date(2023, 3, 19, 0, 0, 0, 0, time.UTC)},
		{"0 0 * * 7", time.Date(2023, 3, 19, 0, 0, 0, 0, time.UTC)},
		{"0 0 1 * *", time.Date(2023, 4, 1, 0, 0, 0, 0, time.UTC)},
		{"0 0 13 * 5", time.Date(2023, 3, 17, 0, 0, 0, 0, time.UTC)}, // day 13 or a Friday
		{"30 9 29 2 *", time.Date(2024, 2, 29, 9, 30, 0, 0, time.UTC)},
		{"0 0 31 2 *", time.Time{}},
		{"5,10 1 * 3 *", time.Date(2023, 3, 15, 1, 5, 0, 0, time.UTC)},
	} {
		s, err := query.ParseSchedule(c.expr)
		if err != nil {
			t.Fatalf("%q: %v", c.expr, err)
		}
		if got := s.Next(from); !got.Equal(c.want) {
			t.Errorf("%q after %s: %s, want %s", c.expr, from, got, c.want)
		}
	}
	for _, bad := range []string{"", "* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8", "*/0 * * * *", "5-1 * * * *", "a * * * *", "1-2-3 * * * *", "@never"} {
		if _, err := query.ParseSchedule(bad); !errors.Is(err, strata.ErrInvalid) {
			t.Errorf("%q: %v, want Invalid", bad, err)
		}
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2023, 6, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"now":                       now,
		"2023-03-14":                time.Date(2023, 3, 14, 0, 0, 0, 0, time.UTC),
		"2023-03-14T09:00":          time.Date(2023, 3, 14, 9, 0, 0, 0, time.UTC),
		"2023-03-14 09:00":          time.Date(2023, 3, 14, 9, 0, 0, 0, time.UTC),
		"2023-03-14T09:00:00+01:00": time.Date(2023, 3, 14, 8, 0, 0, 0, time.UTC),
		"2023-03-14T09:00:00.5Z":    time.Date(2023, 3, 14, 9, 0, 0, 5e8, time.UTC),
		"-90d":                      now.AddDate(0, 0, -90),
		"-36h":                      now.Add(-36 * time.Hour),
		"+15m":                      now.Add(15 * time.Minute),
	} {
		got, err := query.ParseTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q: %s, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "yesterday", "2023-13-01", "-5x", "--5d", "0200-01-01", "-99999999999d"} {
		if _, err := query.ParseTime(bad, now); !errors.Is(err, strata.ErrInvalid) {
			t.Errorf("%q: %v, want Invalid", bad, err)
		}
	}
	if d, err := query.ParseAge("90d"); err != nil || d != 90*24*time.Hour {
		t.Errorf("age 90d: %s, %v", d, err)
	}
	if _, err := query.ParseAge("0d"); !errors.Is(err, strata.ErrInvalid) {
		t.Errorf("age 0d: %v", err)
	}
}

func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"0 3 * * *", "*/5 1-3 1,15 * 1-5", "@weekly", "59 23 31 12 7"} {
		f.Add(s)
	}
	from := time.Date(2023, 3, 14, 9, 30, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		sched, err := query.ParseSchedule(s)
		if err != nil {
			if !errors.Is(err, strata.ErrInvalid) {
				t.Fatalf("%q: %v is not Invalid", s, err)
			}
			return
		}
		if next := sched.Next(from); !next.IsZero() && !next.After(from) {
			t.Fatalf("%q: next %s is not after %s", s, next, from)
		}
	})
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"now", "2023-03-14", "-90d", "2023-03-14T09:00:00+01:00", "+1h30m"} {
		f.Add(s)
	}
	now := time.Date(2023, 6, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := query.ParseTime(s, now)
		if err != nil {
			if !errors.Is(err, strata.ErrInvalid) {
				t.Fatalf("%q: %v is not Invalid", s, err)
			}
			return
		}
		if got.Location() != time.UTC || got.Year() < strata.MinTimerYear || got.Year() > strata.MaxTimerYear {
			t.Fatalf("%q: %s", s, got)
		}
	})
}

func FuzzDiff(f *testing.F) {
	f.Add([]byte(`{"a":1}`), []byte(`{"a":2,"b":[1]}`))
	f.Add([]byte(`null`), []byte(`{}`))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		d, err := query.Diff(a, b)
		if err != nil {
			if !errors.Is(err, strata.ErrInvalid) {
				t.Fatalf("%v is not Invalid", err)
			}
			return
		}
		if same, err := query.Diff(a, a); err != nil || len(same) != 0 {
			t.Fatalf("diff of %q with itself: %v, %v", a, same, err)
		}
		_ = d
	})
}

func TestParsePolicy(t *testing.T) {
	p, err := query.ParsePolicy("name=revocations,types=CertificateRevoked|CertificateSuspended,keep")
	if err != nil || p.Name != "revocations" || len(p.Types) != 2 || !p.Keep {
		t.Fatalf("%+v, %v", p, err)
	}
	p, err = query.ParsePolicy("name=beta, tenant=beta, age=365d")
	if err != nil || p.Tenant != "beta" || p.MaxAge != 365*24*time.Hour {
		t.Fatalf("%+v, %v", p, err)
	}
	for _, bad := range []string{"", "name=", "age=0d", "keep,age=1d", "name=a,name=b", "types=a||b", "colour=red", "keep=yes"} {
		if _, err := query.ParsePolicy(bad); !errors.Is(err, strata.ErrInvalid) {
			t.Errorf("%q: %v, want Invalid", bad, err)
		}
	}
}

func FuzzParsePolicy(f *testing.F) {
	f.Add("name=beta,tenant=beta,age=365d")
	f.Add("types=A|B,keep")
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := query.ParsePolicy(s); err != nil && !errors.Is(err, strata.ErrInvalid) {
			t.Fatalf("%q: %v is not Invalid", s, err)
		}
	})
}

func FuzzParseAge(f *testing.F) {
	for _, s := range []string{"90d", "36h", " 15m ", "0d", "-1h", "100000d", "1.5h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := query.ParseAge(s)
		if err != nil {
			if !errors.Is(err, strata.ErrInvalid) {
				t.Fatalf("%q: %v is not Invalid", s, err)
			}
			return
		}
		if d <= 0 {
			t.Fatalf("%q: age %s", s, d)
		}
		if back, err := query.ParseAge(d.String()); err != nil || back != d {
			t.Fatalf("%q → %s → %s, %v", s, d, back, err)
		}
	})
}
