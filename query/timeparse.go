package query

import (
	"strconv"
	"strings"
	"time"

	"github.com/strata-events/strata"
)

// ParseTime reads a time for the CLI: "now"; RFC 3339 ("2023-03-14T09:00:00Z",
// "2023-03-14T09:00:00+01:00"); "2023-03-14T09:00", "2023-03-14 09:00" or "2023-03-14" (UTC);
// or a time relative to now, "-90d", "-36h", "-15m" (also with "+"). The time is in UTC, as
// precise as written: it is not truncated to the stored microseconds, so that a bound between
// two of them stays where it was written (the event query rounds its ends up, StateAt its
// times down). Errors are Invalid.
func ParseTime(s string, now time.Time) (time.Time, error) {
	const op = "parse time"
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, strata.Errorf(strata.Invalid, op, "an empty time")
	}
	if s == "now" {
		return now.UTC(), nil
	}
	if s[0] == '-' || s[0] == '+' {
		d, err := parseRelative(s[1:])
		if err != nil {
			return time.Time{}, strata.Errorf(strata.Invalid, op, "%q: %w", s, err)
		}
		if s[0] == '-' {
			d = -d
		}
		return checkYear(op, s, now.Add(d).UTC())
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return checkYear(op, s, t.UTC())
		}
	}
	return time.Time{}, strata.Errorf(strata.Invalid, op, "%q is not a time (want RFC 3339, 2006-01-02[T15:04], now, or -90d)", s)
}

func checkYear(op, s string, t time.Time) (time.Time, error) {
	if y := t.Year(); y < strata.MinTimerYear || y > strata.MaxTimerYear {
		return time.Time{}, strata.Errorf(strata.Invalid, op, "%q lies outside the years %d-%d", s, strata.MinTimerYear, strata.MaxTimerYear)
	}
	return t, nil
}

// parseRelative reads "90d" (days) or a Go duration ("36h", "15m").
func parseRelative(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseUint(n, 10, 32)
		if err != nil || days > 100_000 {
			return 0, fieldError("bad number of days")
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fieldError("bad duration")
	}
	return d, nil
}

// ParseAge reads a retention age: "90d", "36h", or a Go duration. Errors are Invalid.
func ParseAge(s string) (time.Duration, error) {
	d, err := parseRelative(strings.TrimSpace(s))
	if err != nil || d <= 0 {
		return 0, strata.Errorf(strata.Invalid, "parse age", "%q is not an age (want 90d or 36h)", s)
	}
	return d, nil
}

// ParsePolicy reads a retention policy written as comma-separated fields:
// "name=revocations,types=CertificateRevoked|CertificateSuspended,keep" or
// "name=beta,tenant=beta,age=365d". Fields: name, tenant, types (separated by |), age (see
// ParseAge), and keep. Errors are Invalid.
func ParsePolicy(s string) (Policy, error) {
	const op = "parse policy"
	var p Policy
	seen := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		k, v, hasValue := strings.Cut(strings.TrimSpace(f), "=")
		if seen[k] {
			return Policy{}, strata.Errorf(strata.Invalid, op, "%q: %s given twice", s, k)
		}
		seen[k] = true
		switch {
		case k == "keep" && !hasValue:
			p.Keep = true
		case k == "name" && v != "":
			p.Name = v
		case k == "tenant" && v != "":
			p.Tenant = v
		case k == "types" && v != "":
			for _, t := range strings.Split(v, "|") {
				if t == "" {
					return Policy{}, strata.Errorf(strata.Invalid, op, "%q: an empty type", s)
				}
				p.Types = append(p.Types, t)
			}
		case k == "age" && v != "":
			d, err := ParseAge(v)
			if err != nil {
				return Policy{}, strata.Errorf(strata.Invalid, op, "%q: %w", s, err)
			}
			p.MaxAge = d
		default:
			return Policy{}, strata.Errorf(strata.Invalid, op, "%q: unknown or empty field %q (want name=, tenant=, types=A|B, age=90d, keep)", s, f)
		}
	}
	if p.Keep && p.MaxAge != 0 {
		return Policy{}, strata.Errorf(strata.Invalid, op, "%q: keep and age together", s)
	}
	return p, nil
}
