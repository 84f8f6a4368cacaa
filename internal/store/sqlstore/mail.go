package sqlstore

import (
	"context"
	"database/sql"
	"sort"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/mailstore"
)

// Mail is the mail store (mailstore.Store) of a DB. It is a type of its own
// because mailstore.Store and account.Store both have a Messages method.
type Mail struct{ db *DB }

// Mail returns the DB's mail store.
func (db *DB) Mail() *Mail { return &Mail{db: db} }

var _ mailstore.Store = (*Mail)(nil)

// mailboxCols are scanMailbox's columns, FROM mailboxFrom. The \Recent
// horizon lives in mailbox_recent (migration 0029), a row claimed
// without the mailbox's lock; no row there means 1.
const mailboxCols = `b.id, b.member_id, b.name, b.special_use, b.uid_validity, b.uid_next, b.subscribed, b.highest_modseq, COALESCE(r.recent_uid, 1)`

const mailboxFrom = `mailboxes b LEFT JOIN mailbox_recent r ON r.mailbox_id = b.id`

func scanMailbox(row interface{ Scan(...any) error }) (mailstore.Mailbox, error) {
	var mb mailstore.Mailbox
	var validity, next, highest, recent int64
	err := row.Scan(&mb.ID, &mb.MemberID, &mb.Name, &mb.SpecialUse, &validity, &next, &mb.Subscribed, &highest, &recent)
	mb.UIDValidity, mb.UIDNext, mb.HighestModSeq, mb.RecentUID = uint32(validity), uint32(next), uint64(highest), uint32(recent)
	return mb, err
}

// Mailboxes lists the member's mailboxes, INBOX first and the others by
// name, creating the defaults on first use.
func (s *Mail) Mailboxes(ctx context.Context, memberID int64) ([]mailstore.Mailbox, error) {
	db := s.db
	list, err := db.mailboxes(ctx, db.SQL, memberID)
	if err == nil && len(list) == 0 {
		// No INBOX, which cannot be deleted: a member who never had mail.
		if err := db.ensureAccount(ctx, memberID); err != nil {
			return nil, mailErr("mailboxes", err)
		}
		list, err = db.mailboxes(ctx, db.SQL, memberID)
	}
	if err == nil {
		err = db.shownAll(ctx, list)
	}
	return list, mailErr("mailboxes", err)
}

