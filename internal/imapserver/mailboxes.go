package imapserver

import (
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/postern/postern/internal/mailstore"
)

// delim is the hierarchy separator of mailstore names.
const delim = '/'

// List is LIST and LSUB (RFC 9051 §6.3.9), with the special-use attributes
// of RFC 6154 and the child attributes of RFC 3348 on every mailbox, as
// Dovecot does: clients look for \Sent or \Trash without asking for them.
// LIST-EXTENDED (RFC 5258): several patterns, the selection options
// SUBSCRIBED (with the names of deleted mailboxes still subscribed, as
// \NonExistent), SPECIAL-USE, REMOTE (nothing is remote) and RECURSIVEMATCH,
// and the return options SUBSCRIBED, CHILDREN, SPECIAL-USE and STATUS.
func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if len(patterns) == 0 && !options.SelectSubscribed {
		// The delimiter query, LIST "" "" (RFC 9051 §6.3.9); go-imap drops
		// empty patterns.
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: delim})
	}
	mbs, err := s.srv.cfg.Mail.Mailboxes(s.ctx, s.memberID)
	if err != nil {
		return s.storeErr("list", err)
	}
	names := make([]string, len(mbs))
	for i, mb := range mbs {
		names[i] = mb.Name
	}
	sort.Strings(names)
	if options.SelectSubscribed && !w.LSub() {
		gone, err := s.srv.cfg.Mail.SubscribedNames(s.ctx, s.memberID)
		if err != nil {
			return s.storeErr("list", err)
		}
		for _, n := range gone {
			mbs = append(mbs, mailstore.Mailbox{Name: n, Subscribed: true}) // ID 0: no mailbox
		}
	}
	selected := func(mb *mailstore.Mailbox) bool {
		return (!options.SelectSubscribed || mb.Subscribed) && (!options.SelectSpecialUse || mb.SpecialUse != "")
	}
	childInfo := recursiveMatch(mbs, ref, patterns, options, selected)
	for n := range childInfo {
		if i := sort.SearchStrings(names, n); i == len(names) || names[i] != n {
			mbs = append(mbs, mailstore.Mailbox{Name: n}) // a missing superior
		}
	}
	for i := range mbs {
		mb := &mbs[i]
		if !matchAny(mb.Name, ref, patterns) || !(selected(mb) || childInfo[mb.Name]) {
			continue
		}
		data := &imap.ListData{Mailbox: mb.Name, Delim: delim}
		switch {
		case mb.ID == 0:
			// RFC 5258 §3: \NonExistent, which implies \Noselect.
			data.Attrs = append(data.Attrs, imap.MailboxAttrNonExistent)
		case hasChildren(names, mb.Name):
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasChildren)
		default:
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasNoChildren)
		}
		if mb.SpecialUse != "" {
			data.Attrs = append(data.Attrs, imap.MailboxAttr(mb.SpecialUse))
		}
		if mb.Subscribed && (options.ReturnSubscribed || options.SelectSubscribed) {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		if childInfo[mb.Name] {
			data.ChildInfo = &imap.ListDataChildInfo{Subscribed: true}
		}
		if options.ReturnStatus != nil && mb.ID != 0 {
			if data.Status, err = s.status(*mb, options.ReturnStatus); err != nil {
				return err
			}
		}
		if err := w.WriteList(data); err != nil {
			return err
		}
	}
	return nil
}

// recursiveMatch returns, for LIST (SUBSCRIBED RECURSIVEMATCH), the names
// owed CHILDINFO ("SUBSCRIBED") (RFC 5258 §3.5): the superiors of the
// selected mailboxes that no pattern matches, so that a client listing one
// level finds where the subscribed mailboxes below it are. Nil otherwise.
func recursiveMatch(mbs []mailstore.Mailbox, ref string, patterns []string, options *imap.ListOptions, selected func(*mailstore.Mailbox) bool) map[string]bool {
	if !options.SelectRecursiveMatch {
		return nil
	}
	out := map[string]bool{}
	for i := range mbs {
		name := mbs[i].Name
		if !selected(&mbs[i]) || matchAny(name, ref, patterns) {
			continue
		}
		for j := strings.IndexByte(name, delim); j >= 0; {
			out[name[:j]] = true
			k := strings.IndexByte(name[j+1:], delim)
			if k < 0 {
				break
			}
			j += 1 + k
		}
	}
	return out
}

func matchAny(name, ref string, patterns []string) bool {
	for _, p := range patterns {
		// INBOX is case-insensitive (RFC 9051 §5.1), so "inbox" matches it.
		if len(p) >= 5 && strings.EqualFold(p[:5], "INBOX") && (len(p) == 5 || p[5] == delim) {
			p = "INBOX" + p[5:]
		}
		if imapserver.MatchList(name, delim, ref, p) {
			return true
		}
	}
	return false
}

