package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/queue"
)

// queueJSON is a queued message as postern queue list and show print it.
type queueJSON struct {
	ID            int64           `json:"id"`
	From          string          `json:"from"`
	MemberID      int64           `json:"member_id"`
	AppPasswordID string          `json:"app_password_id"` // "" for the main password
	Size          int64           `json:"size"`
	ArrivedAt     string          `json:"arrived_at"`
	Recipients    []queueRcptJSON `json:"recipients"`
}

type queueRcptJSON struct {
	Address     string `json:"address"`
	Held        bool   `json:"held"`
	Attempts    int    `json:"attempts"`
	NextAttempt string `json:"next_attempt"`
	LastError   string `json:"last_error"`
	DelayNotice bool   `json:"delay_notice_sent"`
}

func toQueueJSON(e queue.Entry) queueJSON {
	j := queueJSON{ID: e.Message.ID, From: e.Message.From, MemberID: e.Message.MemberID, AppPasswordID: e.Message.AppPasswordID,
		Size: e.Size, ArrivedAt: rfc3339(e.Message.CreatedAt), Recipients: []queueRcptJSON{}}
	for _, r := range e.Recipients {
		j.Recipients = append(j.Recipients, queueRcptJSON{Address: r.Address, Held: r.Held, Attempts: r.Attempts,
			NextAttempt: rfc3339(r.NextAttempt), LastError: r.LastError, DelayNotice: r.DelayNotified})
	}
	return j
}

func (a *app) queueStore(ctx context.Context) (queue.Store, error) {
	if _, err := a.open(ctx); err != nil {
		return nil, err
	}
	return a.db.Queue(), nil
}

func queueList(a *app, fs *flag.FlagSet) runFunc {
	asJSON := fs.Bool("json", false, `print [{"id","from","member_id","app_password_id","size","arrived_at","recipients":[{"address","held","attempts","next_attempt","last_error","delay_notice_sent"}]}]`)
	return func(ctx context.Context, a *app, args []string) error {
		q, err := a.queueStore(ctx)
		if err != nil {
			return err
		}
		list, err := q.QueueEntries(ctx)
		if err != nil {
			return err
		}
		out := make([]queueJSON, 0, len(list))
		for _, e := range list {
			out = append(out, toQueueJSON(e))
		}
		if *asJSON {
			return writeJSON(a.stdout, out)
		}
		if len(out) == 0 {
			_, err := fmt.Fprintln(a.stdout, "The queue is empty.")
			return err
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tARRIVED\tSIZE\tFROM\tRECIPIENT\tSTATE\tATTEMPTS\tLAST ERROR")
		for _, e := range out {
			for i, r := range e.Recipients {
				id, arrived, size, from := strconv.FormatInt(e.ID, 10), e.ArrivedAt, strconv.FormatInt(e.Size, 10), e.From
				if i > 0 {
					id, arrived, size, from = "", "", "", ""
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", id, arrived, size, from, r.Address, rcptState(r), r.Attempts, clipText(r.LastError, 60))
			}
		}
		return tw.Flush()
	}
}

func rcptState(r queueRcptJSON) string {
	if r.Held {
		return "held"
	}
	return "next " + r.NextAttempt
}

func clipText(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func queueShow(a *app, fs *flag.FlagSet) runFunc {
	asJSON := fs.Bool("json", false, "print the message as queue list --json prints one")
	return func(ctx context.Context, a *app, args []string) error {
		id, err := queueID(args[0])
		if err != nil {
			return err
		}
		q, err := a.queueStore(ctx)
		if err != nil {
			return err
		}
		e, err := q.QueueEntry(ctx, id)
		if err != nil {
			return err
		}
		j := toQueueJSON(e)
		if *asJSON {
			return writeJSON(a.stdout, j)
		}
		app := j.AppPasswordID
		if app == "" {
			app = "(the main password)"
		}
		fmt.Fprintf(a.stdout, "Message %d from %s (member %d, app password %s), %d octets, arrived %s\n", j.ID, j.From, j.MemberID, app, j.Size, j.ArrivedAt)
		for _, r := range j.Recipients {
			fmt.Fprintf(a.stdout, "  %s: %s, %d attempts", r.Address, rcptState(r), r.Attempts)
			if r.DelayNotice {
				fmt.Fprint(a.stdout, ", the sender was told of the delay")
			}
			fmt.Fprintln(a.stdout)
			if r.LastError != "" {
				fmt.Fprintf(a.stdout, "    last: %s\n", r.LastError)
			}
		}
		return nil
	}
}

func queueID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, failf("%q is not a queue ID: postern queue list shows them", s)
	}
	return id, nil
}

// queueAct runs retry, hold, release or delete on the messages named, or
// with --all on every one.
func queueAct(act queue.Action, done string) func(a *app, fs *flag.FlagSet) runFunc {
	return func(a *app, fs *flag.FlagSet) runFunc {
		all := fs.Bool("all", false, "every queued message")
		asJSON := fs.Bool("json", false, `print {"recipients": N}`)
		return func(ctx context.Context, a *app, args []string) error {
			if *all == (len(args) > 0) {
				return failf("name queue IDs, or give --all")
			}
			var ids []int64
			for _, s := range args {
				id, err := queueID(s)
				if err != nil {
					return err
				}
				ids = append(ids, id)
			}
			svc, err := a.open(ctx)
			if err != nil {
				return err
			}
			which := "all"
			if len(args) > 0 {
				which = strings.Join(args, ",")
			}
			fx := account.Effects{Audit: []account.AuditEntry{svc.Audit(account.AuditQueueChanged, account.Member{}, cliActor, string(act)+" "+which)}}
			n, err := a.db.Queue().QueueActAudited(ctx, act, ids, time.Now(), fx)
			if err != nil {
				return err
			}
			if *asJSON {
				return writeJSON(a.stdout, map[string]int{"recipients": n})
			}
			if n == 0 && len(ids) > 0 {
				return failf("no queued message has the ID %s", strings.Join(args, ", "))
			}
			_, err = fmt.Fprintf(a.stdout, "%s %d recipient(s).\n", done, n)
			return err
		}
	}
}
