package query

import (
	"strconv"
	"strings"
	"time"

	"github.com/strata-events/strata"
)

// Schedule is a parsed 5-field cron expression: minute hour day-of-month month day-of-week.
// Fields take *, numbers, ranges (a-b), steps (*/n, a-b/n) and lists (a,b); day-of-week runs
// 0-6 from Sunday (7 is Sunday too). As in cron, when both day fields are restricted a day
// matches either. The shortcuts @hourly, @daily (@midnight), @weekly, @monthly and @yearly
// (@annually) are accepted. Times are in UTC.
type Schedule struct {
	minute, hour, dom, month, dow uint64 // bit sets
	domStar, dowStar              bool
	text                          string
}

// String returns the expression it was parsed from.
func (s Schedule) String() string { return s.text }

// DefaultSchedule is retention's default: daily at 03:00 UTC.
const DefaultSchedule = "0 3 * * *"

// ParseSchedule parses a cron expression; errors are Invalid.
func ParseSchedule(expr string) (Schedule, error) {
	const op = "parse schedule"
	text := strings.TrimSpace(expr)
	switch text {
	case "@hourly":
		expr = "0 * * * *"
	case "@daily", "@midnight":
		expr = "0 0 * * *"
	case "@weekly":
		expr = "0 0 * * 0"
	case "@monthly":
		expr = "0 0 1 * *"
	case "@yearly", "@annually":
		expr = "0 0 1 1 *"
	}
	f := strings.Fields(expr)
	if len(f) != 5 {
		return Schedule{}, strata.Errorf(strata.Invalid, op, "%q: want 5 fields (minute hour day month weekday)", text)
	}
	s := Schedule{text: text}
	var err error
	bounds := [5][2]int{{0, 59}, {0, 23}, {1, 31}, {1, 12}, {0, 7}}
	dst := [5]*uint64{&s.minute, &s.hour, &s.dom, &s.month, &s.dow}
	for i := range f {
		if *dst[i], err = parseField(f[i], bounds[i][0], bounds[i][1]); err != nil {
			return Schedule{}, strata.Errorf(strata.Invalid, op, "%q field %d: %w", text, i+1, err)
		}
	}
	if s.dow&(1<<7) != 0 {
		s.dow |= 1
	}
	s.domStar, s.dowStar = f[2] == "*" || strings.HasPrefix(f[2], "*/"), f[4] == "*" || strings.HasPrefix(f[4], "*/")
	return s, nil
}

type fieldError string

func (e fieldError) Error() string { return string(e) }

func parseField(f string, lo, hi int) (uint64, error) {
	var bits uint64
	for _, part := range strings.Split(f, ",") {
		rng, stepText, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 || n > hi {
				return 0, fieldError("bad step " + strconv.Quote(stepText))
			}
			step = n
		}
		a, b := lo, hi
		switch {
		case rng == "*":
		case strings.Contains(rng, "-"):
			as, bs, _ := strings.Cut(rng, "-")
			var err1, err2 error
			a, err1 = strconv.Atoi(as)
			b, err2 = strconv.Atoi(bs)
			if err1 != nil || err2 != nil {
				return 0, fieldError("bad range " + strconv.Quote(rng))
			}
		default:
			n, err := strconv.Atoi(rng)
			if err != nil {
				return 0, fieldError("bad value " + strconv.Quote(rng))
			}
			a, b = n, n
			if hasStep {
				b = hi
			}
		}
		if a < lo || b > hi || a > b {
			return 0, fieldError("value out of " + strconv.Itoa(lo) + "-" + strconv.Itoa(hi))
		}
		for v := a; v <= b; v += step {
			bits |= 1 << uint(v)
		}
	}
	return bits, nil
}

// Next returns the first time after t (to the minute, UTC) that the schedule fires, or the zero
// time when it never does (such as "0 0 31 2 *") within five years.
func (s Schedule) Next(t time.Time) time.Time {
	t = t.UTC().Truncate(time.Minute).Add(time.Minute)
	end := t.AddDate(5, 0, 0)
	for t.Before(end) {
		if s.month&(1<<uint(t.Month())) == 0 {
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC)
			continue
		}
		if !s.dayMatches(t) {
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC)
			continue
		}
		if s.hour&(1<<uint(t.Hour())) == 0 {
			t = t.Truncate(time.Hour).Add(time.Hour)
			continue
		}
		if s.minute&(1<<uint(t.Minute())) == 0 {
			t = t.Add(time.Minute)
			continue
		}
		return t
	}
	return time.Time{}
}

func (s Schedule) dayMatches(t time.Time) bool {
	dom := s.dom&(1<<uint(t.Day())) != 0
	dow := s.dow&(1<<uint(t.Weekday())) != 0
	if s.domStar || s.dowStar {
		return dom && dow
	}
	return dom || dow
}