func (db *DB) mailboxes(ctx context.Context, q queryer, memberID int64) ([]mailstore.Mailbox, error) {
	rows, err := q.QueryContext(ctx, db.q(`SELECT `+mailboxCols+` FROM `+mailboxFrom+` WHERE b.member_id = ?`), memberID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []mailstore.Mailbox
	for rows.Next() {
		mb, err := scanMailbox(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, mb)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// Sorted here, not by ORDER BY, so both engines agree whatever the
	// PostgreSQL collation.
	sort.Slice(out, func(i, j int) bool {
		if (out[i].Name == inbox) != (out[j].Name == inbox) {
			return out[i].Name == inbox
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// Mailbox returns the member's mailbox called name (INBOX case-insensitively).
func (s *Mail) Mailbox(ctx context.Context, memberID int64, name string) (mailstore.Mailbox, error) {
	key, err := cleanMailboxName(name)
	if err != nil {
		return mailstore.Mailbox{}, account.ErrNotFound // no such name can exist
	}
	db := s.db
	stmt, err := db.prepared(ctx, db.q(`SELECT `+mailboxCols+` FROM `+mailboxFrom+` WHERE b.member_id = ? AND b.name_key = ?`)) // every SELECT and APPEND
	if err != nil {
		return mailstore.Mailbox{}, mailErr("mailbox", err)
	}
	mb, err := scanMailbox(stmt.QueryRowContext(ctx, memberID, key))
	if notFound(err) {
		// Perhaps a member who never had mail: the defaults are made on
		// first use, and then looked up again.
		if err := db.ensureAccount(ctx, memberID); err != nil {
			return mailstore.Mailbox{}, mailErr("mailbox", err)
		}
		mb, err = scanMailbox(stmt.QueryRowContext(ctx, memberID, key))
	}
	if notFound(err) {
		return mailstore.Mailbox{}, account.ErrNotFound
	}
	if err == nil {
		err = db.shown(ctx, mb.ID, mb.HighestModSeq)
	}
	return mb, mailErr("mailbox", err)
}

// CreateMailbox makes a mailbox and, as RFC 3501 §6.3.3 advises, any missing
// superior mailboxes ("a" for "a/b").
func (s *Mail) CreateMailbox(ctx context.Context, memberID int64, name, specialUse string) (mailstore.Mailbox, error) {
	name, err := cleanMailboxName(name)
	if err != nil {
		return mailstore.Mailbox{}, err
	}
	if err := checkSpecialUse(specialUse); err != nil {
		return mailstore.Mailbox{}, err
	}
	db := s.db
	var mb mailstore.Mailbox
	err = db.tx(ctx, func(tx *sql.Tx) error {
		if err := db.ensureAccountTx(ctx, tx, memberID); err != nil {
			return err
		}
		if _, err := db.lockAccount(ctx, tx, memberID); err != nil {
			return err
		}
		names, err := db.mailboxNames(ctx, tx, memberID)
		if err != nil {
			return err
		}
		if _, ok := names[name]; ok {
			return account.Errorf(account.ECONFLICT, "A mailbox with this name exists.")
		}
		if err := db.createParents(ctx, tx, memberID, name, names); err != nil {
			return err
		}
		mb, err = db.insertMailbox(ctx, tx, memberID, name, specialUse, false)
		return err
	})
	return mb, mailErr("create mailbox", err)
}

// mailboxNames returns the member's mailbox ids by name.
func (db *DB) mailboxNames(ctx context.Context, tx *sql.Tx, memberID int64) (map[string]int64, error) {
	rows, err := tx.QueryContext(ctx, db.q(`SELECT id, name_key FROM mailboxes WHERE member_id = ?`), memberID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, err
		}
		out[name] = id
	}
	return out, rows.Err()
}

// createParents creates the superior mailboxes of name missing from names,
// and adds them to names.
func (db *DB) createParents(ctx context.Context, tx *sql.Tx, memberID int64, name string, names map[string]int64) error {
	for _, p := range parents(name) {
		if _, ok := names[p]; ok {
			continue
		}
		mb, err := db.insertMailbox(ctx, tx, memberID, p, "", false)
		if err != nil {
			return err
		}
		names[p] = mb.ID
	}
	return nil
}

// namedMailboxTx runs fn in a transaction that holds the member's account
// lock (see Locking), with the member's mailbox ids by name and the id of
// the mailbox key; account.ErrNotFound when there is none. Errors are
// mailErr's for op.
func (db *DB) namedMailboxTx(ctx context.Context, op string, memberID int64, key string, fn func(tx *sql.Tx, names map[string]int64, id int64) error) error {
	if err := db.ensureAccount(ctx, memberID); err != nil {
		return mailErr(op, err)
	}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := db.lockAccount(ctx, tx, memberID); err != nil {
			return err
		}
		names, err := db.mailboxNames(ctx, tx, memberID)
		if err != nil {
			return err
		}
		id, ok := names[key]
		if !ok {
			return account.ErrNotFound
		}
		return fn(tx, names, id)
	})
	return mailErr(op, err)
}

// DeleteMailbox deletes a mailbox and its messages. INBOX cannot be deleted
// (RFC 3501 §6.3.4), nor a mailbox with inferiors: DELETE must not remove
// them and this store has no \Noselect mailboxes to leave behind, so the
// client is asked to delete them first, as Dovecot does.
func (s *Mail) DeleteMailbox(ctx context.Context, memberID int64, name string) error {
	key, err := cleanMailboxName(name)
	if err != nil {
		return account.ErrNotFound
	}
	if key == inbox {
		return account.Errorf(account.ECONFLICT, "INBOX cannot be deleted.")
	}
	db := s.db
	return db.namedMailboxTx(ctx, "delete mailbox", memberID, key, func(tx *sql.Tx, names map[string]int64, id int64) error {
		for n := range names {
			if isInside(n, key) {
				return &account.Error{Code: account.ECONFLICT, Message: "The mailbox contains other mailboxes; delete them first.", Err: mailstore.ErrHasChildren}
			}
		}
		if _, err := db.lockMailboxes(ctx, tx, id); err != nil {
			return err
		}
		var bodies []int64
		var size int64
		rows, err := tx.QueryContext(ctx, db.q(`SELECT body_id, size FROM mail_messages WHERE mailbox_id = ?`), id)
		if err != nil {
			return err
		}
		for rows.Next() {
			var b, n int64
			if err := rows.Scan(&b, &n); err != nil {
				rows.Close()
				return err
			}
			bodies = append(bodies, b)
			size += n
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		// The subscription stays (RFC 9051 §6.3.7), by name.
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO mail_subscribed_names (member_id, name) SELECT member_id, name FROM mailboxes WHERE id = ? AND subscribed = TRUE ON CONFLICT DO NOTHING`), id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM mailboxes WHERE id = ?`), id); err != nil {
			return err
		}
		if err := db.dropBodies(ctx, tx, bodies); err != nil {
			return err
		}
		if err := db.addUsage(ctx, tx, memberID, -size); err != nil {
			return err
		}
		return db.mailboxChanged(ctx, tx, memberID, id)
	})
}

// RenameMailbox renames a mailbox and its inferiors ("a/x" follows "a").
// Renaming INBOX is special (RFC 3501 §6.3.5): its messages move to a new
// mailbox of the new name, INBOX stays, empty, and its inferiors stay.
func (s *Mail) RenameMailbox(ctx context.Context, memberID int64, oldName, newName string) error {
	oldKey, err := cleanMailboxName(oldName)
	if err != nil {
		return account.ErrNotFound
	}
	newKey, err := cleanMailboxName(newName)
	if err != nil {
		return err
	}
	if isInside(newKey, oldKey) {
		return account.Errorf(account.EINVALID, "A mailbox cannot be moved inside itself.")
	}
	db := s.db
	return db.namedMailboxTx(ctx, "rename mailbox", memberID, oldKey, func(tx *sql.Tx, names map[string]int64, oldID int64) error {
		if oldKey == inbox {
			return db.renameInbox(ctx, tx, memberID, oldID, newKey, names)
		}
		// The mailbox and its inferiors, with their new names.
		moves := map[int64]string{oldID: newKey}
		for n, id := range names {
			if isInside(n, oldKey) {
				moves[id] = newKey + n[len(oldKey):]
			}
		}
		for _, to := range moves {
			if _, ok := names[to]; ok {
				return account.Errorf(account.ECONFLICT, "A mailbox with this name exists.")
			}
		}
		for id, to := range moves {
			if _, err := tx.ExecContext(ctx, db.q(`UPDATE mailboxes SET name = ?, name_key = ? WHERE id = ?`), to, to, id); err != nil {
				if isUnique(err) {
					return account.Errorf(account.ECONFLICT, "A mailbox with this name exists.")
				}
				return err
			}
			names[to] = id
		}
		return db.createParents(ctx, tx, memberID, newKey, names)
	})
}

// renameInbox moves INBOX's messages to a new mailbox newKey. They keep their
// UIDs, which stay ascending below the new mailbox's UIDNEXT, under the new
// mailbox's own UIDVALIDITY and mod-sequences; INBOX keeps its UIDVALIDITY
// and UIDNEXT, so its UIDs are never reused, and the UIDs that left it are
// buried there (QRESYNC's VANISHED).
func (db *DB) renameInbox(ctx context.Context, tx *sql.Tx, memberID, inboxID int64, newKey string, names map[string]int64) error {
	if _, ok := names[newKey]; ok {
		return account.Errorf(account.ECONFLICT, "A mailbox with this name exists.")
	}
	if err := db.createParents(ctx, tx, memberID, newKey, names); err != nil {
		return err
	}
	mb, err := db.insertMailbox(ctx, tx, memberID, newKey, "", false)
	if err != nil {
		return err
	}
	locked, err := db.lockMailboxes(ctx, tx, inboxID)
	if err != nil {
		return err
	}
	in := locked[inboxID]
	rows, err := db.selectMsgs(ctx, tx, inboxID, nil)
	if err != nil {
		return err
	}
	uids := make([]uint32, len(rows))
	for i, r := range rows {
		uids[i] = r.uid
	}
	if err := db.bury(ctx, tx, in, uids); err != nil {
		return err
	}
	// The messages keep their mod-sequences, all at most INBOX's highest.
	if _, err := tx.ExecContext(ctx, db.q(`UPDATE mailboxes SET uid_next = ?, highest_modseq = ? WHERE id = ?`), in.uidNext, in.highestModSeq, mb.ID); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, db.q(`UPDATE mail_messages SET mailbox_id = ? WHERE mailbox_id = ?`), mb.ID, inboxID); err != nil {
		return err
	}
	return db.mailboxChanged(ctx, tx, memberID, inboxID, mb.ID)
}

// SetSubscribed subscribes or unsubscribes a mailbox (RFC 3501 §6.3.6).
func (s *Mail) SetSubscribed(ctx context.Context, memberID int64, name string, on bool) error {
	key, err := cleanMailboxName(name)
	if err != nil {
		return account.ErrNotFound
	}
	db := s.db
	if err := db.ensureAccount(ctx, memberID); err != nil {
		return mailErr("subscribe", err)
	}
	db.MailChanged(memberID) // Open returns the flag (inboxcache.go)
	defer db.MailChanged(memberID)
	// Unsubscribing also drops the name of a deleted mailbox.
	res, err := db.SQL.ExecContext(ctx, db.q(`DELETE FROM mail_subscribed_names WHERE member_id = ? AND name = ?`), memberID, key)
	if err != nil {
		return mailErr("subscribe", err)
	}
	err = db.execOne(ctx, db.SQL, account.ErrNotFound,
		`UPDATE mailboxes SET subscribed = ? WHERE member_id = ? AND name_key = ?`, on, memberID, key)
	if n, _ := res.RowsAffected(); err == account.ErrNotFound && n > 0 && !on {
		err = nil
	}
	return mailErr("subscribe", err)
}

// SubscribedNames returns the subscribed names that have no mailbox, in
// order: mailboxes deleted while subscribed.
func (s *Mail) SubscribedNames(ctx context.Context, memberID int64) ([]string, error) {
	rows, err := s.db.SQL.QueryContext(ctx, s.db.q(`SELECT s.name FROM mail_subscribed_names s WHERE s.member_id = ? AND NOT EXISTS (SELECT 1 FROM mailboxes b WHERE b.member_id = s.member_id AND b.name_key = s.name)`), memberID)
	if err != nil {
		return nil, mailErr("subscribed names", err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, mailErr("subscribed names", err)
		}
		names = append(names, n)
	}
	sort.Strings(names) // here, as Mailboxes: both engines agree
	return names, mailErr("subscribed names", rows.Err())
}
