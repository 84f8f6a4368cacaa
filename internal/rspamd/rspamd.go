// Package rspamd asks an rspamd spam filter about messages over its HTTP
// protocol (https://rspamd.com/doc/developers/protocol.html) and turns the
// answer into what a mail server does with the message: refuse it, ask the
// sender to try again, deliver it to Junk or to INBOX, and which header
// fields to add. It also teaches rspamd's Bayes classifier (/learnspam,
// /learnham on the controller).
//
// It knows nothing of SMTP servers: the caller hands it the envelope and the
// message, and reads back a Decision.
package rspamd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Defaults of Config.
const (
	// DefaultTimeout bounds one request. rspamd's own task_timeout is 8 s;
	// the rest is for a loaded machine and a large message on the wire.
	DefaultTimeout = 20 * time.Second
	// DefaultMaxSize is rspamd's default max_message (50 MiB): a larger
	// message would be refused by rspamd itself, so it is not sent.
	DefaultMaxSize = 50 << 20
	// maxReply bounds the JSON read back. A reply lists the symbols with
	// their options (URLs, addresses), a few KiB usually.
	maxReply = 4 << 20
)

// OnError says what happens to a message when rspamd cannot be asked.
type OnError int

const (
	// OnErrorTempFail answers 451 4.7.1: the sender keeps the message and
	// tries again later (Postfix's milter_default_action=tempfail).
	OnErrorTempFail OnError = iota
	// OnErrorAccept delivers the message unchecked, to INBOX, with
	// "X-Spam-Status: Unknown (filter unavailable)".
	OnErrorAccept
)

// Config is what a Client needs.
type Config struct {
	// URL is the normal worker's address (--rspamd-url), e.g.
	// http://127.0.0.1:11333; /checkv2 is appended.
	URL string
	// ControllerURL is the controller's address, e.g. http://127.0.0.1:11334,
	// for Learn; empty turns learning off.
	ControllerURL string
	// Password is the controller's password, sent with every request as the
	// Password header (rspamd asks for it only from addresses outside its
	// secure_ip).
	Password string
	// SettingsID selects an rspamd settings profile (Settings-ID header).
	SettingsID string
	// Timeout bounds each request; DefaultTimeout when zero.
	Timeout time.Duration
	// MaxSize: larger messages are not sent to rspamd (Decision says "not
	// checked"); DefaultMaxSize when zero.
	MaxSize int
	// OnError decides for messages rspamd could not check.
	OnError OnError
	// HTTP is the client used; http.DefaultClient when nil.
	HTTP *http.Client
	Log  *slog.Logger
}

// Client talks to one rspamd.
type Client struct {
	cfg   Config
	check string
	log   *slog.Logger
}

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	if cfg.URL == "" {
		return nil, errors.New("rspamd: no URL")
	}
	if !strings.HasPrefix(cfg.URL, "http://") && !strings.HasPrefix(cfg.URL, "https://") {
		return nil, fmt.Errorf("rspamd: URL %q: want http://HOST:PORT", cfg.URL)
	}
	if cfg.ControllerURL != "" && !strings.HasPrefix(cfg.ControllerURL, "http://") && !strings.HasPrefix(cfg.ControllerURL, "https://") {
		return nil, fmt.Errorf("rspamd: controller URL %q: want http://HOST:PORT", cfg.ControllerURL)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = DefaultMaxSize
	}
	if cfg.HTTP == nil {
		cfg.HTTP = http.DefaultClient
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Client{
		cfg:   cfg,
		check: strings.TrimSuffix(cfg.URL, "/") + "/checkv2",
		log:   cfg.Log.With("component", "rspamd"),
	}, nil
}

// Message is what rspamd is told about a message: the SMTP envelope and the
// connection it came on, and the message itself.
type Message struct {
	IP   netip.Addr // the client's address
	Helo string
	// From is the envelope sender (MAIL FROM); empty for the null sender.
	From  string
	Rcpts []string
	// Hostname is the client's verified reverse DNS name, if any: rspamd
	// looks it up itself when it is missing.
	Hostname string
	QueueID  string
	// User is the authenticated user, if any (none on an MX).
	User string
	Body []byte
}

// Verdict is rspamd's answer.
type Verdict struct {
	// Action is rspamd's action: "reject", "soft reject", "greylist",
	// "rewrite subject", "add header" or "no action".
	Action   string
	Score    float64
	Required float64
	// Symbols are the names of the symbols that matched, sorted.
	Symbols []string
	// Subject is the rewritten subject for "rewrite subject".
	Subject string
	// Message is rspamd's smtp_message, if any (e.g. "Gtube pattern").
	Message string

	// From rspamd's milter block: header fields to add and to remove.
	addHeaders    []field
	removeHeaders []string
}

type field struct{ name, value string }

