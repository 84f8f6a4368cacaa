package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// How the output suggests running postern again: a suggested command must
// work when pasted into the reader's shell. After `go run ./cmd/postern
// demo` the binary is a temporary build that no PATH names, so it is
// `go run` again; otherwise the path the binary was started as.

// invocation is the environment selfCommand looks at; tests replace it.
type invocation struct {
	exe      string // os.Executable
	arg0     string // os.Args[0]
	cwd      string
	lookPath func(string) (string, error)
	sameFile func(a, b string) bool
	isDir    func(string) bool
}

func currentInvocation() invocation {
	exe, _ := os.Executable()
	cwd, _ := os.Getwd()
	return invocation{
		exe: exe, arg0: os.Args[0], cwd: cwd,
		lookPath: exec.LookPath,
		sameFile: func(a, b string) bool {
			fa, err1 := os.Stat(a)
			fb, err2 := os.Stat(b)
			return err1 == nil && err2 == nil && os.SameFile(fa, fb)
		},
		isDir: func(p string) bool { fi, err := os.Stat(p); return err == nil && fi.IsDir() },
	}
}

// command returns the words that run this binary from the reader's shell.
func (in invocation) command() []string {
	if goRunBuild(in.exe) {
		if in.isDir(filepath.Join(in.cwd, "cmd", "postern")) {
			return []string{"go", "run", "./cmd/postern"}
		}
		// Anywhere else in the module.
		return []string{"go", "run", "github.com/postern/postern/cmd/postern"}
	}
	if in.arg0 != "" && !strings.ContainsRune(in.arg0, os.PathSeparator) {
		// Started by name: the same name works if PATH finds this binary.
		if p, err := in.lookPath(in.arg0); err == nil && in.sameFile(p, in.exe) {
			return []string{in.arg0}
		}
	} else if in.arg0 != "" {
		// A path, relative to the directory the reader is in, or absolute.
		return []string{in.arg0}
	}
	if in.exe != "" {
		return []string{in.exe}
	}
	return []string{"postern"}
}

// goRunBuild tells whether exe is a binary `go run` built: since Go 1.24
// one kept in the build cache, GOCACHE/XX/HASH-d/NAME, and otherwise one
// in GOTMPDIR's go-buildNNN/bNNN/exe/NAME, deleted when go run ends.
func goRunBuild(exe string) bool {
	dir := filepath.Dir(exe)
	if cacheEntry.MatchString(filepath.Base(dir)) && cacheShard.MatchString(filepath.Base(filepath.Dir(dir))) {
		return true
	}
	if filepath.Base(dir) != "exe" {
		return false
	}
	return strings.HasPrefix(filepath.Base(filepath.Dir(filepath.Dir(dir))), "go-build")
}

var (
	cacheEntry = regexp.MustCompile(`^[0-9a-f]{64}-d$`)
	cacheShard = regexp.MustCompile(`^[0-9a-f]{2}$`)
)

// selfCommand returns a postern command line for the reader to run: this
// binary as it can be run, the global flags that select this installation
// (a --data other than the default, where the secret key and the
// configuration file are; a --database URL is never repeated, it may hold
// a password), then args.
func (a *app) selfCommand(args ...string) []string {
	in := currentInvocation()
	if a.invocation != nil {
		in = *a.invocation
	}
	words := in.command()
	if a.data != "./postern-data" {
		words = append(words, "--data", a.data)
	}
	if a.configPath != "" {
		words = append(words, "--config", a.configPath)
	}
	return append(words, args...)
}

// shellQuote quotes a word for sh when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@,+%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// shellLines writes a command as sh lines of at most width columns where
// the words allow, indented by indent, continued with a backslash.
func shellLines(words []string, indent string, width int) []string {
	var lines []string
	line := indent
	for i, w := range words {
		w = shellQuote(w)
		switch {
		case i == 0:
			line += w
		case len(line)+1+len(w)+2 > width: // " w \"
			lines = append(lines, line+" \\")
			line = indent + "    " + w
		default:
			line += " " + w
		}
	}
	return append(lines, line)
}

// quoteAll quotes each word for sh.
func quoteAll(words []string) []string {
	out := make([]string, len(words))
	for i, w := range words {
		out[i] = shellQuote(w)
	}
	return out
}
