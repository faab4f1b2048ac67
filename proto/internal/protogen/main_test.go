package main

import (
	"bytes"
	"os"
	"testing"
)

// TestUpToDate fails when zproto_codec.go was not regenerated after a
// change of proto.go or of the generator (run go generate ./proto).
func TestUpToDate(t *testing.T) {
	want, err := generate("../../proto.go")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../zproto_codec.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("proto/zproto_codec.go is stale: run go generate ./proto")
	}
}
