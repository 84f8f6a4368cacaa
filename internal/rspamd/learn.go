package rspamd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// ErrNoController is returned by Learn when Config.ControllerURL is empty.
var ErrNoController = errors.New("rspamd: no controller URL, learning is off")

// Learn teaches rspamd's Bayes classifier that body is spam (/learnspam)
// or ham (/learnham), on the controller. A message rspamd has learnt the
// same way already counts as learnt (rspamd answers 208): moving a message
// into Junk twice is not an error.
func (c *Client) Learn(ctx context.Context, spam bool, body []byte) error {
	if c.cfg.ControllerURL == "" {
		return ErrNoController
	}
	if len(body) > c.cfg.MaxSize {
		return ErrTooLarge
	}
	path := "/learnham"
	if spam {
		path = "/learnspam"
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.cfg.ControllerURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("rspamd: %w", err)
	}
	setIf(req.Header, "Password", c.cfg.Password)
	var r reply
	err = c.do(req, &r)
	var se *StatusError
	if errors.As(err, &se) && se.Code == http.StatusAlreadyReported {
		return nil
	}
	return err
}
