package sqlstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
)

// TestCreateWhileDelivering: app password creations (which lock the member
// and deliver their notification to INBOX) race with plain deliveries and
// settings changes for the same member. Nothing may fail (no deadlock that
// outlasts the retries), the limit still holds, and every notification and
// delivery lands in INBOX.
func TestCreateWhileDelivering(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		e := storetest.NewEnv(t, db)
		m := e.Optional(t, "alice", true)
		mail := db.Mail()
		const creates, deliveries = 10, 20
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range creates {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, _, err := e.Svc.CreateAppPassword(ctx, m, fmt.Sprintf("app %d", i), storetest.Web)
				if err != nil && account.ErrorCode(err) != account.ELIMIT {
					t.Errorf("create: %v", err)
				}
			}()
		}
		for i := range deliveries {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				body := fmt.Sprintf("From: bob@optional.test\r\nTo: %s\r\nSubject: %d\r\n\r\nhello\r\n", m.Email, i)
				if err := mail.Deliver(ctx, m.ID, []byte(body)); err != nil {
					t.Errorf("deliver: %v", err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if n := len(e.AppPasswords(t, m)); n != account.MaxAppPasswords {
			t.Errorf("%d app passwords, want %d", n, account.MaxAppPasswords)
		}
		inbox, err := mail.Mailbox(ctx, m.ID, "INBOX")
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := mail.Messages(ctx, inbox.ID)
		if err != nil {
			t.Fatal(err)
		}
		if want := deliveries + account.MaxAppPasswords; len(msgs) != want {
			t.Errorf("%d mails in INBOX, want %d (deliveries and notifications)", len(msgs), want)
		}
	})
}
