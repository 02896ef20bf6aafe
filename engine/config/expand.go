package config

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
)

// envRef is ${NAME} or ${NAME:default}: NAME is one or more characters other
// than `}` and `:`, the default runs to the next `}` and may hold colons.
var envRef = regexp.MustCompile(`\$\{([^}:]+)(?::([^}]*))?\}`)

// expandEnv substitutes environment references in the raw file text, before
// YAML sees it (so references inside comments count too). A set variable
// wins even when empty; an unset one takes its default; unset without a
// default is an error naming the variable and its line.
func expandEnv(name string, text []byte) ([]byte, error) {
	var out bytes.Buffer
	last := 0
	for _, m := range envRef.FindAllSubmatchIndex(text, -1) {
		out.Write(text[last:m[0]])
		last = m[1]
		v, ok := os.LookupEnv(string(text[m[2]:m[3]]))
		switch {
		case ok:
			out.WriteString(v)
		case m[4] >= 0:
			out.Write(text[m[4]:m[5]])
		default:
			return nil, &Error{File: name, Line: 1 + bytes.Count(text[:m[0]], []byte("\n")),
				Key: string(text[m[0]:m[1]]),
				Msg: fmt.Sprintf("environment variable %s is not set and has no default (write ${%[1]s:default})", text[m[2]:m[3]])}
		}
	}
	out.Write(text[last:])
	return out.Bytes(), nil
}
