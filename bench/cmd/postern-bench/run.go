package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// runConfig is the benchmark's configuration.
type runConfig struct {
	quick      bool
	postern    string   // postern binary; "" leaves Postern out
	dovecotBin string   // dovecot binary
	dovecots   []string // NAME=CONF,IMAPADDR,POP3ADDR
	pg         string   // PostgreSQL URL for the scale figure; "" leaves it out
	work       string
	out, doc   string
	figures    map[string]bool
	null       bool

	rounds     int
	dur        time.Duration
	conc       []int
	members    int // population of the login figures (and Dovecot's passwd-file)
	idleN      []int
	revSess    int
	floodN     int
	scaleSmall int
	scaleLarge int
	cmdline    string
	merge      string

	resultsForTest *results // the results of the last run, for the harness's test
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, " ") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

func runCmd(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var c runConfig
	var dov multi
	figs := fs.String("figures", "login,idle,revocation,flood,scale", "figures to measure")
	fs.BoolVar(&c.quick, "quick", false, "small and short: for development and the harness's own test")
	fs.StringVar(&c.postern, "postern", "", "path of the postern binary (empty: Postern is left out)")
	fs.StringVar(&c.dovecotBin, "dovecot-bin", "/usr/sbin/dovecot", "path of dovecot")
	fs.Var(&dov, "dovecot", "NAME=CONF,IMAPADDR,POP3ADDR of a Dovecot configuration (repeatable)")
	fs.StringVar(&c.pg, "pg", "", "PostgreSQL URL for the scale figure (schemas bench_* are created and dropped)")
	fs.StringVar(&c.work, "work", "", "work folder (default: a new temporary folder)")
	fs.StringVar(&c.out, "out", "", "write the results as JSON here")
	fs.StringVar(&c.doc, "doc", "", "regenerate the generated section of this Markdown file")
	fs.BoolVar(&c.null, "null", true, "measure the null server")
	fs.IntVar(&c.members, "members", 1000, "members in the login figures (Dovecot's passwd-file must hold as many)")
	rounds := fs.Int("rounds", 0, "rounds (default 3, quick 1)")
	dur := fs.Duration("duration", 0, "duration of one throughput measurement (default 2s, quick 500ms)")
	fs.StringVar(&c.merge, "merge", "", "results.json of an earlier run: its figures not measured now go into the report too")
	floodN := fs.Int("flood", 0, "clients of the flood (default 200, quick 20)")
	idle := fs.String("idle", "", "idle connection counts, ascending (default 1000,10000; quick 200)")
	conc := fs.String("conc", "", "client counts of the login figure (default 1,4,16,64; quick 1,16)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c.dovecots = dov
	c.figures = map[string]bool{}
	for _, f := range strings.Split(*figs, ",") {
		c.figures[strings.TrimSpace(f)] = true
	}
	c.cmdline = "postern-bench run " + strings.Join(args, " ")
	if c.quick {
		c.rounds, c.dur, c.conc = 1, 500*time.Millisecond, []int{1, 16}
		c.idleN, c.revSess, c.floodN = []int{200}, 20, 20
		c.scaleSmall, c.scaleLarge = 100, 2000
	} else {
		c.rounds, c.dur, c.conc = 3, 2*time.Second, []int{1, 4, 16, 64}
		c.idleN, c.revSess, c.floodN = []int{1000, 10000}, 100, 200
		c.scaleSmall, c.scaleLarge = 100, 100_000
	}
	if *floodN > 0 {
		c.floodN = *floodN
	}
	for _, l := range []struct {
		flag, value, example string
		dst                  *[]int
	}{{"conc", *conc, "1,16", &c.conc}, {"idle", *idle, "1000,10000", &c.idleN}} {
		if l.value == "" {
			continue
		}
		*l.dst = nil
		for _, f := range strings.Split(l.value, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				return fmt.Errorf("--%s wants counts such as %s, not %q", l.flag, l.example, l.value)
			}
			*l.dst = append(*l.dst, n)
		}
	}
	if *rounds > 0 {
		c.rounds = *rounds
	}
	if *dur > 0 {
		c.dur = *dur
	}
	if c.work == "" {
		d, err := os.MkdirTemp("", "postern-bench-")
		if err != nil {
			return err
		}
		c.work = d
	}
	return run(context.Background(), &c)
}

// bench is one run: its configuration, servers and results.
type bench struct {
	cfg      *runConfig
	res      *results
	targets  []*proc // in the order of the tables: postern, dovecots, null
	postern  *proc   // the main Postern instance (SQLite, web on)
	idleOnly []*proc // servers measured in the idle figure only
	idleBase map[string]memory
	pdata    string // its data folder
	key      []byte
	order    []string
	started  time.Time
	ipSeq    int // next client address of srcIP, never reused within a run
	machine  string
	mu       sync.Mutex // stopAll may run from the signal handler
	workers  int        // first srcIP of the load clients: worker w is srcIP(workers+w)
}

