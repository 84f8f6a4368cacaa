package buildinfo

import (
	"runtime"
	"strings"
	"testing"
)

func TestStringNamesVersionRevisionAndPlatform(t *testing.T) {
	in := Info{Version: "v1.2.3", Revision: "0123456789abcdef0123", Time: "2026-12-02T10:00:00Z", Modified: true, Go: "go1.26.8", Platform: "linux/amd64"}
	want := "postern v1.2.3 (0123456789ab+modified, 2026-12-02T10:00:00Z) go1.26.8 linux/amd64"
	if got := in.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := (Info{Version: "devel", Go: "go1.26.8", Platform: "linux/arm64"}).String(); got != "postern devel go1.26.8 linux/arm64" {
		t.Errorf("without a revision: %q", got)
	}
}

func TestReadStampedVersionWins(t *testing.T) {
	old := Version
	defer func() { Version = old }()
	Version = "v9.9.9"
	in := Read()
	if in.Version != "v9.9.9" || in.Go != runtime.Version() || !strings.Contains(in.Platform, "/") {
		t.Errorf("Read() = %+v", in)
	}
	Version = ""
	if Read().Version == "" {
		t.Error("an unstamped binary must still say something (devel or the module version)")
	}
}
