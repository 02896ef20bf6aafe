package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse: no config text makes the loader panic, and every refusal is a
// located *Error whose line is inside the text.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("workers:\n\t- name: x\n")
	f.Add("engine:\n  max_trigger_depth: 256\n")
	f.Add("modules:\n  - class: modules::worker::WorkerModule\n    config: {port: ${PORT:49134}}\n")
	f.Fuzz(func(t *testing.T, text string) {
		cfg, err := Parse("fuzz.yaml", []byte(text))
		if err == nil {
			if len(cfg.Listeners) == 0 {
				t.Fatal("accepted config has no listener")
			}
			return
		}
		var ce *Error
		if !errors.As(err, &ce) {
			t.Fatalf("%v is not a *config.Error", err)
		}
		// YAML breaks lines at \r too (and at NEL, LS, PS), so bound by every
		// break character.
		breaks := strings.Count(text, "\n") + strings.Count(text, "\r") +
			strings.Count(text, "\u0085") + strings.Count(text, "\u2028") + strings.Count(text, "\u2029")
		if lines := breaks + 1; ce.Line < 0 || ce.Line > lines+1 {
			t.Fatalf("error at line %d of a %d-line text: %v", ce.Line, lines, err)
		}
	})
}
