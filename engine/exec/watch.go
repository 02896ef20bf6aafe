package exec

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// watchSpec is one parsed watch pattern. As upstream, only the directory
// part before the first `*` and the final extension matter: the file-name
// part is otherwise ignored, so `src/**/*.test.ts` watches every `.ts`
// under src.
type watchSpec struct {
	root      string   // directory (or file) watched; "." is the working directory
	recursive bool     // the pattern contains `**`
	exts      []string // accepted extensions; nil accepts every file
}

// parseWatch derives root, depth and extensions from a pattern:
//   - root: the pattern up to the first `*`, cut back to a whole directory,
//     "." when empty; a pattern without `*` names its root itself;
//   - recursive when the pattern contains `**`, else direct children only;
//   - extensions from the last segment: `*.ts` → ts, `*.{ts,tsx}` → ts and
//     tsx; a last segment without one (`*`, `**`) accepts every file.
func parseWatch(pattern string) watchSpec {
	s := watchSpec{recursive: strings.Contains(pattern, "**")}
	root := pattern
	if i := strings.IndexByte(pattern, '*'); i >= 0 {
		root = pattern[:i]
		if j := strings.LastIndexByte(root, '/'); j >= 0 {
			root = root[:j+1]
		} else {
			root = ""
		}
	}
	if root != "/" {
		root = strings.TrimRight(root, "/")
	}
	if root == "" {
		root = "."
	}
	s.root = filepath.Clean(root)

	seg := pattern[strings.LastIndexByte(pattern, '/')+1:]
	if i := strings.Index(seg, ".{"); i >= 0 && strings.HasSuffix(seg, "}") {
		for _, e := range strings.Split(seg[i+2:len(seg)-1], ",") {
			s.exts = append(s.exts, strings.TrimSpace(e))
		}
	} else if e := extOf(seg); e != "" {
		s.exts = []string{e}
	}
	return s
}

// extOf is a file's extension without the dot, "" for none (a leading dot,
// as in `.env`, does not start an extension).
func extOf(name string) string {
	i := strings.LastIndexByte(name, '.')
	if i <= 0 {
		return ""
	}
	return name[i+1:]
}

// matches reports whether a changed file restarts the pipeline; path is
// relative to the working directory (or absolute for absolute patterns).
func (s watchSpec) matches(path string) bool {
	path = filepath.Clean(path)
	dir := filepath.Dir(path)
	switch {
	case s.root == ".":
		if filepath.IsAbs(path) || path == ".." || strings.HasPrefix(path, "../") {
			return false
		}
		if !s.recursive && dir != "." {
			return false
		}
	case path == s.root: // the pattern named a file
	case s.recursive:
		if !strings.HasPrefix(path, strings.TrimSuffix(s.root, "/")+"/") {
			return false
		}
	default:
		if dir != s.root {
			return false
		}
	}
	if s.exts == nil {
		return true
	}
	e := extOf(filepath.Base(path))
	for _, want := range s.exts {
		if e != "" && e == want {
			return true
		}
	}
	return false
}

// skipDirs are never descended into by a recursive watch (unless the root
// is inside one): scanning dependency trees every poll is too costly and
// their churn (an install) must not restart the pipeline.
var skipDirs = map[string]bool{"node_modules": true, ".git": true}

// stamp identifies a file's content version well enough to see writes,
// replacements and renames.
type stamp struct {
	size  int64
	mtime int64
	ino   uint64
}

// watch polls the watched files and sends a changed path (debounced) on the
// returned channel until ctx ends.
func (r *Runner) watch(ctx context.Context) <-chan string {
	specs := make([]watchSpec, len(r.cfg.Watch))
	for i, p := range r.cfg.Watch {
		specs[i] = parseWatch(p)
		if _, err := os.Stat(r.abs(specs[i].root)); err != nil {
			r.log.Warn("exec: watch root does not exist (yet)", "pattern", p, "root", specs[i].root)
		}
	}
	changes := make(chan string, 1)
	prev := r.scan(specs)
	r.watching.Add(1)
	go func() {
		defer r.watching.Done()
		tick := time.NewTicker(r.cfg.PollInterval)
		defer tick.Stop()
		debounce := time.NewTimer(time.Hour)
		debounce.Stop()
		changed := ""
		for {
			select {
			case <-ctx.Done():
				debounce.Stop()
				return
			case <-tick.C:
				cur := r.scan(specs)
				if p := diff(prev, cur); p != "" {
					changed = p
					debounce.Reset(r.cfg.Debounce)
				}
				prev = cur
			case <-debounce.C:
				select {
				case changes <- changed:
				default: // a restart is already pending
				}
			}
		}
	}()
	return changes
}

// abs resolves a watch path against the working directory of the commands.
func (r *Runner) abs(p string) string {
	if filepath.IsAbs(p) || r.cfg.Dir == "" {
		return p
	}
	return filepath.Join(r.cfg.Dir, p)
}

// scan stamps every file the specs match, keyed by the path matched on.
func (r *Runner) scan(specs []watchSpec) map[string]stamp {
	out := map[string]stamp{}
	add := func(s watchSpec, path string, info fs.FileInfo) {
		if !info.Mode().IsRegular() || !s.matches(path) {
			return
		}
		st := stamp{size: info.Size(), mtime: info.ModTime().UnixNano()}
		if sys, ok := info.Sys().(*syscall.Stat_t); ok {
			st.ino = sys.Ino
		}
		out[path] = st
	}
	for _, s := range specs {
		info, err := os.Stat(r.abs(s.root))
		if err != nil {
			continue
		}
		if !info.IsDir() {
			add(s, s.root, info)
			continue
		}
		if !s.recursive {
			entries, _ := os.ReadDir(r.abs(s.root))
			for _, e := range entries {
				if info, err := e.Info(); err == nil {
					add(s, filepath.Join(s.root, e.Name()), info)
				}
			}
			continue
		}
		base := r.abs(s.root)
		filepath.WalkDir(base, func(full string, e fs.DirEntry, err error) error {
			if err != nil {
				return nil // vanished or unreadable: skip it, keep scanning
			}
			if e.IsDir() {
				if full != base && skipDirs[e.Name()] {
					return filepath.SkipDir
				}
				return nil
			}
			rel, _ := filepath.Rel(base, full)
			if info, err := e.Info(); err == nil {
				add(s, filepath.Join(s.root, rel), info)
			}
			return nil
		})
	}
	return out
}

// diff returns a path that was created, changed or removed between two
// scans, "" when they are equal.
func diff(prev, cur map[string]stamp) string {
	for p, st := range cur {
		if old, ok := prev[p]; !ok || old != st {
			return p
		}
	}
	for p := range prev {
		if _, ok := cur[p]; !ok {
			return p
		}
	}
	return ""
}
