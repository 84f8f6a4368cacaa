package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/postern/postern/internal/delivery"
	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/queue"
	"github.com/postern/postern/internal/smtpserver"
)

// Sending mail: the outbound queue and its runner, delivering directly to
// each domain's MX or through a smarthost.

type outboundFlags struct {
	mode                                      string
	smarthost, smarthostTLS, smarthostUser    string
	smarthostPasswordFile                     string
	retryFirst, retryMax, giveUp, delayNotice string
	workers, lease                            string
}

func (f *outboundFlags) register(a *app, fs *flag.FlagSet) {
	a.configVar(fs, &f.mode, "outbound", "direct", "mail members send to other domains: direct (to each domain's MX), smarthost (all through --smarthost) or off (refused at RCPT)")
	a.configVar(fs, &f.smarthost, "smarthost", "", "HOST:PORT of the provider's relay that takes all outbound mail (implies --outbound smarthost)")
	a.configVar(fs, &f.smarthostTLS, "smarthost-tls", "starttls", "TLS to the smarthost: starttls (required), implicit (port 465) or none (loopback only)")
	a.configVar(fs, &f.smarthostUser, "smarthost-user", "", "user name for AUTH at the smarthost; empty: no AUTH")
	a.configVar(fs, &f.smarthostPasswordFile, "smarthost-password-file", "", "file holding the smarthost password (a file, so that it is in no process list)")
	a.configVar(fs, &f.retryFirst, "queue-retry-first", queue.DefaultSchedule.First.String(), "wait after the first failed attempt; doubles after each")
	a.configVar(fs, &f.retryMax, "queue-retry-max", queue.DefaultSchedule.Max.String(), "longest wait between attempts")
	a.configVar(fs, &f.giveUp, "queue-give-up", queue.DefaultSchedule.GiveUp.String(), "how long after arrival a message that cannot be delivered bounces")
	a.configVar(fs, &f.delayNotice, "queue-delay-notice", queue.DefaultSchedule.DelayNotice.String(), "how long after arrival the sender is told a message is delayed")
	a.configVar(fs, &f.workers, "queue-workers", "16", "deliveries under way at once on this node")
	a.configVar(fs, &f.lease, "queue-lease", "1m", "how long a node's claim on queued mail lasts unless renewed: another node takes over a dead node's deliveries this long after it stopped renewing")
}

// setupOutbound gives submission its store (every submission goes
// through Submit, which also counts it for the sending caps) and, unless
// --outbound off, the queue for other domains and the runner that
// delivers it.
func (s *server) setupOutbound(sub *smtpserver.Config, host string) error {
	f := &s.flags.outbound
	mode := f.mode
	if f.smarthost != "" {
		mode = "smarthost"
	}
	var dcfg delivery.Config
	switch mode {
	case "off":
		s.log.Info("outbound mail off: submission refuses recipients of other domains")
		sub.Submit = s.db.Mail()
		return nil
	case "direct":
	case "smarthost":
		if f.smarthost == "" {
			return usagef(serveCommand, "--outbound smarthost needs --smarthost HOST:PORT")
		}
		if _, _, err := net.SplitHostPort(f.smarthost); err != nil {
			return usagef(serveCommand, "--smarthost must be HOST:PORT, not %q", f.smarthost)
		}
		sh := &delivery.Smarthost{Addr: f.smarthost, TLS: f.smarthostTLS, Username: f.smarthostUser}
		if f.smarthostPasswordFile != "" {
			b, err := os.ReadFile(f.smarthostPasswordFile)
			if err != nil {
				return failf("read --smarthost-password-file: %v", err)
			}
			sh.Password = strings.TrimRight(string(b), "\r\n")
		}
		dcfg.Smarthost = sh
	default:
		return usagef(serveCommand, "--outbound must be direct, smarthost or off, not %q", f.mode)
	}
	var sched queue.Schedule
	var lease time.Duration
	for _, d := range []struct {
		name, value string
		to          *time.Duration
	}{{"queue-retry-first", f.retryFirst, &sched.First}, {"queue-retry-max", f.retryMax, &sched.Max},
		{"queue-give-up", f.giveUp, &sched.GiveUp}, {"queue-delay-notice", f.delayNotice, &sched.DelayNotice}, {"queue-lease", f.lease, &lease}} {
		v, err := time.ParseDuration(d.value)
		if err != nil || v <= 0 {
			return usagef(serveCommand, "--%s must be a duration such as 90s, 4h or 120h, not %q", d.name, d.value)
		}
		*d.to = v
	}
	workers, err := strconv.Atoi(f.workers)
	if err != nil || workers <= 0 {
		return usagef(serveCommand, "--queue-workers must be a positive number, not %q", f.workers)
	}
	if sched.Max < sched.First || lease < 3*time.Second {
		return usagef(serveCommand, "--queue-retry-max must be at least --queue-retry-first, and --queue-lease at least 3s")
	}
	dcfg.Hostname, dcfg.Resolver, dcfg.Log = host, s.flags.inspect.resolver, s.log
	if err := dcfg.Validate(); err != nil {
		return usagef(serveCommand, "outbound delivery: %v", err)
	}
	deliverer := delivery.New(dcfg)

	results := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "postern_queue_deliveries_total",
		Help: "Outbound delivery attempts' outcomes per recipient: delivered, deferred (to be retried) or bounced."}, []string{"result"})
	for _, c := range []string{queue.ResultDelivered, queue.ResultDeferred, queue.ResultBounced} {
		results.WithLabelValues(c)
	}
	q := s.db.Queue()
	runner := &queue.Runner{Store: q, Deliverer: deliveryAdapter{deliverer}, Hostname: host, Log: s.log, Workers: workers, Lease: lease,
		Schedule: sched,
		Result:   func(class string) { results.WithLabelValues(class).Inc() }}
	s.reg.MustRegister(results, queueCollector{q})
	sub.Submit, sub.Relay = wakingSubmitter{s.db.Mail(), runner}, true
	if s.signer != nil {
		sub.Signer = s.signer
	}
	s.tasks = append(s.tasks, task{"outbound queue", func(ctx context.Context) error {
		defer deliverer.Close()
		return runner.Run(ctx)
	}})
	return nil
}

