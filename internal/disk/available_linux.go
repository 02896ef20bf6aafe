package disk

import "syscall"

// Available returns the bytes an unprivileged writer can still use on the
// file system that holds path.
func Available(path string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * st.Bsize, nil
}
