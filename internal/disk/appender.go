package disk

import "os"

// Appender writes to one file the way the log's segment store does —
// positioned writes into preallocated space, each made durable with
// Datasync — and does nothing else: it is the raw limit the log's
// benchmarks are measured against. It wraps around at its size.
type Appender struct {
	f         *os.File
	off, size int64
}

// NewAppender creates path (which must not exist) and preallocates size
// bytes in it.
func NewAppender(path string, size int64) (*Appender, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if err := Preallocate(f, size); err != nil {
		f.Close()
		return nil, err
	}
	return &Appender{f: f, size: size}, nil
}

// Append writes b after the previous write (at the start once the space is
// used up) and waits until it is durable.
func (a *Appender) Append(b []byte) error {
	if a.off+int64(len(b)) > a.size {
		a.off = 0
	}
	if _, err := a.f.WriteAt(b, a.off); err != nil {
		return err
	}
	a.off += int64(len(b))
	return Datasync(a.f)
}

// Close closes the file; it does not remove it.
func (a *Appender) Close() error { return a.f.Close() }
