// Package cron parses the schedules of `cron` triggers and finds their next
// time. The format is upstream iii's (the Quartz-like one of the Rust cron
// crate): six or seven fields, seconds first —
//
//	second minute hour day-of-month month day-of-week [year]
//
// with `*`, lists (`1,15`), ranges (`9-17`), steps (`*/5`, `10-40/10`),
// month names (JAN–DEC), day names (SUN–SAT, or 1–7 with Sunday = 1), `?`
// for "any" in the day fields, and the shorthands @yearly (@annually),
// @monthly, @weekly, @daily (@midnight) and @hourly. A time must match
// every field (both day fields, when both are restricted). Times are UTC.
// Five-field crontab expressions are refused.
package cron

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule is a parsed expression.
type Schedule struct {
	sec, min, hour, dom, month, dow uint64 // bit i set: value i matches
	years                           map[int]bool
}

type field struct {
	name     string
	min, max int
	names    []string // names[i] is value min+i
}

var (
	fSec   = field{"seconds", 0, 59, nil}
	fMin   = field{"minutes", 0, 59, nil}
	fHour  = field{"hours", 0, 23, nil}
	fDom   = field{"day of month", 1, 31, nil}
	fMonth = field{"month", 1, 12, []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}}
	fDow   = field{"day of week", 1, 7, []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}}
	fYear  = field{"year", 1970, 2099, nil}
)

var shorthands = map[string]string{
	"@yearly": "0 0 0 1 1 *", "@annually": "0 0 0 1 1 *", "@monthly": "0 0 0 1 * *",
	"@weekly": "0 0 0 * * 1", "@daily": "0 0 0 * * *", "@midnight": "0 0 0 * * *", "@hourly": "0 0 * * * *",
}

// Parse parses an expression; the error says which field is wrong.
func Parse(expr string) (*Schedule, error) {
	e := strings.TrimSpace(expr)
	if s, ok := shorthands[strings.ToLower(e)]; ok {
		e = s
	}
	fs := strings.Fields(e)
	if len(fs) != 6 && len(fs) != 7 {
		return nil, fmt.Errorf("expected 6 or 7 fields (second minute hour day-of-month month day-of-week [year]), got %d", len(fs))
	}
	s := &Schedule{}
	for i, p := range []struct {
		f   field
		dst *uint64
		any bool // ? allowed
	}{{fSec, &s.sec, false}, {fMin, &s.min, false}, {fHour, &s.hour, false}, {fDom, &s.dom, true}, {fMonth, &s.month, false}, {fDow, &s.dow, true}} {
		bits, err := parseField(fs[i], p.f, p.any)
		if err != nil {
			return nil, err
		}
		*p.dst = bits
	}
	if len(fs) == 7 && fs[6] != "*" {
		s.years = map[int]bool{}
		for _, item := range strings.Split(fs[6], ",") {
			lo, hi, step, err := parseItem(item, fYear, false)
			if err != nil {
				return nil, err
			}
			for y := lo; y <= hi; y += step {
				s.years[y] = true
			}
		}
	}
	return s, nil
}

func parseField(text string, f field, question bool) (uint64, error) {
	var bits uint64
	for _, item := range strings.Split(text, ",") {
		lo, hi, step, err := parseItem(item, f, question)
		if err != nil {
			return 0, err
		}
		for v := lo; v <= hi; v += step {
			bits |= 1 << v
		}
	}
	return bits, nil
}

// parseItem reads one list item: *, ?, a value, a range, each with /step.
func parseItem(item string, f field, question bool) (lo, hi, step int, err error) {
	rng, stepText, hasStep := strings.Cut(item, "/")
	step = 1
	if hasStep {
		if step, err = strconv.Atoi(stepText); err != nil || step < 1 {
			return 0, 0, 0, fmt.Errorf("%s: invalid step %q", f.name, stepText)
		}
	}
	switch {
	case rng == "*" || rng == "?" && question:
		return f.min, f.max, step, nil
	case strings.Contains(rng, "-"):
		a, b, _ := strings.Cut(rng, "-")
		if lo, err = f.value(a); err != nil {
			return 0, 0, 0, err
		}
		if hi, err = f.value(b); err != nil {
			return 0, 0, 0, err
		}
		if lo > hi {
			return 0, 0, 0, fmt.Errorf("%s: range %q runs backwards", f.name, rng)
		}
		return lo, hi, step, nil
	}
	if lo, err = f.value(rng); err != nil {
		return 0, 0, 0, err
	}
	if hasStep {
		return lo, f.max, step, nil // 10/5: from 10 on
	}
	return lo, lo, 1, nil
}

func (f field) value(text string) (int, error) {
	for i, n := range f.names {
		if strings.EqualFold(text, n) {
			return f.min + i, nil
		}
	}
	v, err := strconv.Atoi(text)
	if err != nil || v < f.min || v > f.max {
		return 0, fmt.Errorf("%s: %q is not a value from %d to %d", f.name, text, f.min, f.max)
	}
	return v, nil
}

func has(bits uint64, v int) bool { return bits&(1<<v) != 0 }

// Next returns the first matching time strictly after t (UTC, whole
// seconds), or the zero time when none comes before the year 2100.
func (s *Schedule) Next(t time.Time) time.Time {
	t = t.UTC().Truncate(time.Second).Add(time.Second)
	for t.Year() < 2100 {
		switch {
		case s.years != nil && !s.years[t.Year()]:
			t = time.Date(t.Year()+1, 1, 1, 0, 0, 0, 0, time.UTC)
		case !has(s.month, int(t.Month())):
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC)
		case !has(s.dom, t.Day()) || !has(s.dow, int(t.Weekday())+1):
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC)
		case !has(s.hour, t.Hour()):
			t = t.Truncate(time.Hour).Add(time.Hour)
		case !has(s.min, t.Minute()):
			t = t.Truncate(time.Minute).Add(time.Minute)
		case !has(s.sec, t.Second()):
			t = t.Add(time.Second)
		default:
			return t
		}
	}
	return time.Time{}
}