// hasChildren reports whether sorted names holds an inferior of name.
func hasChildren(names []string, name string) bool {
	prefix := name + string(delim)
	i := sort.SearchStrings(names, prefix)
	return i < len(names) && strings.HasPrefix(names[i], prefix)
}

// Create is CREATE (RFC 9051 §6.3.4); a trailing separator only says that
// the client means to create inferiors.
func (s *session) Create(name string, options *imap.CreateOptions) error {
	name = strings.TrimSuffix(name, string(delim))
	use := ""
	if options != nil && len(options.SpecialUse) > 0 {
		// CREATE-SPECIAL-USE (RFC 6154 §3): one use per mailbox, of those a
		// real mailbox can have; \All and \Flagged would be views of other
		// mailboxes, which Postern has not.
		if len(options.SpecialUse) > 1 {
			return errUseAttr("A mailbox has at most one special use.")
		}
		var ok bool
		if use, ok = creatableUses[strings.ToLower(string(options.SpecialUse[0]))]; !ok {
			return errUseAttr(`Special uses that CREATE takes: \Archive, \Drafts, \Junk, \Sent and \Trash.`)
		}
	}
	if _, err := s.srv.cfg.Mail.CreateMailbox(s.ctx, s.memberID, name, use); err != nil {
		return s.storeErr("create", err)
	}
	return nil
}

// creatableUses are the special uses CREATE (USE (…)) takes, by lower-cased
// name, with their spelling (RFC 6154 §2).
var creatableUses = map[string]string{
	`\archive`: `\Archive`, `\drafts`: mailstore.Drafts, `\junk`: mailstore.Junk,
	`\sent`: mailstore.Sent, `\trash`: mailstore.Trash,
}

func errUseAttr(text string) error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: "USEATTR", Text: text}
}

func (s *session) Delete(name string) error {
	if err := s.srv.cfg.Mail.DeleteMailbox(s.ctx, s.memberID, name); err != nil {
		return s.storeErr("delete", err)
	}
	return nil
}

func (s *session) Rename(oldName, newName string, _ *imap.RenameOptions) error {
	if err := s.srv.cfg.Mail.RenameMailbox(s.ctx, s.memberID, oldName, newName); err != nil {
		return s.storeErr("rename", err)
	}
	return nil
}

func (s *session) Subscribe(name string) error {
	if err := s.srv.cfg.Mail.SetSubscribed(s.ctx, s.memberID, name, true); err != nil {
		return s.storeErr("subscribe", err)
	}
	return nil
}

func (s *session) Unsubscribe(name string) error {
	if err := s.srv.cfg.Mail.SetSubscribed(s.ctx, s.memberID, name, false); err != nil {
		return s.storeErr("unsubscribe", err)
	}
	return nil
}

// Status is STATUS (RFC 9051 §6.3.11).
func (s *session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	mb, err := s.srv.cfg.Mail.Mailbox(s.ctx, s.memberID, name)
	if err != nil {
		return nil, s.storeErr("status", err)
	}
	return s.status(mb, options)
}

func (s *session) status(mb mailstore.Mailbox, options *imap.StatusOptions) (*imap.StatusData, error) {
	data := &imap.StatusData{Mailbox: mb.Name, UIDNext: imap.UID(mb.UIDNext), UIDValidity: mb.UIDValidity, HighestModSeq: mb.HighestModSeq}
	if options.NumMessages || options.NumUnseen || options.NumDeleted || options.Size || options.NumRecent || options.DeletedStorage {
		c, err := s.srv.cfg.Mail.Counts(s.ctx, mb.ID)
		if err != nil {
			return nil, s.storeErr("status", err)
		}
		total, unseen, deleted, size, deletedSize := c.Messages, c.Unseen, c.Deleted, c.Size, c.DeletedSize
		zero := uint32(0) // no \Recent: it is obsolete (RFC 9051 §2.3.2)
		set := func(on bool, v uint32) *uint32 {
			if on {
				return &v
			}
			return nil
		}
		data.NumMessages = set(options.NumMessages, total)
		data.NumUnseen = set(options.NumUnseen, unseen)
		data.NumDeleted = set(options.NumDeleted, deleted)
		data.NumRecent = set(options.NumRecent, zero)
		if options.Size {
			data.Size = &size
		}
		if options.DeletedStorage {
			// RFC 9208 §4.2: what EXPUNGE would free, in the STORAGE
			// resource's units (1024 octets).
			kib := deletedSize / 1024
			data.DeletedStorage = &kib
		}
	}
	if options.AppendLimit {
		limit := uint32(mailstore.MaxMessageSize)
		data.AppendLimit = &limit
	}
	return data, nil
}

// hasFlag compares flags case-insensitively (RFC 9051 §2.3.2).
func hasFlag(flags []string, f string) bool {
	for _, x := range flags {
		if strings.EqualFold(x, f) {
			return true
		}
	}
	return false
}
