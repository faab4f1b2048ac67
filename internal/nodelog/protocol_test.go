package nodelog

import (
	"bytes"
	"compress/bzip2"
	"flag"
	"io"
	"os"
	"os/exec"
	"testing"
)

var update = flag.Bool("update", false, "rewrite protocol.py.bz2 from protocolSource (needs bzip2)")

// TestProtocolDef checks that the embedded protocol definition is the
// bz2 of the current protocolSource: a packet added to proto must be
// named in it.
func TestProtocolDef(t *testing.T) {
	want := protocolSource()
	if *update {
		cmd := exec.Command("bzip2", "-9")
		cmd.Stdin = bytes.NewReader([]byte(want))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("bzip2: %v", err)
		}
		if err := os.WriteFile("protocol.py.bz2", out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := io.ReadAll(bzip2.NewReader(bytes.NewReader(protocolDef)))
	if err != nil {
		t.Fatalf("protocol.py.bz2: %v (rerun with -update)", err)
	}
	if string(got) != want {
		t.Fatalf("protocol.py.bz2 is not current: go test ./internal/nodelog -run TestProtocolDef -update")
	}
}
