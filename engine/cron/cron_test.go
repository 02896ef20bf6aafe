package cron

import (
	"strings"
	"testing"
	"time"
)

func TestNext(t *testing.T) {
	at := time.Date(2026, 12, 7, 10, 20, 30, 500, time.UTC) // a Monday
	tests := []struct {
		expr string
		want string
	}{
		{"* * * * * *", "2026-12-07T10:20:31Z"},
		{"0 */5 * * * *", "2026-12-07T10:25:00Z"},
		{"30 20 10 * * *", "2026-12-08T10:20:30Z"}, // strictly after
		{"0 0 9-17 * * MON-FRI", "2026-12-07T11:00:00Z"},
		{"0 0 0 * * 1", "2026-12-13T00:00:00Z"}, // 1 = Sunday
		{"0 0 0 * * SUN", "2026-12-13T00:00:00Z"},
		{"0 0 0 1 JAN ?", "2027-01-01T00:00:00Z"},
		{"0 0 12 29 2 * 2028", "2028-02-29T12:00:00Z"},
		{"0 0 0 13 * FRI", "2027-08-13T00:00:00Z"}, // both day fields must match
		{"@hourly", "2026-12-07T11:00:00Z"},
		{"@weekly", "2026-12-13T00:00:00Z"},
		{"15,45 * * * * *", "2026-12-07T10:20:45Z"},
		{"10/20 * * * * *", "2026-12-07T10:20:50Z"},
	}
	for _, tt := range tests {
		s, err := Parse(tt.expr)
		if err != nil {
			t.Fatalf("%s: %v", tt.expr, err)
		}
		if got := s.Next(at).Format(time.RFC3339); got != tt.want {
			t.Errorf("%s: next %s, want %s", tt.expr, got, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tt := range []struct{ expr, want string }{
		{"* * * * *", "expected 6 or 7 fields"},
		{"0 0 0 * * 0", "day of week: \"0\" is not a value from 1 to 7"},
		{"61 * * * * *", "seconds"},
		{"0 0 0 ? * *x", "day of week"},
		{"0 0 0 * * * 2200", "year"},
		{"0 0 5-1 * * *", "runs backwards"},
		{"*/0 * * * * *", "invalid step"},
		{"? * * * * *", "seconds"},
	} {
		if _, err := Parse(tt.expr); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one naming %q", tt.expr, err, tt.want)
		}
	}
}

func TestNoTimeLeft(t *testing.T) {
	s, _ := Parse("0 0 0 1 1 * 1999")
	if _, err := Parse("0 0 0 1 1 * 1999"); err != nil {
		t.Fatal(err)
	}
	if n := s.Next(time.Now()); !n.IsZero() {
		t.Fatalf("a schedule in the past fires at %v", n)
	}
}
