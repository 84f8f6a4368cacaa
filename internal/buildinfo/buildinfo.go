// Package buildinfo says which Postern this binary is: the release version
// stamped at link time, or else the module version and VCS revision Go
// records in every binary, so a binary built with plain `go build` still
// names the commit it came from.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Version is set by `make release` (-ldflags "-X …/buildinfo.Version=v1.2.3").
var Version = ""

// Info is what a binary knows about its own build.
type Info struct {
	Version  string `json:"version"`  // release version, "devel" when unstamped
	Revision string `json:"revision"` // VCS commit, "" when unknown
	Time     string `json:"time"`     // commit time (RFC 3339), "" when unknown
	Modified bool   `json:"modified"` // built from a tree with uncommitted changes
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

// Read returns the running binary's build information.
func Read() Info {
	in := Info{Version: Version, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		if in.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			in.Version = bi.Main.Version // go install …@vX.Y.Z
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				in.Revision = s.Value
			case "vcs.time":
				in.Time = s.Value
			case "vcs.modified":
				in.Modified = s.Value == "true"
			}
		}
	}
	if in.Version == "" {
		in.Version = "devel"
	}
	return in
}

// String is the one line `postern --version` prints.
func (in Info) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "postern %s", in.Version)
	if in.Revision != "" {
		rev := in.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		fmt.Fprintf(&b, " (%s", rev)
		if in.Modified {
			b.WriteString("+modified")
		}
		if in.Time != "" {
			fmt.Fprintf(&b, ", %s", in.Time)
		}
		b.WriteString(")")
	}
	fmt.Fprintf(&b, " %s %s", in.Go, in.Platform)
	return b.String()
}
