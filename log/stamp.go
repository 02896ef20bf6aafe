package log

import (
	cryptorand "crypto/rand"
	"time"

	"github.com/oklog/ulid/v2"
)

// Stamper fills in the version, time and id of the records one writer
// makes: times never go backwards and ids (ULIDs) grow, so both follow the
// order the writer stamps in. The local log stamps on its sequencer; a
// cluster log stamps before it publishes. A Stamper is not safe for
// concurrent use.
type Stamper struct {
	entropy  *ulid.MonotonicEntropy
	lastTime int64
	lastMs   uint64
}

// NewStamper returns a Stamper drawing ids from crypto/rand.
func NewStamper() *Stamper {
	return &Stamper{entropy: ulid.Monotonic(cryptorand.Reader, 0)}
}

// Stamp fills in rec's zero V, Time and ID.
func (s *Stamper) Stamp(rec *Record) {
	if rec.V == 0 {
		rec.V = RecordVersion
	}
	if rec.Time == 0 {
		rec.Time = max(time.Now().UnixNano(), s.lastTime)
		s.lastTime = rec.Time
	}
	if rec.ID == (ulid.ULID{}) {
		s.fillID(&rec.ID, rec.Time)
	}
}

// fillID sets *id to a ULID greater than every one fillID made before. It
// writes in place: ulid.New would move its result to the heap.
func (s *Stamper) fillID(id *ulid.ULID, unixNano int64) {
	ms := max(uint64(max(unixNano, 0)/int64(time.Millisecond)), s.lastMs)
	for {
		err := id.SetTime(ms)
		if err == nil {
			err = s.entropy.MonotonicRead(ms, id[6:])
		}
		if err == nil {
			s.lastMs = ms
			return
		}
		// The entropy ran out within one millisecond (ErrMonotonicOverflow):
		// move on to the next one.
		ms++
	}
}
