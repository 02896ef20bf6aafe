package projections

import "iter"

// omap is a string-keyed map that remembers insertion order: the first set
// of a key fixes its position, overwriting keeps it, and delete then set
// moves the key to the end. Deletes leave tombstones that are compacted away
// once they outnumber live entries, so every operation is amortised O(1).
type omap[V any] struct {
	idx  map[string]int
	ents []oent[V]
	dead int
}

type oent[V any] struct {
	key  string
	val  V
	live bool
}

func (m *omap[V]) len() int { return len(m.idx) }

func (m *omap[V]) get(k string) (V, bool) {
	if i, ok := m.idx[k]; ok {
		return m.ents[i].val, true
	}
	var zero V
	return zero, false
}

// set stores v under k and returns the value it replaced.
func (m *omap[V]) set(k string, v V) (old V, existed bool) {
	if i, ok := m.idx[k]; ok {
		old = m.ents[i].val
		m.ents[i].val = v
		return old, true
	}
	if m.idx == nil {
		m.idx = make(map[string]int)
	}
	m.idx[k] = len(m.ents)
	m.ents = append(m.ents, oent[V]{key: k, val: v, live: true})
	return old, false
}

// del removes k and returns the value it held.
func (m *omap[V]) del(k string) (old V, existed bool) {
	i, ok := m.idx[k]
	if !ok {
		return old, false
	}
	old = m.ents[i].val
	delete(m.idx, k)
	m.ents[i] = oent[V]{} // drop references for the GC
	m.dead++
	switch {
	case len(m.idx) == 0:
		m.ents, m.dead = nil, 0
	case m.dead > 16 && m.dead > len(m.idx):
		m.compact()
	}
	return old, true
}

func (m *omap[V]) compact() {
	live := make([]oent[V], 0, len(m.idx))
	for _, e := range m.ents {
		if e.live {
			m.idx[e.key] = len(live)
			live = append(live, e)
		}
	}
	m.ents, m.dead = live, 0
}

// all iterates the live entries in order. The map must not be modified
// during the iteration.
func (m *omap[V]) all() iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		for _, e := range m.ents {
			if e.live && !yield(e.key, e.val) {
				return
			}
		}
	}
}

func (m *omap[V]) keys() []string {
	ks := make([]string, 0, len(m.idx))
	for k := range m.all() {
		ks = append(ks, k)
	}
	return ks
}

func (m *omap[V]) values() []V {
	vs := make([]V, 0, len(m.idx))
	for _, v := range m.all() {
		vs = append(vs, v)
	}
	return vs
}
