package account

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"
)

// Hasher hashes main passwords (argon2id, bounded; see package passhash).
type Hasher interface {
	Hash(ctx context.Context, pw string) (string, error)
	// Verify returns nil when pw matches encoded. With encoded == "" it does
	// the same work and fails, so unknown users cost what known ones do.
	Verify(ctx context.Context, encoded, pw string) error
	// HashGenerated hashes a password drawn from crypto/rand with at least
	// 100 bits of entropy, cheaply: see passhash.HashGenerated.
	HashGenerated(pw string) string
}

// Config of the account service.
type Config struct {
	Key     []byte    // HMAC key for app passwords; lives outside the database
	Cutoff  time.Time // domains created before it are optional; zero means DefaultCutoff
	BaseURL string    // links in notifications, e.g. https://mail.example.com
	// SendLimits are the sending caps of SMTP submission; nil means
	// DefaultSendLimits.
	SendLimits *SendLimits
}

// Service applies the rules of accounts and app passwords over a Store.
// Every interface (web, API, admin console, CLI, protocols) goes through
// it: the store is not exported, so that no rule can be gone around
// (internal/archtest checks that nothing outside cmd/postern's wiring
// reaches the store).
type Service struct {
	store  Store
	Hasher Hasher
	Config Config
	Now    func() time.Time
	Log    *slog.Logger
}

// NewService returns a Service with defaults filled in.
func NewService(st Store, h Hasher, cfg Config) *Service {
	if cfg.Cutoff.IsZero() {
		cfg.Cutoff = DefaultCutoff
	}
	return &Service{store: st, Hasher: h, Config: cfg, Now: time.Now, Log: slog.Default()}
}

// Actor is who made a change, for notifications, logs and the audit log.
type Actor struct {
	Via       string // "web", "api", "cli", "system" (the server itself)
	IP        string
	UserAgent string
	// Admin is the address of the administrator who acts on someone
	// else's account (the console); "" when members act on their own.
	Admin string
}

// Policy returns the member's domain policy.
func (s *Service) Policy(m Member) Policy { return m.Policy(s.Config.Cutoff) }

// AddDomain creates a domain; created zero means now. The audit log names
// the server as the actor: front ends call AddDomainBy.
func (s *Service) AddDomain(ctx context.Context, name string, created time.Time) (Domain, error) {
	return s.AddDomainBy(ctx, name, created, Actor{Via: "system"})
}

// AddDomainBy creates a domain for by; created zero means now.
func (s *Service) AddDomainBy(ctx context.Context, name string, created time.Time, by Actor) (Domain, error) {
	n, err := ParseDomain(name)
	if err != nil {
		return Domain{}, err
	}
	if created.IsZero() {
		created = s.Now()
	}
	d := Domain{Name: n, CreatedAt: created.UTC()}
	a := s.Audit(AuditDomainAdded, Member{}, by, "created "+d.CreatedAt.Format(time.RFC3339))
	a.Domain = n
	if err := s.store.CreateDomain(ctx, &d, Effects{Audit: []AuditEntry{a}}); err != nil {
		return Domain{}, err
	}
	return d, nil
}

// Domain returns the domain named name.
func (s *Service) Domain(ctx context.Context, name string) (Domain, error) {
	n, err := ParseDomain(name)
	if err != nil {
		return Domain{}, err
	}
	d, err := s.store.DomainByName(ctx, n)
	if errors.Is(err, ErrNotFound) {
		return Domain{}, Errorf(ENOTFOUND, "No domain %s. Add it with 'postern domain add %s'.", n, n)
	}
	return d, err
}

// DomainNames returns the name of every domain served here, for what the
// server holds per domain (the certificates of its autoconfig and mta-sts
// names).
func (s *Service) DomainNames(ctx context.Context) ([]string, error) {
	all, err := s.store.Domains(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(all))
	for i, d := range all {
		out[i] = d.Name
	}
	return out, nil
}