func run(ctx context.Context, c *runConfig) error {
	raiseFileLimit()
	// An interrupted run stops its servers before it exits.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	b := &bench{cfg: c, res: newResults(), started: time.Now(), machine: machine(), idleBase: map[string]memory{}}
	defer b.stopAll()
	go func() {
		if _, ok := <-sig; ok {
			fmt.Println("interrupted: stopping the servers")
			b.stopAll()
			os.Exit(1)
		}
	}()
	fmt.Printf("work folder %s\n", c.work)
	b.workers = b.nextIPs(256)
	if err := b.startTargets(ctx); err != nil {
		return err
	}
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"login", b.figLogin},
		{"idle", b.figIdle},
		{"revocation", b.figRevocation},
		{"flood", b.figFlood},
		{"scale", b.figScale},
	}
	for _, s := range steps {
		if !c.figures[s.name] {
			continue
		}
		t := time.Now()
		fmt.Printf("== %s\n", s.name)
		if err := s.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		fmt.Printf("== %s done in %s\n", s.name, time.Since(t).Round(time.Second))
	}
	b.stopAll()
	if c.merge != "" {
		if err := b.res.mergeFrom(c.merge, c.figures); err != nil {
			return err
		}
	}
	c.resultsForTest = b.res
	elapsed := time.Since(b.started).Round(time.Second)
	fmt.Printf("finished in %s\n", elapsed)
	if c.out != "" {
		if err := b.res.save(c.out); err != nil {
			return err
		}
	}
	if c.doc != "" {
		if err := writeDoc(c.doc, b, elapsed); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) startTargets(ctx context.Context) error {
	c := b.cfg
	if c.postern != "" {
		b.pdata = filepath.Join(c.work, "postern-main")
		key, err := writeKey(filepath.Join(b.pdata, "secret.key"))
		if err != nil {
			return err
		}
		b.key = key
		d, err := seed(ctx, filepath.Join(b.pdata, "postern.db"), key, c.members, 5, 16)
		if err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		fmt.Printf("seeded %d members in %s\n", c.members, d.Round(time.Millisecond))
		p, err := startPostern("postern", posternOpts{bin: c.postern, data: b.pdata, web: true}, c.work)
		if err != nil {
			return err
		}
		b.postern = p
		b.add(p)
		if err := waitLog(filepath.Join(c.work, "postern.log"), "credential cache warmed", 2*time.Minute); err != nil {
			return err
		}
		// The same server with the Go garbage collector's target lowered
		// (GOGC=50, a deployment setting like Dovecot's tuning): measured in
		// the idle figure only, where the heap the collector keeps beyond
		// the live one is a third of the RSS.
		data := filepath.Join(c.work, "postern-gogc50")
		if err := os.MkdirAll(data, 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(data, "secret.key"), key, 0o600); err != nil {
			return err
		}
		if _, err := seed(ctx, filepath.Join(data, "postern.db"), key, c.members, 5, 0); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		g, err := startPostern("postern-gogc50", posternOpts{bin: c.postern, data: data, env: []string{"GOGC=50"}}, c.work)
		if err != nil {
			return err
		}
		b.idleOnly = append(b.idleOnly, g)
		b.order = append(b.order, g.name)
	}
	for _, d := range c.dovecots {
		name, o, err := parseDovecot(d)
		if err != nil {
			return err
		}
		o.bin = c.dovecotBin
		p, err := startDovecot(name, o, c.work)
		if err != nil {
			return err
		}
		b.add(p)
	}
	if c.null {
		p, err := startNull(c.work)
		if err != nil {
			return err
		}
		b.add(p)
	}
	if len(b.targets) == 0 {
		return fmt.Errorf("no target: give --postern, --dovecot or keep --null")
	}
	return nil
}

func (b *bench) add(p *proc) {
	b.targets = append(b.targets, p)
	b.order = append(b.order, p.name)
	fmt.Printf("started %s: %v\n", p.name, p.addr)
}

func (b *bench) stopAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range append(b.targets, b.idleOnly...) {
		p.stop()
	}
	b.targets, b.idleOnly = nil, nil
}

// rotated returns the targets in a different order each round, so that no
// target always runs first (or right after another's load).
func (b *bench) rotated(r int) []*proc {
	n := len(b.targets)
	out := make([]*proc, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, b.targets[(i+r)%n])
	}
	return out
}

func (b *bench) nextIPs(n int) int {
	s := b.ipSeq
	b.ipSeq += n
	return s
}

// workerIP is the address of load client w. Each client has its own, as
// separate devices would: Postern's per-IP throttle spaces out parallel
// attempts from one address as if they were failures (so that parallel
// connections cannot bypass it), which would make 16 clients behind one
// address a measure of the throttle, not of the server.
func (b *bench) workerIP(w int) net.IP { return srcIP(b.workers + w) }

func concName(proto string, c int) string { return proto + " c=" + strconv.Itoa(c) }
