package imapserver_test

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// Postern: CONDSTORE and QRESYNC responses byte for byte, over a session
// that answers with fixed data: what go-imap writes for what a session
// gives it.

type condStoreSession struct {
	lastStore *imap.StoreOptions
	lastFetch *imap.FetchOptions
}

var _ imapserver.SessionCondStore = (*condStoreSession)(nil)

func (s *condStoreSession) Close() error                          { return nil }
func (s *condStoreSession) Login(username, password string) error { return nil }
func (s *condStoreSession) Select(mailbox string, options *imap.SelectOptions) (*imap.SelectData, error) {
	return &imap.SelectData{Flags: []imap.Flag{imap.FlagSeen}, PermanentFlags: []imap.Flag{imap.FlagSeen},
		NumMessages: 2, UIDNext: 5, UIDValidity: 7, HighestModSeq: 9}, nil
}
func (s *condStoreSession) Create(string, *imap.CreateOptions) error         { return nil }
func (s *condStoreSession) Delete(string) error                              { return nil }
func (s *condStoreSession) Rename(string, string, *imap.RenameOptions) error { return nil }
func (s *condStoreSession) Subscribe(string) error                           { return nil }
func (s *condStoreSession) Unsubscribe(string) error                         { return nil }
func (s *condStoreSession) List(*imapserver.ListWriter, string, []string, *imap.ListOptions) error {
	return nil
}
func (s *condStoreSession) Status(mailbox string, options *imap.StatusOptions) (*imap.StatusData, error) {
	return &imap.StatusData{Mailbox: mailbox, HighestModSeq: 9}, nil
}
func (s *condStoreSession) Append(string, imap.LiteralReader, *imap.AppendOptions) (*imap.AppendData, error) {
	return &imap.AppendData{}, nil
}
func (s *condStoreSession) Poll(*imapserver.UpdateWriter, bool) error { return nil }
func (s *condStoreSession) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	if err := w.WriteMessageFlagsModSeq(1, 3, []imap.Flag{imap.FlagSeen}, 10); err != nil {
		return err
	}
	if err := w.WriteVanished(imap.UIDSetNum(4)); err != nil {
		return err
	}
	<-stop
	return nil
}
func (s *condStoreSession) Unselect() error { return nil }
func (s *condStoreSession) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	return w.WriteVanished(imap.UIDSet{{Start: 1, Stop: 2}})
}
func (s *condStoreSession) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	data := &imap.SearchData{All: imap.SeqSetNum(1, 2), Min: 1, Max: 2, Count: 2}
	if criteria.ModSeq != nil {
		data.ModSeq = 8
	}
	return data, nil
}
func (s *condStoreSession) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	s.lastFetch = options
	if options.Vanished {
		if err := w.WriteVanished(imap.UIDSet{{Start: 1, Stop: 2}}); err != nil {
			return err
		}
	}
	rw := w.CreateMessage(2)
	rw.WriteUID(3)
	if options.Flags {
		rw.WriteFlags([]imap.Flag{imap.FlagSeen})
	}
	if options.ModSeq {
		rw.WriteModSeq(8)
	}
	return rw.Close()
}
func (s *condStoreSession) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error {
	s.lastStore = options
	if options.Conditional {
		w.SetModified(numSet)
	}
	return nil
}
func (s *condStoreSession) Copy(imap.NumSet, string) (*imap.CopyData, error) { return nil, nil }
func (s *condStoreSession) HighestModSeq() (uint64, error)                   { return 9, nil }