// AddMember creates an active member of an existing domain. The audit log
// names the server as the actor: front ends call AddMemberBy.
func (s *Service) AddMember(ctx context.Context, email, name, password string) (Member, error) {
	return s.AddMemberBy(ctx, email, name, password, Actor{Via: "system"})
}

// AddMemberBy creates an active member of an existing domain for by.
func (s *Service) AddMemberBy(ctx context.Context, email, name, password string, by Actor) (Member, error) {
	e, err := ParseEmail(email)
	if err != nil {
		return Member{}, err
	}
	if err := CheckPassword(e, password); err != nil {
		return Member{}, err
	}
	if name, err = checkName(e, name); err != nil {
		return Member{}, err
	}
	d, err := s.store.DomainByName(ctx, strings.SplitN(e, "@", 2)[1])
	if errors.Is(err, ErrNotFound) {
		return Member{}, Errorf(ENOTFOUND, "The domain %s does not exist: add it first with 'postern domain add'.", strings.SplitN(e, "@", 2)[1])
	} else if err != nil {
		return Member{}, err
	}
	hash, err := s.Hasher.Hash(ctx, password)
	if err != nil {
		return Member{}, err
	}
	m := Member{DomainID: d.ID, Email: e, Name: name, PasswordHash: hash, State: StateActive,
		CreatedAt: s.Now().UTC(), DomainCreatedAt: d.CreatedAt}
	a := s.Audit(AuditMemberAdded, m, by, "")
	if by.Via != "cli" && by.Via != "system" && by.Admin == "" {
		// Nobody signs up for themselves: an actor that is no administrator
		// is the server.
		a.Actor, a.ActorEmail = ActorSystem, ""
	}
	if err := s.store.CreateMember(ctx, &m, Effects{Audit: []AuditEntry{a}}); err != nil {
		return Member{}, err
	}
	return m, nil
}

// Member returns the member with the address email.
func (s *Service) Member(ctx context.Context, email string) (Member, error) {
	e, err := ParseEmail(email)
	if err != nil {
		return Member{}, err
	}
	m, err := s.store.MemberByEmail(ctx, e)
	if errors.Is(err, ErrNotFound) {
		return Member{}, Errorf(ENOTFOUND, "No member %s.", e)
	}
	return m, err
}

// CheckMainPassword verifies the member's main password (web sign-in, re-authentication).
func (s *Service) CheckMainPassword(ctx context.Context, m Member, pw string) error {
	if err := s.Hasher.Verify(ctx, m.PasswordHash, pw); err != nil {
		return authFailure("bad-password")
	}
	return nil
}

// VerifyMain decides whether pw is the main password of email, for the web
// sign-in and re-authentication: app passwords never open a web session
// (docs/security.md), and the domain policy does not apply there. Like
// Verify, every failure is ErrAuthFailed (the reason, "unknown-user",
// "bad-password" or "suspended", only in the wrapped cause), every failure
// costs one hash, and the state is told only after the right password. The
// member is returned with a failure too when the address is known, so that
// the caller can count it; a store failure is EUNAVAILABLE.
func (s *Service) VerifyMain(ctx context.Context, email, pw string) (Member, error) {
	e, err := ParseEmail(email)
	if err != nil || len(pw) > 1024 {
		s.Hasher.Verify(ctx, "", pw)
		return Member{}, authFailure("unknown-user")
	}
	m, err := s.store.MemberByEmail(ctx, e)
	if errors.Is(err, ErrNotFound) {
		s.Hasher.Verify(ctx, "", pw)
		return Member{}, authFailure("unknown-user")
	} else if err != nil {
		return Member{}, unavailableErr(err)
	}
	if err := s.Hasher.Verify(ctx, m.PasswordHash, pw); err != nil {
		if ctx.Err() != nil {
			return Member{}, unavailableErr(ctx.Err())
		}
		return m, authFailure("bad-password")
	}
	if m.State != StateActive {
		return m, authFailure("suspended")
	}
	return m, nil
}

