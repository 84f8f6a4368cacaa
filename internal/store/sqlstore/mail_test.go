package sqlstore_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
)

func TestMailStore(t *testing.T) {
	for _, e := range storetest.AllEngines {
		t.Run(e.Name, func(t *testing.T) { storetest.RunMail(t, e.Open) })
	}
}

// A notification's mail lands in the INBOX exactly once, in the transaction of
// the change it reports: a rolled-back change delivers nothing.
func TestNotificationMail(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		env := storetest.NewMailEnv(t, db)
		m := env.NewMember(t)
		mail := func(subject string) account.Message {
			return account.Message{MemberID: m, Kind: account.MsgAppPasswordCreated, Subject: subject, Body: "body",
				Mail: []byte("Subject: " + subject + "\r\n\r\nbody\r\n")}
		}
		if err := db.WriteEffectsForTest(ctx, account.Effects{Messages: []account.Message{mail("rolled back")}}, true); err != nil {
			t.Fatal(err)
		}
		seq := env.LastSeq(t)
		in := env.Box(t, m, "INBOX")
		if got := env.UIDs(t, in.ID); len(got) != 0 {
			t.Fatalf("a rolled-back notification was delivered: %v", got)
		}
		fx := account.Effects{
			Messages: []account.Message{mail("created"), {MemberID: m, Kind: "web.only", Subject: "no mail", Body: "b"}},
			Events:   []account.Event{{Kind: account.EventAppPasswordCreated, MemberID: m, AppPasswordID: "x"}},
		}
		if err := db.WriteEffectsForTest(ctx, fx, false); err != nil {
			t.Fatal(err)
		}
		bodies := env.Bodies(t, in.ID)
		if len(bodies) != 1 || !strings.HasPrefix(bodies[0], "Subject: created\r\n") {
			t.Fatalf("INBOX holds %q", bodies)
		}
		if got := env.Changed(t, m, seq); len(got) != 1 || got[0] != in.ID {
			t.Errorf("mailbox events %v", got)
		}
		msgs, err := db.Messages(ctx, m)
		if err != nil || len(msgs) != 2 {
			t.Errorf("web messages %v %v", msgs, err)
		}
	})
}

// Creating an app password through the service puts one mail in the INBOX.
func TestAppPasswordCreatedMail(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		env := storetest.NewEnv(t, db)
		m := env.Enforced(t, "alice")
		p, plain := env.Create(t, m, "Thunderbird")
		mail := storetest.NewMailEnv(t, db)
		in := mail.Box(t, m.ID, "INBOX")
		bodies := mail.Bodies(t, in.ID)
		if len(bodies) != 1 {
			t.Fatalf("INBOX holds %d mails", len(bodies))
		}
		if !strings.Contains(bodies[0], "Subject: ") || !strings.Contains(bodies[0], p.Name) || strings.Contains(bodies[0], plain) {
			t.Errorf("notification mail %q", bodies[0])
		}
		info := mail.List(t, in.ID)[0]
		if time.Since(info.InternalDate) > time.Hour || len(info.Flags) != 0 {
			t.Errorf("notification %+v", info)
		}
	})
}

// Notifications delivered by account transactions (which lock the member's
// row) and appends to the same INBOX run side by side without deadlocking:
// appendTx takes its locks in the documented order. Taking the mailbox lock
// before inserting the body made most of these fail on PostgreSQL.
func TestNotificationsAndAppendsConcurrently(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		env := storetest.NewMailEnv(t, db)
		m := env.NewMember(t)
		in := env.Box(t, m, "INBOX")
		const workers, each = 8, 20
		errs := make(chan error, workers*each)
		var wg sync.WaitGroup
		for i := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range each {
					if i%2 == 0 {
						p := account.AppPassword{ID: fmt.Sprintf("p%d-%d", i, j), MemberID: m, Name: fmt.Sprintf("app %d-%d", i, j), Hash: []byte("h")}
						fx := account.Effects{Messages: []account.Message{{MemberID: m, Kind: account.MsgAppPasswordCreated, Subject: "s", Body: "b", Mail: []byte("notification")}}}
						errs <- db.CreateAppPassword(ctx, &p, workers*each, fx)
					} else {
						_, err := db.Mail().Append(ctx, in.ID, nil, time.Time{}, []byte("appended"))
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if got := env.UIDs(t, in.ID); len(got) != workers*each || got[len(got)-1] != workers*each {
			t.Errorf("INBOX UIDs %v", got)
		}
	})
}
