package account

import (
	"context"
	"strings"
)

// Recipient is where mail to one address goes.
type Recipient struct {
	Address string   // the address as given, normalised (local@domain, lower case)
	Tag     string   // the plus tag: "news" of alice+news@example.com; "" without one
	Members []Member // the members it is delivered to, each once, by address
	// Alias is the alias that matched ("" for a member's address or the
	// catch-all); CatchAll is set when the domain's catch-all took it.
	Alias    string
	CatchAll bool
}

// ResolveRecipient says where mail to address goes, for the MX listener,
// LMTP and submission, in this order: a member's own address; an alias's
// address (to its members, each once); either of those with a plus tag
// (alice+news@ → alice, sales+eu@ → the alias sales@, the tag kept for
// filters); the domain's catch-all member. An alias whose targets were all
// removed reaches nobody and does not fall through to the catch-all: its
// address is known, and nobody is who the administrator left it to.
//
// Errors: EINVALID for a malformed address, ENOTLOCAL when its domain is not
// one of ours (this server never relays), ENOTFOUND for an address of ours
// that reaches nobody, EUNAVAILABLE when the store does not answer. A
// suspended member still receives: suspension stops logins, and the mail
// waits for the member's return as it would in any organisation's mailbox.
//
// It costs one store round trip (Store.LookupAddresses), whatever matches.
func (s *Service) ResolveRecipient(ctx context.Context, address string) (Recipient, error) {
	e, err := ParseEmail(address)
	if err != nil {
		return Recipient{}, err
	}
	local, domain, _ := strings.Cut(e, "@")
	candidates := []string{e}
	base, tag, tagged := strings.Cut(local, "+")
	tagged = tagged && base != ""
	if tagged {
		candidates = append(candidates, base+"@"+domain)
	}
	l, err := s.store.LookupAddresses(ctx, domain, candidates)
	if err != nil {
		return Recipient{}, unavailableErr(err)
	}
	if !l.Domain {
		return Recipient{}, Errorf(ENOTLOCAL, "%s is not a domain of this server.", domain)
	}
	r := Recipient{Address: e}
	a, ok := l.Find(e)
	if !ok && tagged {
		if a, ok = l.Find(candidates[1]); ok {
			r.Tag = tag
		}
	}
	switch {
	case ok:
		r.Members = a.Members
		if a.Alias {
			r.Alias = a.Address
		}
	case l.CatchAll != nil:
		r.Members, r.CatchAll = []Member{*l.CatchAll}, true
	}
	if len(r.Members) == 0 {
		return Recipient{}, Errorf(ENOTFOUND, "No mailbox here has the address %s.", e)
	}
	return r, nil
}
