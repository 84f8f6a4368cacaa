package main

import (
	"flag"
	"os"
	"strings"
	"time"
)

// loadConfig is what the MX and the sending benchmarks share: the
// binaries, the targets, the load's shape and where the results go.
type loadConfig struct {
	postern, dovecotBin, pg string
	members, rounds         int
	clients, size, perConn  int // clients: concurrent senders or submitters
	perMsg                  []int
	dur, drainMax           time.Duration
	work, out, doc          string
	targets                 map[string]bool
	quick                   bool
	cmdline                 string
	posternArgs             []string

	resultsForTest *results
}

// register declares the shared flags of the benchmark name on fs (clients
// names the concurrent clients in the help) and returns the function that
// parses args and fills in the defaults that depend on --quick.
func (c *loadConfig) register(fs *flag.FlagSet, name, targets, clients string) func(args []string) error {
	fs.StringVar(&c.postern, "postern", "", "path of the postern binary (empty: Postern is left out)")
	fs.StringVar(&c.dovecotBin, "dovecot-bin", "/usr/sbin/dovecot", "path of dovecot")
	fs.StringVar(&c.pg, "pg", "", "PostgreSQL URL for Postern on PostgreSQL (schema bench_"+name+" is created and dropped); empty leaves it out")
	list := fs.String("targets", targets, "targets to measure")
	fs.BoolVar(&c.quick, "quick", false, "short: for development and the harness's own test")
	fs.IntVar(&c.members, "members", 1000, "members of the test domain")
	fs.IntVar(&c.rounds, "rounds", 0, "rounds (default 3, quick 1)")
	fs.DurationVar(&c.dur, "duration", 0, "duration of one load (default 10s, quick 2s)")
	fs.IntVar(&c.clients, "c", 16, "concurrent "+clients)
	fs.IntVar(&c.size, "size", 10<<10, "message size in bytes")
	fs.IntVar(&c.perConn, "per-conn", 1, "messages per connection (0: one connection per client for the whole load)")
	rcpts := fs.String("rcpts", "1,1,1,3", "recipients per message, in turn")
	extra := fs.String("postern-args", "", "further flags of postern serve, space-separated")
	fs.StringVar(&c.work, "work", "", "work folder (default: a new temporary folder)")
	fs.StringVar(&c.out, "out", "", "write the results as JSON here")
	return func(args []string) error {
		if err := fs.Parse(args); err != nil {
			return err
		}
		var err error
		if c.perMsg, err = parseCounts("rcpts", *rcpts); err != nil {
			return err
		}
		c.posternArgs = strings.Fields(*extra)
		c.targets = map[string]bool{}
		for _, t := range strings.Split(*list, ",") {
			c.targets[strings.TrimSpace(t)] = true
		}
		if c.rounds == 0 {
			c.rounds = map[bool]int{true: 1, false: 3}[c.quick]
		}
		if c.dur == 0 {
			c.dur = map[bool]time.Duration{true: 2 * time.Second, false: 10 * time.Second}[c.quick]
		}
		c.cmdline = "postern-bench " + name + " " + strings.Join(args, " ")
		if c.work == "" {
			if c.work, err = os.MkdirTemp("", "postern-bench-"+name+"-"); err != nil {
				return err
			}
		}
		return nil
	}
}
