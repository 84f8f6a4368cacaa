package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// logBuffer is the log output of serve and demo: lines collect in memory and
// are written out every logFlushEvery, when 64 KiB have gathered, and at once
// after a warning or an error (flushHandler), so that a login, which logs a
// line, costs no write system call of its own: a fifth of the writes of an
// IMAP login (docs/benchmarks.md). What a crash can lose is the last tenth of
// a second of information lines; warnings and errors are never held.
type logBuffer struct {
	mu  sync.Mutex
	w   io.Writer
	buf bytes.Buffer
}

const (
	logFlushEvery = 100 * time.Millisecond
	logBufferMax  = 64 << 10
)

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len()+len(p) > logBufferMax {
		b.flushLocked()
	}
	return b.buf.Write(p)
}

// Flush writes out what is buffered.
func (b *logBuffer) Flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
}

func (b *logBuffer) flushLocked() {
	if b.buf.Len() > 0 {
		b.w.Write(b.buf.Bytes())
		b.buf.Reset()
	}
}

// run flushes every logFlushEvery until ctx ends, then once more.
func (b *logBuffer) run(ctx context.Context) {
	t := time.NewTicker(logFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			b.Flush()
		case <-ctx.Done():
			b.Flush()
			return
		}
	}
}

// flushHandler flushes its logBuffer after every record of level warn or
// above.
type flushHandler struct {
	slog.Handler
	buf *logBuffer
}

func (h flushHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		h.buf.Flush()
	}
	return err
}

func (h flushHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushHandler{h.Handler.WithAttrs(attrs), h.buf}
}

func (h flushHandler) WithGroup(name string) slog.Handler {
	return flushHandler{h.Handler.WithGroup(name), h.buf}
}
