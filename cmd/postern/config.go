package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/passhash"
	"github.com/postern/postern/internal/store/sqlstore"
)

// app is one run of the command: its streams, the global configuration, and
// the pieces opened on demand (store, service).
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) (string, bool) // os.LookupEnv unless a test replaces it

	// Global flags.
	data       string
	database   string
	secretFile string
	cutoffFlag string
	baseURL    string
	logLevel   string
	logFormat  string
	configPath string // --config (configfile.go)

	baseURLGiven bool // --base-url (or its variable) was given, not read from the database

	cutoff time.Time
	envOK  map[string]bool // flags that may come from the environment
	given  map[string]bool // flags given on the command line or by a variable (not by the file)

	invocation *invocation // how suggested commands run this binary; nil: this process's (selfcmd.go)
	runCmd     runFunc

	log     *slog.Logger
	logBuf  *logBuffer // serve and demo: the log's buffer (logbuf.go)
	stopLog func()     // stops logBuf's flushing after a last flush
	db      *sqlstore.DB
	svc     *account.Service
}

// envPrefix + NAME (upper case, '_' for '-') is the environment variable of a flag.
const envPrefix = "POSTERN_"

func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// configVar registers a string flag that may also come from the environment.
// Only configuration flags do: per-command operands such as --name stay on
// the command line, where a stray POSTERN_NAME cannot change what a command does.
func (a *app) configVar(fs *flag.FlagSet, p *string, name, def, usage string) {
	if a.envOK == nil {
		a.envOK = map[string]bool{}
	}
	a.envOK[name] = true
	fs.StringVar(p, name, def, usage+" ("+envName(name)+")")
}

func (a *app) registerGlobals(fs *flag.FlagSet) {
	// Not a configVar: the file cannot name another file.
	fs.StringVar(&a.configPath, "config", "", "TOML file of settings, named like these flags: web-addr = \":80\"; flags and variables win over it (default: DATA/"+configFileName+" if it exists) ("+configEnv+")")
	a.configVar(fs, &a.data, "data", "./postern-data", "data folder: SQLite database, secret key, TLS certificate")
	a.configVar(fs, &a.database, "database", "", "PostgreSQL URL postgres://…; default: SQLite in the data folder")
	a.configVar(fs, &a.secretFile, "secret-file", "", "file with the app-password HMAC key, kept out of the database; default: DATA/secret.key")
	a.configVar(fs, &a.cutoffFlag, "cutoff", account.DefaultCutoff.Format(dateLayout),
		"domains created before this date (Asia/Tokyo) let members choose; later ones require app passwords")
	a.configVar(fs, &a.baseURL, "base-url", "", "public URL of the web UI, for links in notifications; serve and demo save it in the database for every later command (default: the saved one, else http://localhost:8080)")
	a.configVar(fs, &a.logLevel, "log-level", "", "debug, info, warn or error (default: info for serve and demo, warn otherwise)")
	a.configVar(fs, &a.logFormat, "log-format", "text", "text (key=value lines) or json (one object a line, for log collectors)")
}

const dateLayout = "2006-01-02"

// parseDate reads YYYY-MM-DD as midnight in the cut-off's zone (Asia/Tokyo),
// so a domain created on the cut-off date is on the enforced side.
func parseDate(s string) (time.Time, error) {
	t, err := time.ParseInLocation(dateLayout, strings.TrimSpace(s), account.DefaultCutoff.Location())
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a date: use YYYY-MM-DD", s)
	}
	return t, nil
}

func newFlagSet(cmd *command) *flag.FlagSet {
	fs := flag.NewFlagSet("postern "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported by run, in one line
	return fs
}

// boolFlags names every flag that takes no value, so that splitWords can tell
// "--json example.com" (a flag and a word) from "--name Mail" (a flag and its value).
func boolFlags() map[string]bool {
	m := map[string]bool{"h": true, "help": true}
	for _, c := range commands {
		fs := newFlagSet(c)
		a := &app{}
		a.registerGlobals(fs)
		c.setup(a, fs)
		fs.VisitAll(func(f *flag.Flag) {
			if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
				m[f.Name] = true
			}
		})
	}
	return m
}

