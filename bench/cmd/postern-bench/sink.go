package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/postern/postern/bench/nullserver"
)

// The sending benchmark's sink: the null server's SMTP as the MX of the
// domain that mail is sent to, in a process of its own (its CPU is neither
// side's), which tells the harness over HTTP on loopback what it has taken.

// sinkStats is what the sink has taken so far (GET /stats).
type sinkStats struct {
	Messages   int64 `json:"messages"`
	Recipients int64 `json:"recipients"` // copies: a message to three counts three
	Bytes      int64 `json:"bytes"`
	Last       int64 `json:"last_unix_nano"` // when the last message was taken; 0: none yet
	Signed     int64 `json:"signed"`         // messages with a DKIM-Signature field
}

// LastAt is the time of the last message taken.
func (s sinkStats) LastAt() time.Time { return time.Unix(0, s.Last) }

func statsHandler(s *nullserver.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/stats" {
			http.NotFound(w, r)
			return
		}
		// Last is read first: the server stores it before the counts, so
		// the counts read after it include the message it is the time of.
		st := sinkStats{Last: s.Last.Load()}
		st.Messages, st.Recipients, st.Bytes, st.Signed = s.Messages.Load(), s.Recipients.Load(), s.Bytes.Load(), s.Signed.Load()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(st)
	})
}

// sink is the running sink.
type sink struct {
	proc   *proc
	smtp   string // its SMTP address
	stats  string // its /stats URL
	client http.Client
}

// startSink starts the null server with its SMTP on smtpAddr (port 25 of a
// loopback address: delivery to an MX is always to port 25).
func startSink(work, smtpAddr string) (*sink, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "null", "--smtp-addr", smtpAddr, "--stats-addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), childEnv+"=null")
	p, err := startListing("sink", cmd, filepath.Join(work, "sink.log"))
	if err != nil {
		return nil, err
	}
	if p.addr["smtp"] == "" || p.addr["stats"] == "" {
		p.stop()
		return nil, fmt.Errorf("the sink printed no smtp or stats address")
	}
	return &sink{proc: p, smtp: p.addr["smtp"], stats: "http://" + p.addr["stats"] + "/stats",
		client: http.Client{Timeout: 10 * time.Second}}, nil
}

func (s *sink) read() (sinkStats, error) {
	var st sinkStats
	resp, err := s.client.Get(s.stats)
	if err != nil {
		return st, fmt.Errorf("sink stats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("sink stats: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// wait polls the sink until it has taken want copies more than before and
// returns what it had then. It gives up after timeout, or once nothing
// arrived for stall (a message deferred, bounced or lost), saying what
// status (the sender's queue) says.
func (s *sink) wait(before sinkStats, want int64, timeout, stall time.Duration, status func() string) (sinkStats, error) {
	deadline := time.Now().Add(timeout)
	last, progress := before.Recipients, time.Now()
	for {
		st, err := s.read()
		if err != nil {
			return st, err
		}
		got := st.Recipients - before.Recipients
		if got >= want {
			return st, nil
		}
		now := time.Now()
		if st.Recipients != last {
			last, progress = st.Recipients, now
		}
		if now.After(deadline) || now.Sub(progress) > stall {
			msg := fmt.Sprintf("the sink has %d of the %d copies accepted", got, want)
			if now.After(deadline) {
				msg += fmt.Sprintf(" after %s", timeout)
			} else {
				msg += fmt.Sprintf(", nothing more for %s", stall)
			}
			if status != nil {
				msg += "; the sender says: " + status()
			}
			return st, fmt.Errorf("%s", msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