// SetUseAppPasswords changes the member's setting. Refused for enforced
// domains. The change ends the member's live third-party sessions.
func (s *Service) SetUseAppPasswords(ctx context.Context, m Member, on bool, by Actor) error {
	if s.Policy(m) == PolicyEnforced {
		return Errorf(ECONFLICT, "Your domain requires third-party app passwords; this setting cannot be changed.")
	}
	if m.UseAppPasswords == on {
		return nil
	}
	msg := s.settingMessage(m, on, by, s.Location(ctx, m.ID))
	return s.store.SetUseAppPasswords(ctx, m.ID, on, Effects{
		Events:   []Event{{Kind: EventSettingChanged, MemberID: m.ID}},
		Messages: []Message{msg},
		Audit:    []AuditEntry{s.Audit(AuditSettingChanged, m, by, "use third-party app passwords "+onOff(on))},
	})
}

// SetState suspends or resumes a member; suspension ends every session.
func (s *Service) SetState(ctx context.Context, m Member, st State, by Actor) error {
	if st != StateActive && st != StateSuspended {
		return Errorf(EINVALID, "Unknown state %q.", st)
	}
	kind, action := EventMemberResumed, AuditMemberResumed
	if st == StateSuspended {
		kind, action = EventMemberSuspended, AuditMemberSuspended
	}
	return s.store.SetState(ctx, m.ID, st, Effects{Events: []Event{{Kind: kind, MemberID: m.ID}},
		Audit: []AuditEntry{s.Audit(action, m, by, "")}})
}

// ChangePassword sets a new main password. current is checked unless
// skipCurrent (administrator reset). Sessions that used the main password end;
// with deleteAppPasswords every app password is deleted too.
func (s *Service) ChangePassword(ctx context.Context, m Member, current, newPw string, skipCurrent, deleteAppPasswords bool, by Actor) error {
	if !skipCurrent {
		if err := s.CheckMainPassword(ctx, m, current); err != nil {
			return Errorf(EFORBIDDEN, "The current password is not correct.")
		}
	}
	if err := CheckPassword(m.Email, newPw); err != nil {
		return err
	}
	hash, err := s.Hasher.Hash(ctx, newPw)
	if err != nil {
		return err
	}
	action := AuditPasswordChanged
	if skipCurrent {
		action = AuditPasswordReset
	}
	fx := Effects{Events: []Event{{Kind: EventPasswordChanged, MemberID: m.ID}},
		Audit: []AuditEntry{s.Audit(action, m, by, "")}}
	if deleteAppPasswords {
		list, err := s.store.AppPasswords(ctx, m.ID)
		if err != nil {
			return err
		}
		for _, p := range list {
			fx.Events = append(fx.Events, Event{Kind: EventAppPasswordDeleted, MemberID: m.ID, AppPasswordID: p.ID})
			fx.Audit = append(fx.Audit, s.Audit(AuditAppPasswordDeleted, m, by, appPasswordDetail(p)+", with the password change"))
		}
	}
	fx.Messages = append(fx.Messages, s.passwordMessage(m, deleteAppPasswords, by, s.Location(ctx, m.ID)))
	return s.store.SetPasswordHash(ctx, m.ID, hash, deleteAppPasswords, fx)
}

// AppPasswordView is an app password as the Manage list shows it.
type AppPasswordView struct {
	AppPassword
	Active bool // false while the member's setting is off (optional domains)
	// Sent24h is how many messages were submitted with it in the last 24
	// hours: a member who sees hundreds from an app that sends a few knows
	// that someone else has the password.
	Sent24h int
}