// reply is /checkv2's JSON, the parts used here.
type reply struct {
	Action        string                     `json:"action"`
	Score         float64                    `json:"score"`
	RequiredScore float64                    `json:"required_score"`
	Subject       string                     `json:"subject"`
	Symbols       map[string]json.RawMessage `json:"symbols"`
	Messages      struct {
		SMTP string `json:"smtp_message"`
	} `json:"messages"`
	Milter struct {
		AddHeaders    map[string]json.RawMessage `json:"add_headers"`
		RemoveHeaders map[string]json.RawMessage `json:"remove_headers"`
	} `json:"milter"`
	Error string `json:"error"`
}

// ErrTooLarge is returned by Check for a message over Config.MaxSize.
var ErrTooLarge = errors.New("rspamd: message larger than the size limit, not checked")

// Check asks rspamd about m.
func (c *Client) Check(ctx context.Context, m Message) (Verdict, error) {
	if len(m.Body) > c.cfg.MaxSize {
		return Verdict{}, ErrTooLarge
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.check, bytes.NewReader(m.Body))
	if err != nil {
		return Verdict{}, fmt.Errorf("rspamd: %w", err)
	}
	h := req.Header
	if m.IP.IsValid() {
		h.Set("IP", m.IP.Unmap().String())
	}
	setIf(h, "Helo", m.Helo)
	setIf(h, "From", m.From)
	for _, r := range m.Rcpts {
		if clean(r) != "" {
			h.Add("Rcpt", clean(r))
		}
	}
	setIf(h, "Hostname", m.Hostname)
	setIf(h, "Queue-Id", m.QueueID)
	setIf(h, "User", m.User)
	setIf(h, "Settings-ID", c.cfg.SettingsID)
	setIf(h, "Password", c.cfg.Password)
	var r reply
	if err := c.do(req, &r); err != nil {
		return Verdict{}, err
	}
	if r.Action == "" {
		return Verdict{}, errors.New("rspamd: reply without an action")
	}
	v := Verdict{
		Action:   r.Action,
		Score:    r.Score,
		Required: r.RequiredScore,
		Subject:  r.Subject,
		Message:  r.Messages.SMTP,
	}
	for name := range r.Symbols {
		v.Symbols = append(v.Symbols, name)
	}
	slices.Sort(v.Symbols)
	for name, raw := range r.Milter.AddHeaders {
		for _, val := range headerValues(raw) {
			v.addHeaders = append(v.addHeaders, field{name, val})
		}
	}
	slices.SortStableFunc(v.addHeaders, func(a, b field) int { return strings.Compare(a.name, b.name) })
	for name := range r.Milter.RemoveHeaders {
		v.removeHeaders = append(v.removeHeaders, name)
	}
	slices.Sort(v.removeHeaders)
	return v, nil
}

// headerValues reads one add_headers entry: a string, an object with a
// "value", or a list of either.
func headerValues(raw json.RawMessage) []string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []string{s}
	}
	var o struct {
		Value *string `json:"value"`
	}
	if json.Unmarshal(raw, &o) == nil && o.Value != nil {
		return []string{*o.Value}
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) == nil {
		var out []string
		for _, e := range list {
			out = append(out, headerValues(e)...)
		}
		return out
	}
	return nil
}

// do sends req and decodes the JSON reply into out. Errors name the status
// and rspamd's error text, never the message.
func (c *Client) do(req *http.Request, out *reply) error {
	resp, err := c.cfg.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("rspamd: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReply+1))
	if err != nil {
		return fmt.Errorf("rspamd: reading the reply: %w", err)
	}
	if len(body) > maxReply {
		return fmt.Errorf("rspamd: reply larger than %d bytes", maxReply)
	}
	if err := json.Unmarshal(body, out); err != nil {
		if resp.StatusCode != http.StatusOK {
			return &StatusError{Code: resp.StatusCode}
		}
		return fmt.Errorf("rspamd: bad reply: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return &StatusError{Code: resp.StatusCode, Text: printable(out.Error, 200)}
	}
	return nil
}

// StatusError is an HTTP status other than 200 from rspamd.
type StatusError struct {
	Code int
	Text string // rspamd's "error", if any
}

func (e *StatusError) Error() string {
	if e.Text == "" {
		return fmt.Sprintf("rspamd: HTTP status %d", e.Code)
	}
	return fmt.Sprintf("rspamd: HTTP status %d: %s", e.Code, e.Text)
}

func setIf(h http.Header, k, v string) {
	if v = clean(v); v != "" {
		h.Set(k, v)
	}
}

// clean drops what cannot be in an HTTP header value; envelope values come
// from SMTP, which has already refused control characters, so this only
// guards the request's framing.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// printable keeps printable ASCII of s, at most n bytes, for logs and replies.
func printable(s string, n int) string {
	out := strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return -1
		}
		return r
	}, s)
	if len(out) > n {
		out = out[:n]
	}
	return out
}