func TestCondStoreWire(t *testing.T) {
	sess := &condStoreSession{}
	srv := imapserver.New(&imapserver.Options{
		NewSession:   func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) { return sess, nil, nil },
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapCondStore: {}, imap.CapQResync: {}},
		InsecureAuth: true,
	})
	client, server := net.Pipe()
	defer client.Close()
	go srv.ServeConn(server)
	r := bufio.NewReader(client)
	line := func() string {
		t.Helper()
		client.SetReadDeadline(time.Now().Add(10 * time.Second))
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return strings.TrimSuffix(l, "\r\n")
	}
	send := func(s string) {
		t.Helper()
		client.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := client.Write([]byte(s + "\r\n")); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	exchange := func(cmd string, want ...string) {
		t.Helper()
		send(cmd)
		for i, w := range want {
			if got := line(); got != w {
				t.Fatalf("%s: response %d:\n got %q\nwant %q", cmd, i, got, w)
			}
		}
	}
	line() // greeting
	exchange("a LOGIN u p", "a OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL- UNSELECT ENABLE IDLE UTF8=ACCEPT CONDSTORE QRESYNC] Logged in")
	exchange("e ENABLE QRESYNC", "* ENABLED QRESYNC", "e OK ENABLE completed")
	exchange("s1 SELECT INBOX (QRESYNC (7 5 1:4 (1:2 3:4)))",
		"* 2 EXISTS", "* 0 RECENT", "* OK [UIDVALIDITY 7] UIDs valid", "* OK [UIDNEXT 5] Predicted next UID",
		`* FLAGS (\Seen)`, `* OK [PERMANENTFLAGS (\Seen)] Permanent flags`, "* OK [HIGHESTMODSEQ 9] Highest",
		"* VANISHED (EARLIER) 1:2", `* 2 FETCH (UID 3 FLAGS (\Seen) MODSEQ (8))`,
		"s1 OK [READ-WRITE] SELECT completed")
	if o := sess.lastFetch; o.ChangedSince != 5 || !o.Vanished || !o.UID || !o.ModSeq {
		t.Errorf("SELECT (QRESYNC) fetched with %+v", o)
	}
	exchange("s2 EXAMINE INBOX (QRESYNC (8 5))",
		"* OK [CLOSED] Previous mailbox is now closed", "* 2 EXISTS", "* 0 RECENT", "* OK [UIDVALIDITY 7] UIDs valid",
		"* OK [UIDNEXT 5] Predicted next UID", `* FLAGS (\Seen)`, `* OK [PERMANENTFLAGS (\Seen)] Permanent flags`,
		"* OK [HIGHESTMODSEQ 9] Highest", "s2 OK [READ-ONLY] EXAMINE completed")
	exchange("f1 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 5 VANISHED)",
		"* VANISHED (EARLIER) 1:2", `* 2 FETCH (UID 3 FLAGS (\Seen) MODSEQ (8))`, "f1 OK UID FETCH completed")
	exchange("f2 FETCH 2 (MODSEQ)", "* 2 FETCH (UID 3 MODSEQ (8))", "f2 OK FETCH completed")
	exchange(`st1 STORE 1:2 (UNCHANGEDSINCE 5) +FLAGS.SILENT (\Seen)`, "st1 OK [MODIFIED 1:2] Conditional STORE failed")
	if o := sess.lastStore; o.UnchangedSince != 5 || !o.Conditional {
		t.Errorf("STORE options %+v", o)
	}
	exchange(`st2 UID STORE 3 +FLAGS (\Seen)`, "st2 OK UID STORE completed")
	if o := sess.lastStore; o.Conditional {
		t.Errorf("STORE without UNCHANGEDSINCE: %+v", o)
	}
	exchange("se1 SEARCH MODSEQ 5", "* SEARCH 1 2 (MODSEQ 8)", "se1 OK SEARCH completed")
	exchange("se2 SEARCH RETURN (MIN COUNT) MODSEQ 5", `* ESEARCH (TAG "se2") MIN 1 COUNT 2 MODSEQ 8`, "se2 OK SEARCH completed")
	exchange("se3 SEARCH SEEN", "* SEARCH 1 2", "se3 OK SEARCH completed")
	exchange("x STATUS INBOX (HIGHESTMODSEQ)", "* STATUS INBOX (HIGHESTMODSEQ 9)", "x OK STATUS completed")
	exchange("ex EXPUNGE", "* VANISHED 1:2", "ex OK EXPUNGE completed")
	send("i IDLE")
	for _, want := range []string{"+ idling", `* 1 FETCH (UID 3 FLAGS (\Seen) MODSEQ (10))`, "* VANISHED 4"} {
		if got := line(); got != want {
			t.Fatalf("IDLE: got %q, want %q", got, want)
		}
	}
	exchange("DONE", "i OK IDLE completed")
	exchange("l LOGOUT", "* BYE Logging out", "l OK LOGOUT completed")
}
