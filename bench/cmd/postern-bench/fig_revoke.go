package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/passhash"
	"github.com/postern/postern/internal/store/sqlstore"
)

// figRevocation: a member deletes an app password through the JSON API
// (DELETE /api/v1/me/app-passwords/{id}, as the web UI does) while 100 IMAP
// sessions that logged in with it sit in IDLE; the latency of each session is
// from just before the DELETE is sent to the moment its connection ends.
// Dovecot has no app passwords and so no such figure.
func (b *bench) figRevocation(ctx context.Context) error {
	if b.postern == nil {
		return nil
	}
	db, err := sqlstore.Open(ctx, filepath.Join(b.pdata, "postern.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	svc := account.NewService(db, passhash.New(passhash.Default), account.Config{Key: b.key})
	email := emailOf(b.cfg.members) // the first member without seeded app passwords
	m, err := svc.Member(ctx, email)
	if err != nil {
		return err
	}
	web := "http://" + b.postern.addr["web"]
	cookie, err := apiSignin(web, email)
	if err != nil {
		return err
	}
	rounds := max(b.cfg.rounds, 3)
	if b.cfg.quick {
		rounds = 1
	}
	for r := 0; r < rounds; r++ {
		ap, plain, err := svc.CreateAppPassword(ctx, m, fmt.Sprintf("Revocation %d", r), account.Actor{Via: "cli"})
		if err != nil {
			return err
		}
		s, closed, err := openIdleTracked(b.postern.addr["imap"], email, plain, b.cfg.revSess, b.nextIPs(b.cfg.revSess))
		if err != nil {
			return err
		}
		time.Sleep(300 * time.Millisecond)
		t0 := time.Now()
		req, _ := http.NewRequest(http.MethodDelete, web+"/api/v1/me/app-passwords/"+ap.ID, nil)
		req.Header.Set("Cookie", cookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			s.close()
			return err
		}
		resp.Body.Close()
		replied := time.Since(t0)
		if resp.StatusCode != http.StatusNoContent {
			s.close()
			return fmt.Errorf("DELETE app password: %s", resp.Status)
		}
		var lat []time.Duration
		deadline := time.After(10 * time.Second)
		for _, ch := range closed {
			select {
			case t := <-ch:
				lat = append(lat, t.Sub(t0))
			case <-deadline:
			}
		}
		s.close()
		if len(lat) < len(closed) {
			b.res.note("revocation", fmt.Sprintf("round %d: %d of %d sessions were still open after 10 s.", r+1, len(closed)-len(lat), len(closed)))
		}
		b.res.add("revocation", fmt.Sprintf("%d IDLE sessions", len(closed)), "p50 ms", "postern", percentile(lat, 0.5))
		b.res.add("revocation", fmt.Sprintf("%d IDLE sessions", len(closed)), "p99 ms", "postern", percentile(lat, 0.99))
		b.res.add("revocation", fmt.Sprintf("%d IDLE sessions", len(closed)), "DELETE reply ms", "postern", float64(replied)/float64(time.Millisecond))
	}
	return nil
}

// openIdleTracked opens n IDLE sessions of one login and returns the channels
// that receive the time each one ended.
func openIdleTracked(addr, email, pass string, n, first int) (*idleSet, []<-chan time.Time, error) {
	s := &idleSet{}
	var closed []<-chan time.Time
	for k := 0; k < n; k++ {
		c, ch, err := idle(addr, srcIP(first+k), email, pass)
		if err != nil {
			s.close()
			return nil, nil, fmt.Errorf("idle session %d: %w", k, err)
		}
		s.conns = append(s.conns, c)
		closed = append(closed, ch)
	}
	return s, closed, nil
}

// apiSignin signs in to the JSON API with the main password and returns the
// Cookie header to send. The session cookies are Secure (__Host-), which
// net/http's cookie jar would withhold over loopback HTTP, so they are
// carried by hand.
func apiSignin(web, email string) (string, error) {
	body, _ := json.Marshal(map[string]string{"email": email, "password": mainPassword})
	resp, err := http.Post(web+"/api/v1/session", "application/json", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("sign in: %s", resp.Status)
	}
	var parts []string
	for _, c := range resp.Cookies() {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; "), nil
}
