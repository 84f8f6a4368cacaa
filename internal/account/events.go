package account

// What each kind of event does to live sessions and to what a login checks
// is decided here, once, for the session registry (auth.Registry) and the
// credential caches (sqlstore.DB.HandleEvent). A kind missing from
// eventKinds fails TestEveryEventKindClassified.
var eventKinds = map[EventKind]eventClass{
	EventAppPasswordCreated: {login: true},
	EventAppPasswordDeleted: {ends: endsAppPassword, login: true},
	EventSettingChanged:     {ends: endsAll, login: true},
	EventPasswordChanged:    {ends: endsMain, login: true},
	EventMemberSuspended:    {ends: endsAll, login: true},
	EventMemberResumed:      {login: true},
	EventAccountPaused:      {login: true},
	EventMailboxChanged:     {},
	EventMemberRenamed:      {ends: endsAll, login: true},
	EventMemberDeleted:      {ends: endsAll, login: true},
	EventSessionsEnded:      {ends: endsAll, login: true},
	EventPolicyChanged:      {ends: endsByPolicy, login: true},
}

type eventClass struct {
	ends  ends // which live sessions an event of the kind ends
	login bool // it changes what a login checks (credentials, state, policy)
}

type ends uint8

const (
	endsNone        ends = iota
	endsAll              // every session of the member
	endsAppPassword      // the member's sessions that used the event's app password
	endsMain             // the member's sessions that used the main password
	endsByPolicy         // the domain's sessions that its new policy refuses
)

// Revoking reports whether an event of kind k may end live sessions: the
// registry looks at no other event.
func (k EventKind) Revoking() bool { return eventKinds[k].ends != endsNone }

// RevokesByPolicy reports whether an event of kind k ends the sessions of
// the event's domain (DomainID) that the domain's new policy refuses: the
// registry reads the policy and checks each session against it.
func (k EventKind) RevokesByPolicy() bool { return eventKinds[k].ends == endsByPolicy }

// ChangesLogin reports whether an event of kind k changes what a login
// checks, so that a cached copy of the member's credentials (or, with
// DomainID set, of every member's) is stale. An unknown kind, written by a
// newer node, does: a cache dropped once too often costs one query.
func (k EventKind) ChangesLogin() bool {
	c, ok := eventKinds[k]
	return !ok || c.login
}

// Revokes reports whether e ends a live session of e.MemberID that logged
// in with c. A policy change (EventPolicyChanged, DomainID set) is not
// decided by the event but by the domain's new policy, which the registry
// reads and checks every session of the domain against: Revokes is false
// for it.
func (e Event) Revokes(c Credential) bool {
	switch eventKinds[e.Kind].ends {
	case endsAll:
		return true
	case endsAppPassword:
		return e.AppPasswordID != "" && c.AppPasswordID == e.AppPasswordID
	case endsMain:
		return c.IsMain()
	}
	return false
}
