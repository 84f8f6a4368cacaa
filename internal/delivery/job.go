package delivery

import (
	"context"
	"fmt"
)

// job is one call of Deliver: the message and what became of each
// recipient so far.
type job struct {
	d       *Deliverer
	m       Message
	results []Result
	final   []bool // delivered or bounced: nothing more to try
	tried   []bool // some failure was recorded
}

// local is a result of ours, with no remote reply.
func local(permanent bool, enhanced, text string) Result {
	return Result{Permanent: permanent, Enhanced: enhanced, Text: text}
}

// set records r for recipient i unless it is already final. A temporary
// failure that a server explained (Code != 0) is kept over a later local
// one, such as failing to connect to the next MX host: the reply says more.
func (j *job) set(i int, r Result) {
	if j.final == nil {
		j.final = make([]bool, len(j.results))
		j.tried = make([]bool, len(j.results))
	}
	if j.final[i] {
		return
	}
	r.Rcpt = j.results[i].Rcpt
	if r.Delivered || r.Permanent {
		j.final[i] = true
		j.results[i] = r
		return
	}
	if j.tried[i] && j.results[i].Code != 0 && r.Code == 0 {
		return
	}
	j.tried[i] = true
	j.results[i] = r
}

// pending returns the recipients still to deliver.
func (j *job) pending() []int {
	var out []int
	for i := range j.results {
		if j.final == nil || !j.final[i] {
			out = append(out, i)
		}
	}
	return out
}

// failPending records r for every recipient still pending.
func (j *job) failPending(r Result) {
	for _, i := range j.pending() {
		j.set(i, r)
	}
}

func (j *job) failAll(r Result) { j.failPending(r) }

// finish gives every recipient that nothing was recorded for a temporary
// failure, so that no result is ever empty.
func (j *job) finish(ctx context.Context) {
	for _, i := range j.pending() {
		if j.tried != nil && j.tried[i] {
			continue
		}
		text := "no MX host could be tried"
		if err := ctx.Err(); err != nil {
			text = fmt.Sprintf("delivery interrupted: %v", err)
		}
		j.set(i, local(false, "4.4.1", text))
	}
}

// counts returns how many recipients were delivered, deferred and bounced.
func (j *job) counts(idx []int) (delivered, deferred, bounced int) {
	for _, i := range idx {
		switch r := j.results[i]; {
		case r.Delivered:
			delivered++
		case r.Permanent:
			bounced++
		default:
			deferred++
		}
	}
	return
}