// AppPasswords lists the member's app passwords, oldest first.
func (s *Service) AppPasswords(ctx context.Context, m Member) ([]AppPasswordView, error) {
	list, err := s.store.AppPasswords(ctx, m.ID)
	if err != nil {
		return nil, err
	}
	var sent map[string]int
	if len(list) > 0 {
		if sent, err = s.store.SentByAppPassword(ctx, m.ID, s.Now().Add(-24*time.Hour)); err != nil {
			return nil, err
		}
	}
	active := m.AppPasswordsOnly(s.Config.Cutoff)
	out := make([]AppPasswordView, len(list))
	for i, p := range list {
		out[i] = AppPasswordView{AppPassword: p, Active: active, Sent24h: sent[p.ID]}
	}
	return out, nil
}

// CreateAppPassword makes a new app password named name and returns it with
// its plaintext, which is never available again. The member gets a message
// written in the same transaction.
func (s *Service) CreateAppPassword(ctx context.Context, m Member, name string, by Actor) (AppPassword, string, error) {
	name, err := CleanAppName(name)
	if err != nil {
		return AppPassword{}, "", err
	}
	if !m.AppPasswordsOnly(s.Config.Cutoff) {
		return AppPassword{}, "", Errorf(EFORBIDDEN, "Turn on “Use a third-party app password” before creating one.")
	}
	if m.State != StateActive {
		return AppPassword{}, "", Errorf(EFORBIDDEN, "The account is suspended.")
	}
	plain := GenerateAppPassword()
	p := AppPassword{ID: NewID(), MemberID: m.ID, Name: name, Hash: HashAppPassword(s.Config.Key, plain), CreatedAt: s.Now().UTC()}
	err = s.store.CreateAppPassword(ctx, &p, MaxAppPasswords, Effects{
		Events:   []Event{{Kind: EventAppPasswordCreated, MemberID: m.ID, AppPasswordID: p.ID}},
		Messages: []Message{s.createdMessage(m, p, by, s.Location(ctx, m.ID))},
		Audit:    []AuditEntry{s.Audit(AuditAppPasswordCreated, m, by, appPasswordDetail(p))},
	})
	if err != nil {
		return AppPassword{}, "", err
	}
	s.Log.Info("third-party app password created", "member", m.Email, "id", p.ID, "via", by.Via, "ip", by.IP)
	return p, plain, nil
}

// DeleteAppPassword deletes one of the member's app passwords; sessions that
// logged in with it are closed by whoever tails the events.
func (s *Service) DeleteAppPassword(ctx context.Context, m Member, id string, by Actor) error {
	list, err := s.store.AppPasswords(ctx, m.ID)
	if err != nil {
		return err
	}
	var p *AppPassword
	for i := range list {
		if list[i].ID == id {
			p = &list[i]
		}
	}
	if p == nil {
		return Errorf(ENOTFOUND, "No such third-party app password.")
	}
	err = s.store.DeleteAppPassword(ctx, m.ID, id, Effects{
		Events:   []Event{{Kind: EventAppPasswordDeleted, MemberID: m.ID, AppPasswordID: id}},
		Messages: []Message{s.deletedMessage(m, *p, by, s.Location(ctx, m.ID))},
		Audit:    []AuditEntry{s.Audit(AuditAppPasswordDeleted, m, by, appPasswordDetail(*p))},
	})
	if errors.Is(err, ErrNotFound) {
		return Errorf(ENOTFOUND, "No such third-party app password.")
	}
	if err == nil {
		s.Log.Info("third-party app password deleted", "member", m.Email, "id", id, "via", by.Via, "ip", by.IP)
	}
	return err
}

// Credential says what a third-party login used.
type Credential struct {
	AppPasswordID string // "" for the main password
	AppName       string
}

// IsMain reports whether the login used the main password.
func (c Credential) IsMain() bool { return c.AppPasswordID == "" }

