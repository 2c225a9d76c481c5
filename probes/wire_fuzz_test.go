package probes

import (
	"errors"
	"reflect"
	"testing"
)

// FuzzProberRequest feeds the prober's request parser any line. A line it
// accepts must survive a round trip through the supervisor's encoder: what
// appendDefine or appendProbe write for the parsed request parses back to
// the same request. So the two sides can never disagree on a field.
func FuzzProberRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, line []byte) {
		req, err := ParseRequest(line)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("ParseRequest(%q) error %v does not wrap ErrBadRequest", line, err)
			}
			return
		}
		var enc []byte
		if req.Define != nil {
			enc = appendDefine(nil, req.Handle, req.Define)
		} else {
			enc = appendProbe(nil, req.ID, req.Handle, req.PodIP)
		}
		again, err := ParseRequest(enc[:len(enc)-1])
		if err != nil {
			t.Fatalf("ParseRequest(%q) = %+v, but its encoding %q does not parse: %v", line, req, enc, err)
		}
		if !reflect.DeepEqual(req, again) {
			t.Fatalf("round trip of %q changed the request:\n%+v %+v\nto\n%+v %+v", line, req, req.Define, again, again.Define)
		}
	})
}

// FuzzProberResponse feeds the supervisor's response parser any line (the
// prober's stdout): an accepted response re-encoded by AppendResponse
// parses back to the same id, outcome, message and error text.
func FuzzProberResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, line []byte) {
		res, err := parseResponse(line)
		if err != nil {
			return
		}
		enc := AppendResponse(nil, res.id, res.out, res.msg, res.err)
		again, err := parseResponse(enc[:len(enc)-1])
		if err != nil {
			t.Fatalf("parseResponse(%q) = %+v, but its encoding %q does not parse: %v", line, res, enc, err)
		}
		if again.id != res.id || again.out != res.out || again.msg != res.msg || errString(again.err) != errString(res.err) {
			t.Fatalf("round trip of %q changed the response: %+v to %+v", line, res, again)
		}
	})
}

// errString is err's text, "" for nil.
func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
