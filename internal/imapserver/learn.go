package imapserver

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/mailstore"
)

// JunkLearner is a spam filter that learns from the member's own filing
// (internal/rspamd's Client): spam is true for a message moved or copied
// into \Junk, false for one taken out of \Junk.
type JunkLearner interface {
	Learn(ctx context.Context, spam bool, body []byte) error
}

// learnQueue is how many messages may wait to be taught; more are dropped
// (and counted): a member filing a thousand messages at once teaches the
// filter the first few hundred, and IMAP never waits for the filter.
const learnQueue = 256

// learnDirection says what filing a message from a mailbox of special use
// from into one of special use to teaches: into \Junk is spam; out of
// \Junk is ham, unless into \Trash (deleting spam says nothing about it).
func learnDirection(from, to string) (spam, learn bool) {
	switch {
	case to == mailstore.Junk && from != mailstore.Junk:
		return true, true
	case from == mailstore.Junk && to != mailstore.Junk && to != mailstore.Trash:
		return false, true
	}
	return false, false
}

// learnJob is one message to teach. The source message's ID finds its body
// (MOVE keeps it; a COPY's source stays); when the source is gone (a COPY
// whose source was expunged since, as clients without MOVE do) the copy
// is found by its UID in the destination.
type learnJob struct {
	spam      bool
	memberID  int64
	messageID int64
	dst       int64
	dstUID    uint32
}

// learner teaches a JunkLearner from one goroutine, in the order of filing.
type learner struct {
	l     JunkLearner
	store mailstore.Store
	log   *slog.Logger
	jobs  chan learnJob

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	learnt, failed, dropped atomic.Uint64
}

func newLearner(l JunkLearner, store mailstore.Store, log *slog.Logger) *learner {
	ctx, cancel := context.WithCancel(context.Background())
	lr := &learner{l: l, store: store, log: log, jobs: make(chan learnJob, learnQueue), ctx: ctx, cancel: cancel}
	lr.wg.Add(1)
	go lr.run()
	return lr
}

// enqueue never blocks: what does not fit is dropped and counted.
func (lr *learner) enqueue(jobs []learnJob) {
	for i, j := range jobs {
		select {
		case lr.jobs <- j:
		default:
			n := len(jobs) - i
			lr.dropped.Add(uint64(n))
			lr.log.Warn("junk learning queue full, messages not taught", "dropped", n)
			return
		}
	}
}

func (lr *learner) run() {
	defer lr.wg.Done()
	for {
		select {
		case <-lr.ctx.Done():
			return
		case j := <-lr.jobs:
			lr.teach(j)
		}
	}
}

func (lr *learner) teach(j learnJob) {
	body, err := lr.body(j)
	if err == nil {
		err = lr.l.Learn(lr.ctx, j.spam, body)
	}
	if err != nil {
		if lr.ctx.Err() == nil {
			lr.failed.Add(1)
			// The error, the member and the message's number: never its content.
			lr.log.Warn("junk learning failed", "err", err, "member_id", j.memberID, "message_id", j.messageID, "spam", j.spam)
		}
		return
	}
	lr.learnt.Add(1)
}

func (lr *learner) body(j learnJob) ([]byte, error) {
	body, err := lr.store.Body(lr.ctx, j.messageID)
	if account.ErrorCode(err) != account.ENOTFOUND {
		return body, err
	}
	infos, err := lr.store.Messages(lr.ctx, j.dst)
	if err != nil {
		return nil, err
	}
	for _, m := range infos {
		if m.UID == j.dstUID {
			return lr.store.Body(lr.ctx, m.ID)
		}
	}
	return nil, account.ErrNotFound
}

// close stops the worker; messages still queued are not taught.
func (lr *learner) close() {
	lr.cancel()
	lr.wg.Wait()
}

// LearnStats counts the messages taught to Config.JunkLearner, those it
// failed on, and those dropped because the queue was full (for metrics).
func (s *Server) LearnStats() (learnt, failed, dropped uint64) {
	if s.learner == nil {
		return 0, 0, 0
	}
	return s.learner.learnt.Load(), s.learner.failed.Load(), s.learner.dropped.Load()
}

// learnFiled queues what filing the messages idx of the selected mailbox
// as src→dst UIDs into dst teaches, if anything.
func (s *session) learnFiled(sel *selected, idx []int, dst mailstore.Mailbox, srcUIDs, dstUIDs []uint32) {
	lr := s.srv.learner
	if lr == nil {
		return
	}
	spam, ok := learnDirection(sel.mb.SpecialUse, dst.SpecialUse)
	if !ok {
		return
	}
	ids := make(map[uint32]int64, len(idx))
	for _, i := range idx {
		ids[sel.msg(i).UID] = sel.msg(i).ID
	}
	jobs := make([]learnJob, 0, len(srcUIDs))
	for i, u := range srcUIDs {
		if id, ok := ids[u]; ok {
			jobs = append(jobs, learnJob{spam: spam, memberID: s.memberID, messageID: id, dst: dst.ID, dstUID: dstUIDs[i]})
		}
	}
	lr.enqueue(jobs)
}
