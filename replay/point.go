package replay

import (
	"fmt"
	"github.com/iii-go/iii/history"
	"strconv"
	"time"
)

// Point is a position in history: either a record index, or a time, which
// stands for the last record written at or before it. Index 0 and a time
// before the first record are the empty state before any record.
type Point struct {
	Index uint64
	// Time, when not zero, makes this a time point (Index is then unused).
	Time time.Time
}

// ParsePoint reads a record index ("42") or a time as ParseTime accepts it
// (RFC 3339, or a duration before now such as "15m").
func ParsePoint(s string, now time.Time) (Point, error) {
	if s == "" {
		return Point{}, fmt.Errorf("empty point: want a record index or a time")
	}
	if s[0] >= '0' && s[0] <= '9' {
		if i, err := strconv.ParseUint(s, 10, 64); err == nil {
			return Point{Index: i}, nil
		}
	}
	t, err := history.ParseTime(s, now)
	if err != nil {
		return Point{}, fmt.Errorf("point %w", err)
	}
	return Point{Time: t}, nil
}

// IsTime reports whether p is a time point.
func (p Point) IsTime() bool { return !p.Time.IsZero() }

// String renders p as ParsePoint reads it (times in RFC 3339, UTC).
func (p Point) String() string {
	if p.IsTime() {
		return p.Time.UTC().Format(time.RFC3339Nano)
	}
	return strconv.FormatUint(p.Index, 10)
}

// includes reports whether the record at index with time t lies at or
// before p.
func (p Point) includes(index uint64, t int64) bool {
	if p.IsTime() {
		return t <= p.Time.UnixNano()
	}
	return index <= p.Index
}