// Verify decides whether secret logs email in to third-party apps under the
// member's current policy, and with which credential. Every failure is
// ErrAuthFailed (the reason is only in the wrapped cause, for logs), and every
// failure costs one argon2id hash, so that no reply and no timing tells an
// unknown user from a wrong password or a credential the policy refuses.
// Successful app-password logins cost one HMAC: microseconds.
func (s *Service) Verify(ctx context.Context, email, secret string) (Member, Credential, error) {
	e, err := ParseEmail(email)
	if err != nil || len(secret) == 0 || len(secret) > 1024 {
		s.Hasher.Verify(ctx, "", secret)
		return Member{}, Credential{}, authFailure("unknown-user")
	}
	m, list, err := s.store.Credentials(ctx, e)
	if errors.Is(err, ErrNotFound) {
		s.Hasher.Verify(ctx, "", secret)
		return Member{}, Credential{}, authFailure("unknown-user")
	} else if err != nil {
		return Member{}, Credential{}, unavailableErr(err)
	}
	var cred Credential
	reason := ""
	if m.AppPasswordsOnly(s.Config.Cutoff) {
		var ok bool
		if cred, ok = s.matchAppPassword(list, secret); !ok {
			// Spend what a main-password check costs; a correct main password
			// is refused by policy exactly like a wrong one.
			reason = "bad-password"
			if s.Hasher.Verify(ctx, m.PasswordHash, secret) == nil {
				reason = "policy" // logged only: the client sees the same failure
			}
		}
	} else if err := s.Hasher.Verify(ctx, m.PasswordHash, secret); err != nil {
		if ctx.Err() != nil {
			return Member{}, Credential{}, unavailableErr(ctx.Err())
		}
		reason = "bad-password"
	}
	// The state is checked after the password, so a suspended account does not
	// reveal itself to someone who does not know its password.
	if reason == "" && m.State != StateActive {
		reason = "suspended"
	}
	// A one-time password that an administrator set opens the web sign-in
	// only, where the member replaces it: it never becomes an app's password.
	if reason == "" && cred.IsMain() && m.MustChangePassword {
		reason = "one-time-password"
	}
	if reason != "" {
		return m, Credential{}, authFailure(reason)
	}
	return m, cred, nil
}

// MatchAppPassword is the cheap half of Verify: ok is true only when secret
// is one of the active member's app passwords and app passwords are how the
// member's apps log in. It costs one HMAC and never hashes a main password,
// so the gateway can let a correct app password in before any throttling
// (a 20-character random secret is not guessed, and delaying it would only
// hand an attacker a way to delay the member). Every other case is ok false
// with no reason given: the caller goes on to Verify, which decides it at
// the cost of a hash. A store failure is EUNAVAILABLE.
func (s *Service) MatchAppPassword(ctx context.Context, email, secret string) (Member, Credential, bool, error) {
	e, err := ParseEmail(email)
	if err != nil || len(secret) == 0 || len(secret) > 1024 {
		return Member{}, Credential{}, false, nil
	}
	m, list, err := s.store.Credentials(ctx, e)
	if errors.Is(err, ErrNotFound) {
		return Member{}, Credential{}, false, nil
	} else if err != nil {
		return Member{}, Credential{}, false, unavailableErr(err)
	}
	if m.State != StateActive || !m.AppPasswordsOnly(s.Config.Cutoff) {
		return Member{}, Credential{}, false, nil
	}
	cred, ok := s.matchAppPassword(list, secret)
	if !ok {
		return Member{}, Credential{}, false, nil
	}
	return m, cred, true, nil
}

// matchAppPassword finds secret, as typed (with or without its spaces),
// among list.
func (s *Service) matchAppPassword(list []AppPassword, secret string) (Credential, bool) {
	plain, shaped := NormalizeAppPassword(secret)
	if !shaped {
		return Credential{}, false
	}
	ap, ok := MatchAppPassword(list, HashAppPassword(s.Config.Key, plain))
	if !ok {
		return Credential{}, false
	}
	return Credential{AppPasswordID: ap.ID, AppName: ap.Name}, true
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// SetLanguage records the language ("en", "ja") the member uses the web UI
// in, for the mail Postern writes to them itself (delivery reports).
func (s *Service) SetLanguage(ctx context.Context, memberID int64, lang string) error {
	return s.store.SetLanguage(ctx, memberID, lang)
}
