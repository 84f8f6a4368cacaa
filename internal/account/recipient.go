package account

import (
	"context"
	"errors"
	"strings"
)

// Recipient is where mail to one address goes.
type Recipient struct {
	Address string   // the address as given, normalised (local@domain, lower case)
	Tag     string   // the plus tag: "news" of alice+news@example.com; "" without one
	Members []Member // the members it is delivered to, each once
}

// ResolveRecipient says where mail to address goes, for the MX listener,
// LMTP and submission: a member's own address, or the same with a plus tag
// (alice+news@ → alice, the tag kept for filters). Errors: EINVALID for a
// malformed address, ENOTLOCAL when its domain is not one of ours (this
// server never relays), ENOTFOUND for an address of ours that reaches nobody,
// EUNAVAILABLE when the store does not answer. A suspended member still
// receives: suspension stops logins, and the mail waits for the member's
// return as it would in any organisation's mailbox.
func (s *Service) ResolveRecipient(ctx context.Context, address string) (Recipient, error) {
	e, err := ParseEmail(address)
	if err != nil {
		return Recipient{}, err
	}
	local, domain, _ := strings.Cut(e, "@")
	if _, err := s.Store.DomainByName(ctx, domain); errors.Is(err, ErrNotFound) {
		return Recipient{}, Errorf(ENOTLOCAL, "%s is not a domain of this server.", domain)
	} else if err != nil {
		return Recipient{}, unavailableErr(err)
	}
	r := Recipient{Address: e}
	m, err := s.Store.MemberByEmail(ctx, e)
	if errors.Is(err, ErrNotFound) {
		if base, tag, ok := strings.Cut(local, "+"); ok && base != "" {
			r.Tag = tag
			m, err = s.Store.MemberByEmail(ctx, base+"@"+domain)
		}
	}
	switch {
	case errors.Is(err, ErrNotFound):
		return Recipient{}, Errorf(ENOTFOUND, "No mailbox here has the address %s.", e)
	case err != nil:
		return Recipient{}, unavailableErr(err)
	}
	r.Members = []Member{m}
	return r, nil
}