// splitWords separates the command words and positional arguments from the
// flags, so that flags may come anywhere: "postern user list --json example.com".
// Everything after "--" is a word.
func splitWords(args []string, bools map[string]bool) (words, flags []string) {
	for i := 0; i < len(args); i++ {
		s := args[i]
		if s == "--" {
			words = append(words, args[i+1:]...)
			break
		}
		if len(s) < 2 || s[0] != '-' {
			words = append(words, s)
			continue
		}
		flags = append(flags, s)
		name := strings.TrimLeft(s, "-")
		if !strings.Contains(name, "=") && !bools[name] && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	return words, flags
}

func hasHelpFlag(flags []string) bool {
	for _, f := range flags {
		if n := strings.TrimLeft(f, "-"); n == "h" || n == "help" {
			return true
		}
	}
	return false
}

// parseFlags parses the command's flags, fills the unset configuration flags
// from the environment (flags win), and checks the global values.
func (a *app) parseFlags(cmd *command, args []string) error {
	fs := newFlagSet(cmd)
	a.registerGlobals(fs)
	a.runCmd = cmd.setup(a, fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(a.stdout, "usage: postern %s %s\n\n%s.\n\nFlags:\n", cmd.name, cmd.args, cmd.summary)
			fs.SetOutput(a.stdout)
			fs.PrintDefaults()
			return errHelp
		}
		return usagef(cmd, "%v", err)
	}
	if fs.NArg() > 0 {
		return usagef(cmd, "unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	getenv := a.getenv
	if getenv == nil {
		getenv = os.LookupEnv
	}
	names := make([]string, 0, len(a.envOK))
	for n := range a.envOK {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		if set[name] {
			continue
		}
		if v, ok := getenv(envName(name)); ok {
			if err := fs.Set(name, v); err != nil {
				return usagef(cmd, "%s: %v", envName(name), err)
			}
			set[name] = true
		}
	}
	a.given = set
	// The file last: it is found in the data folder the flags and the
	// environment name, and fills only what they left unset. quickstart
	// writes the file rather than reading it.
	var cf *configFile
	if cmd != quickstartCommand {
		var err error
		if cf, err = a.loadConfigFile(getenv); err != nil {
			return usagef(cmd, "%v", err)
		}
	}
	if cf != nil {
		for _, name := range names {
			v, ok := cf.values[name]
			if !ok || set[name] {
				continue
			}
			if err := fs.Set(name, v); err != nil {
				return usagef(cmd, "%s: %v", cf.where(name), err)
			}
		}
	}
	cutoff, err := parseDate(a.cutoffFlag)
	if err != nil {
		return usagef(cmd, "--cutoff: %v", err)
	}
	a.cutoff = cutoff
	if a.logLevel == "" {
		a.logLevel = "warn"
		if cmd == serveCommand || cmd == demoCommand {
			a.logLevel = "info"
		}
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(a.logLevel)); err != nil {
		return usagef(cmd, "--log-level must be debug, info, warn or error, not %q", a.logLevel)
	}
	if a.logFormat != "text" && a.logFormat != "json" {
		return usagef(cmd, "--log-format must be text or json, not %q", a.logFormat)
	}
	// The log goes to stderr: stdout carries the command's output (and serve's
	// ready lines). The long-running commands buffer it (logbuf.go).
	opts := &slog.HandlerOptions{Level: lvl}
	if cmd == serveCommand || cmd == demoCommand {
		a.logBuf = &logBuffer{w: a.stderr}
		a.log = slog.New(flushHandler{a.logHandler(a.logBuf, opts), a.logBuf})
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { a.logBuf.run(ctx); close(done) }()
		a.stopLog = func() { stop(); <-done }
	} else {
		a.log = slog.New(a.logHandler(a.stderr, opts))
	}
	if a.data == "" {
		return usagef(cmd, "--data must not be empty")
	}
	return nil
}

// logHandler writes records to w in the --log-format.
func (a *app) logHandler(w io.Writer, opts *slog.HandlerOptions) slog.Handler {
	if a.logFormat == "json" {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}

func (a *app) logger() *slog.Logger {
	if a.log == nil {
		a.log = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return a.log
}

// dsn is the database to open: --database, or the SQLite file in the data folder.
func (a *app) dsn() string {
	if a.database != "" {
		return a.database
	}
	return filepath.Join(a.data, "postern.db")
}

// open creates the data folder, loads the secret key and opens the store and
// the account service. Commands call it once, when they need the database.
func (a *app) open(ctx context.Context) (*account.Service, error) {
	if a.svc != nil {
		return a.svc, nil
	}
	if a.database != "" && !strings.HasPrefix(a.database, "postgres://") && !strings.HasPrefix(a.database, "postgresql://") {
		return nil, failf("--database must be a postgres:// URL; leave it out to use SQLite in the data folder")
	}
	// 0700: the folder holds the database, the secret key and the TLS key.
	if err := os.MkdirAll(a.data, 0o700); err != nil {
		return nil, fmt.Errorf("create the data folder: %w", err)
	}
	tightenModes(a.data, a.logger())
	secretPath := a.secretFile
	if secretPath == "" {
		secretPath = filepath.Join(a.data, "secret.key")
	}
	key, err := loadSecret(secretPath, a.secretFile == "", a.logger())
	if err != nil {
		return nil, err
	}
	db, err := sqlstore.Open(ctx, a.dsn())
	if err != nil {
		return nil, fmt.Errorf("open the database: %w", err)
	}
	a.db = db
	a.svc = account.NewService(db, passhash.New(passhash.Default), account.Config{Key: key, Cutoff: a.cutoff, BaseURL: a.baseURL})
	a.svc.Log = a.logger()
	a.baseURLGiven = a.baseURL != ""
	if !a.baseURLGiven {
		// The base URL serve was given: notices made by any command link
		// where members really reach the web UI.
		if a.baseURL, err = a.svc.SavedBaseURL(ctx); err != nil {
			a.svc = nil
			return nil, fmt.Errorf("read the saved base URL: %w", err)
		}
		a.svc.Config.BaseURL = a.baseURL
	}
	return a.svc, nil
}

func (a *app) close() {
	if a.stopLog != nil {
		a.stopLog()
		a.stopLog = nil
	}
	if a.db != nil {
		a.db.Close()
		a.db = nil
	}
}
