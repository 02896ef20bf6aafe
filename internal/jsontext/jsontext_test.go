package jsontext

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quo"te`, `back\slash`, "tab\tnl\ncr\r", "\x00\x01\x1f\x7f", "bell\b ff\f",
		"unicode é ü 中文 🎉", "line\u2028para\u2029", "<html> & friends",
	} {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		got := AppendString(nil, s)
		if string(got) != string(bytes.TrimSuffix(want.Bytes(), []byte("\n"))) {
			t.Errorf("AppendString(%q) = %s, encoding/json gives %s", s, got, want.Bytes())
		}
	}
}

func TestAppendStringInvalidUTF8(t *testing.T) {
	got := AppendString(nil, "a\xffb")
	if string(got) != `"a\ufffdb"` {
		t.Errorf("invalid UTF-8: got %s", got)
	}
	var back string
	if err := json.Unmarshal(got, &back); err != nil || back != "a\uFFFDb" {
		t.Errorf("round trip: %q %v", back, err)
	}
}
