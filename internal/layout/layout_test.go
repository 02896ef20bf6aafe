package layout

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/iii-go/iii/"

// allowed reads the import overview from the README: the fenced block after
// the line "<!-- imports -->", one "pkg → dep, dep" line per package
// ("—" for none). internal/* packages may be imported by anyone.
func allowed(t *testing.T) map[string]map[string]bool {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[string]bool{}
	sc := bufio.NewScanner(f)
	state := 0 // 0 before the marker, 1 before the fence, 2 inside
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case state == 0 && line == "<!-- imports -->":
			state = 1
		case state == 1 && strings.HasPrefix(line, "```"):
			state = 2
		case state == 2 && strings.HasPrefix(line, "```"):
			return out
		case state == 2 && line != "":
			pkg, deps, ok := strings.Cut(line, "→")
			if !ok {
				t.Fatalf("README import overview: %q is not \"pkg → deps\"", line)
			}
			set := map[string]bool{}
			for _, d := range strings.Split(deps, ",") {
				if d = strings.TrimSpace(d); d != "" && d != "—" {
					set[d] = true
				}
			}
			out[strings.TrimSpace(pkg)] = set
		}
	}
	t.Fatal("README.md has no import overview (a fenced block after <!-- imports -->)")
	return nil
}

// TestImportsMatchTheREADME fails on an import between this module's
// packages that the README's overview does not draw, and on a package the
// overview does not list.
func TestImportsMatchTheREADME(t *testing.T) {
	want := allowed(t)
	cmd := exec.Command("go", "list", "-json", module+"...")
	cmd.Dir = filepath.Join("..", "..")
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	seen := map[string]bool{}
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(p.ImportPath, module)
		if strings.HasPrefix(name, "internal/") {
			continue
		}
		seen[name] = true
		deps, listed := want[name]
		if !listed {
			t.Errorf("package %s is not in the README's import overview", name)
			continue
		}
		for _, imp := range p.Imports {
			dep, ours := strings.CutPrefix(imp, module)
			if !ours || strings.HasPrefix(dep, "internal/") {
				continue
			}
			if !deps[dep] {
				t.Errorf("%s imports %s: the README's overview forbids that arrow", name, dep)
			}
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("the README's import overview lists %s, which is not a package", name)
		}
	}
}
