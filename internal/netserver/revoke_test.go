package netserver

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// TestRevocable: a read blocked before Revoke returns at once, a deadline
// set after Revoke cannot undo it, and a write still goes through.
func TestRevocable(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	r := NewRevocable(a)
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 1))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	r.Revoke()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("blocked read: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a blocked read went on after Revoke")
	}
	r.SetReadDeadline(time.Now().Add(time.Hour))
	r.SetDeadline(time.Time{})
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after a new deadline: %v", err)
	}
	if !r.Revoked() {
		t.Fatal("not revoked")
	}
	go io.ReadAll(b)
	r.SetWriteDeadline(time.Now().Add(time.Hour))
	if _, err := r.Write([]byte("421 bye\r\n")); err != nil {
		t.Fatalf("the last reply: %v", err)
	}
}
