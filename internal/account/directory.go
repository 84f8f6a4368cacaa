package account

import (
	"context"
	"crypto/subtle"
)

// MemberByID returns the member with the id (a web session names its member
// by id); ErrNotFound when there is none.
func (s *Service) MemberByID(ctx context.Context, id int64) (Member, error) {
	return s.store.MemberByID(ctx, id)
}

// FindAppPassword returns the member's app password id (the zero
// AppPassword when there is none) and whether secret is that password
// (keyed hash, constant-time compare), for a request that carries both (a
// setup profile's download).
func (s *Service) FindAppPassword(ctx context.Context, m Member, id, secret string) (AppPassword, bool, error) {
	list, err := s.store.AppPasswords(ctx, m.ID)
	if err != nil {
		return AppPassword{}, false, err
	}
	for _, p := range list {
		if p.ID == id {
			return p, subtle.ConstantTimeCompare(HashAppPassword(s.Config.Key, secret), p.Hash) == 1, nil
		}
	}
	return AppPassword{}, false, nil
}

// TouchAppPasswords records the uses of app passwords (their last use), in
// one transaction; see Touch.
func (s *Service) TouchAppPasswords(ctx context.Context, uses []Touch) error {
	return s.store.TouchAppPasswords(ctx, uses)
}

// Messages returns the member's messages, newest first. Listing them marks
// nothing read (MarkMessagesRead, OpenMessages).
func (s *Service) Messages(ctx context.Context, m Member) ([]Message, error) {
	return s.store.Messages(ctx, m.ID)
}

// OpenMessages returns the member's messages, newest first and marked as
// they were, and marks the unread ones read: opening the list is reading
// them, as in any mail client. A failure to mark them is logged, not
// returned: the list was read.
func (s *Service) OpenMessages(ctx context.Context, m Member) ([]Message, error) {
	list, err := s.store.Messages(ctx, m.ID)
	if err != nil {
		return nil, err
	}
	var unread []int64
	for _, msg := range list {
		if !msg.Read {
			unread = append(unread, msg.ID)
		}
	}
	if len(unread) > 0 {
		if err := s.store.MarkMessagesRead(ctx, m.ID, unread); err != nil {
			s.Log.Warn("mark messages read", "err", err)
		}
	}
	return list, nil
}

// MarkMessagesRead marks the member's messages ids read; all of them when
// ids is empty.
func (s *Service) MarkMessagesRead(ctx context.Context, m Member, ids []int64) error {
	return s.store.MarkMessagesRead(ctx, m.ID, ids)
}

// UnreadMessages counts the member's unread messages.
func (s *Service) UnreadMessages(ctx context.Context, m Member) (int, error) {
	return s.store.UnreadMessages(ctx, m.ID)
}