// wakingSubmitter wakes this node's runner after each submission commits,
// so that mail leaves at once rather than at the next poll.
type wakingSubmitter struct {
	smtpserver.Submitter
	runner *queue.Runner
}

func (w wakingSubmitter) Submit(ctx context.Context, sub mailstore.Submission) error {
	err := w.Submitter.Submit(ctx, sub)
	if err == nil && sub.Outbound != nil {
		w.runner.Wake()
	}
	return err
}

// deliveryAdapter lets the delivery client serve the queue's Deliverer.
type deliveryAdapter struct{ d *delivery.Deliverer }

func (a deliveryAdapter) Deliver(ctx context.Context, at queue.Attempt) []queue.Outcome {
	res := a.d.Deliver(ctx, delivery.Message{From: at.From, Rcpts: at.Rcpts, Domain: at.Domain, Body: at.Body, SMTPUTF8: at.SMTPUTF8, EightBit: at.EightBit})
	out := make([]queue.Outcome, len(res))
	for i, r := range res {
		out[i] = queue.Outcome{Rcpt: r.Rcpt, Delivered: r.Delivered, Permanent: r.Permanent, Code: r.Code, Enhanced: r.Enhanced, Text: r.Text, RemoteMTA: r.RemoteMTA}
	}
	return out
}

// queueCollector reports the queue's size and age when scraped.
type queueCollector struct{ q queue.Store }

var (
	queueRecipientsDesc = prometheus.NewDesc("postern_queue_recipients", "Recipients waiting in the outbound queue (all nodes), by state.", []string{"state"}, nil)
	queueOldestDesc     = prometheus.NewDesc("postern_queue_oldest_seconds", "Age of the oldest message in the outbound queue; 0 when it is empty.", nil, nil)
)

func (c queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueRecipientsDesc
	ch <- queueOldestDesc
}

func (c queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.q.QueueStats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(queueRecipientsDesc, fmt.Errorf("queue figures: %w", err))
		return
	}
	ch <- prometheus.MustNewConstMetric(queueRecipientsDesc, prometheus.GaugeValue, float64(st.Recipients-st.Held), "queued")
	ch <- prometheus.MustNewConstMetric(queueRecipientsDesc, prometheus.GaugeValue, float64(st.Held), "held")
	age := 0.0
	if !st.Oldest.IsZero() {
		age = time.Since(st.Oldest).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(queueOldestDesc, prometheus.GaugeValue, age)
}
