package main

import (
	"fmt"
	"strings"
)

// flags is a parsed command line: GNU-style `--name value`, `--name=value`
// and `-n value`, interleaved with positional arguments (upstream's CLI puts
// the function id before the flags).
type flags struct {
	values     map[string]string
	bools      map[string]bool
	positional []string
}

func parseFlags(args []string, valued, boolean map[string]bool) (*flags, error) {
	f := &flags{values: map[string]string{}, bools: map[string]bool{}}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			f.positional = append(f.positional, a)
			continue
		}
		if a == "--" {
			f.positional = append(f.positional, args[i+1:]...)
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case boolean[name]:
			if hasValue {
				return nil, fmt.Errorf("flag --%s takes no value", name)
			}
			f.bools[name] = true
		case valued[name]:
			if !hasValue {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("flag --%s needs a value", name)
				}
				i++
				value = args[i]
			}
			f.values[name] = value
		default:
			return nil, fmt.Errorf("unknown flag %s", a)
		}
	}
	return f, nil
}

// get returns the value of the first of the names that was given.
func (f *flags) get(names ...string) string {
	for _, n := range names {
		if v, ok := f.values[n]; ok {
			return v
		}
	}
	return ""
}

func (f *flags) has(names ...string) bool {
	for _, n := range names {
		if f.bools[n] {
			return true
		}
	}
	return false
}
