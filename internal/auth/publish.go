package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/postern/postern/internal/account"
)

// publisher writes this node's live sessions to the store, where every
// node reads them (account.Service.LiveSessions): an administrator sees a
// member's sessions whichever node holds them. A login does not wait for
// it: sessions opened and closed are gathered for about a second and
// written in one transaction with the node's heartbeat (a session opened
// and closed within that second is never written). The heartbeat is
// written at least every account.LiveSessionHeartbeat; a node that stops
// beating is taken for dead, and its rows are ignored, then deleted.
type publisher struct {
	store  account.LiveSessionStore
	node   string
	gather time.Duration
	log    *slog.Logger
	now    func() time.Time

	mu     sync.Mutex
	all    map[int64]account.LiveSession // every live session of the node
	opened map[int64]account.LiveSession // not published yet
	closed []int64                       // published, closed since
	full   bool                          // publish all (first time, or after a failure)

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

func newPublisher(store account.LiveSessionStore, gather time.Duration, log *slog.Logger, now func() time.Time) *publisher {
	// The host's name tells an administrator which server it is; the
	// random part, which process (a restart is a new node).
	var b [4]byte
	rand.Read(b[:])
	host, _ := os.Hostname()
	if len(host) > 64 || host == "" {
		host = "node"
	}
	return &publisher{store: store, node: host + "-" + hex.EncodeToString(b[:]), gather: gather, log: log, now: now,
		all: map[int64]account.LiveSession{}, opened: map[int64]account.LiveSession{}, full: true,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

func (p *publisher) open(s account.LiveSession) {
	p.mu.Lock()
	p.all[s.ID], p.opened[s.ID] = s, s
	p.mu.Unlock()
	signal(p.kick)
}

func (p *publisher) close(id int64) {
	p.mu.Lock()
	delete(p.all, id)
	if _, ok := p.opened[id]; ok {
		delete(p.opened, id)
	} else if !p.full {
		p.closed = append(p.closed, id)
	}
	p.mu.Unlock()
	signal(p.kick)
}

// run publishes until stopClose, then forgets the node's rows.
func (p *publisher) run() {
	defer close(p.done)
	beat := time.NewTicker(account.LiveSessionHeartbeat)
	defer beat.Stop()
	p.flush()
	for {
		select {
		case <-p.kick:
			select { // gather the sessions of the next moment with this one
			case <-time.After(p.gather):
			case <-p.stop:
			}
		case <-beat.C:
		case <-p.stop:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := p.store.ForgetNode(ctx, p.node); err != nil {
				p.log.Warn("deleting this node's live sessions at shutdown; other nodes delete them after its heartbeat stops", "err", err)
			}
			cancel()
			return
		}
		p.flush()
	}
}

// flush writes the changes since the last flush, or every session when a
// full publication is due.
func (p *publisher) flush() {
	p.mu.Lock()
	full := p.full
	var opened []account.LiveSession
	src := p.opened
	if full {
		src = p.all
	}
	for _, s := range src {
		opened = append(opened, s)
	}
	closed := p.closed
	p.opened, p.closed, p.full = map[int64]account.LiveSession{}, nil, false
	p.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now := p.now()
	known, err := p.store.PublishSessions(ctx, p.node, now, now.Add(-account.LiveSessionTimeout), full, opened, closed)
	if err != nil {
		p.log.Warn("publishing the live sessions", "err", err)
	}
	if err != nil || !known && !full {
		// Start again from the whole set: what this write missed, or the
		// rows lost with the node's heartbeat row.
		p.mu.Lock()
		p.full, p.opened, p.closed = true, map[int64]account.LiveSession{}, nil
		p.mu.Unlock()
		signal(p.kick)
	}
}

func (p *publisher) shutdown() {
	close(p.stop)
	<-p.done
}
