package projections

import (
	"io"
	"slices"

	"github.com/iii-go/iii/log"
	"github.com/vmihailenco/msgpack/v5"
)

// States is the state store: scope -> keys in insertion order. Empty scopes
// are dropped. It is unrelated to Streams even where names coincide.
type States struct {
	scopes omap[*bucket]
	keys   int
}

// StateChange is what a state record did. Old is nil when the key was
// missing; for a delete New is nil. Errors lists failed update ops.
type StateChange struct {
	Existed  bool
	Old, New []byte
	Errors   []OpError
}

// Apply folds one record; kinds other than state.set/update/delete yield a
// zero StateChange.
func (s *States) Apply(rec *log.Record) StateChange {
	switch rec.Kind {
	case log.KindStateSet, log.KindStateUpdate:
		b, ok := s.scopes.get(rec.Scope)
		if !ok {
			b = &bucket{}
			s.scopes.set(rec.Scope, b)
		}
		var w itemWrite
		if rec.Kind == log.KindStateSet {
			w = setItem(b, rec.Key, rec.Value)
		} else {
			w = updateItem(b, rec.Key, rec.Value)
		}
		if !w.existed {
			s.keys++
		}
		return StateChange{Existed: w.existed, Old: w.old, New: w.new, Errors: w.errs}
	case log.KindStateDelete:
		b, ok := s.scopes.get(rec.Scope)
		if !ok {
			return StateChange{}
		}
		old, existed := b.del(rec.Key)
		if !existed {
			return StateChange{}
		}
		s.keys--
		if b.len() == 0 {
			s.scopes.del(rec.Scope)
		}
		return StateChange{Existed: true, Old: old}
	}
	return StateChange{}
}

// Get returns the value stored under scope/key.
func (s *States) Get(scope, key string) ([]byte, bool) {
	if b, ok := s.scopes.get(scope); ok {
		return b.get(key)
	}
	return nil, false
}

// List returns the scope's values in insertion order (empty, not nil, when
// the scope is unknown).
func (s *States) List(scope string) [][]byte {
	if b, ok := s.scopes.get(scope); ok {
		return b.values()
	}
	return [][]byte{}
}

// ListScopes returns every non-empty scope, sorted ascending.
func (s *States) ListScopes() []string {
	ks := s.scopes.keys()
	slices.Sort(ks)
	return ks
}

// Counts reports how many scopes and keys are stored.
func (s *States) Counts() (scopes, keys int) {
	return s.scopes.len(), s.keys
}

// Snapshot writes the store (msgpack), preserving every order.
func (s *States) Snapshot(w io.Writer) error {
	return writeSnapshot(w, "states", func(enc *msgpack.Encoder) error {
		if err := enc.EncodeArrayLen(s.scopes.len()); err != nil {
			return err
		}
		for scope, b := range s.scopes.all() {
			if err := encodeBucket(enc, scope, b); err != nil {
				return err
			}
		}
		return nil
	})
}

// Restore replaces the store with a snapshot's content.
func (s *States) Restore(r io.Reader) error {
	var fresh States
	err := readSnapshot(r, "states", func(dec *msgpack.Decoder) error {
		n, err := decodeLen(dec)
		if err != nil {
			return err
		}
		for range n {
			scope, b, err := decodeBucket(dec)
			if err != nil {
				return err
			}
			if b.len() > 0 {
				fresh.scopes.set(scope, b)
				fresh.keys += b.len()
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	*s = fresh
	return nil
}
