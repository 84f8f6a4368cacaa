package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// bodyServer serves, under br, a handler that reads the body, waits for
// after (the handler's own work) and answers "read N" or 400 with the error.
func bodyServer(t *testing.T, br ioRate, after time.Duration) string {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		time.Sleep(after)
		if err := r.Context().Err(); err != nil {
			http.Error(w, "context: "+err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "read %d", len(b))
	})
	srv := httptest.NewServer(br.guard(h))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// trickle sends a request announcing size body bytes, then chunk bytes
// every gap, and returns the response's status line ("" when the server
// closed without one) and how many body bytes were sent by then.
func trickle(t *testing.T, addr string, size, chunk int, gap time.Duration) (status string, sent int64) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	fmt.Fprintf(c, "PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size)
	var n atomic.Int64
	go func() {
		for n.Load() < int64(size) {
			if _, err := c.Write([]byte(strings.Repeat("a", chunk))); err != nil {
				return
			}
			n.Add(int64(chunk))
			time.Sleep(gap)
		}
	}()
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), n.Load()
}

func TestBodyRateCutsATrickle(t *testing.T) {
	addr := bodyServer(t, ioRate{grace: 300 * time.Millisecond, rate: 1 << 10}, 0)
	// A byte every 50 ms would take 10 s for the whole body.
	status, sent := trickle(t, addr, 200, 1, 50*time.Millisecond)
	if sent >= 200 {
		t.Fatalf("the whole trickled body was read (%s)", status)
	}
	if status != "" && !strings.HasPrefix(status, "HTTP/1.1 400") {
		t.Errorf("cut body answered %q", status)
	}
}

func TestBodyRateLetsASteadyBodyThrough(t *testing.T) {
	// 2 KiB/s, twice the minimum, for two seconds; the grace absorbs a
	// client held up by a busy machine.
	addr := bodyServer(t, ioRate{grace: 2 * time.Second, rate: 1 << 10}, 0)
	if status, _ := trickle(t, addr, 4<<10, 256, 125*time.Millisecond); status != "HTTP/1.1 200 OK" {
		t.Fatalf("steady body: %q", status)
	}
}

func TestBodyRateLeavesTheHandlerAlone(t *testing.T) {
	// The handler works on after the body for longer than the body had:
	// the body's deadline must not cancel it.
	addr := bodyServer(t, ioRate{grace: 100 * time.Millisecond, rate: 1 << 10}, 500*time.Millisecond)
	resp, err := http.Post("http://"+addr+"/x", "text/plain", strings.NewReader("small body"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(b) != "read 10" {
		t.Fatalf("%s: %s", resp.Status, b)
	}
}

func TestResponseRateCutsAClientThatDoesNotRead(t *testing.T) {
	writeErr := make(chan error, 1)
	chunk := make([]byte, 64<<10)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for range 1024 { // 64 MiB: more than the socket buffers hold
			if _, err := w.Write(chunk); err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	})
	srv := httptest.NewServer(ioRate{grace: 300 * time.Millisecond, rate: 1 << 20}.guard(h))
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") // and never read
	select {
	case err := <-writeErr:
		if err == nil {
			t.Fatal("64 MiB written to a client that reads nothing")
		}
	case <-time.After(time.Minute):
		t.Fatal("the response to a client that reads nothing is still being written")
	}
}

func TestResponseRateLetsAReaderThrough(t *testing.T) {
	piece := strings.Repeat("x", 4<<10)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/late":
			// Written early, buffered, sent by the server after the handler
			// has worked on for longer than the grace.
			io.WriteString(w, "late")
			time.Sleep(3 * time.Second)
		case "/slow":
			// A response that takes longer than the grace, in pieces that
			// each take far less.
			for range 10 {
				io.WriteString(w, piece)
				time.Sleep(300 * time.Millisecond)
			}
		default:
			for range 1024 {
				io.WriteString(w, piece)
			}
		}
	})
	srv := httptest.NewServer(ioRate{grace: 2 * time.Second, rate: 1 << 20}.guard(h))
	defer srv.Close()
	client := srv.Client()
	for _, tc := range []struct {
		path string
		size int
	}{{"/", 4 << 20}, {"/slow", 40 << 10}} {
		resp, err := client.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || len(b) != tc.size {
			t.Fatalf("%s: %d bytes, %v; want %d", tc.path, len(b), err, tc.size)
		}
	}
	resp, err := client.Post(srv.URL+"/late", "text/plain", nil) // a POST: not retried if cut
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != "late" {
		t.Fatalf("/late: %q, %v", b, err)
	}
}

func TestConnLimitFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--max-connections-per-ip", "-1"},
		{"--max-connections", "many"},
	} {
		full := append([]string{"serve", "--data", t.TempDir(), "--web-addr", "127.0.0.1:0"}, args...)
		code, _, stderr := runIn(t, nil, full...)
		if code != 2 || !strings.Contains(stderr, args[0]+" must be a number of connections") {
			t.Errorf("%v: exit %d, %s", args, code, stderr)
		}
	}
	code, _, stderr := runIn(t, map[string]string{"POSTERN_MAX_CONNECTIONS_PER_IP": "x"}, "serve", "--data", t.TempDir())
	if code != 2 || !strings.Contains(stderr, "--max-connections-per-ip must be") {
		t.Errorf("from the environment: exit %d, %s", code, stderr)
	}
}
