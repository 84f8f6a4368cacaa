package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/passhash"
	"github.com/postern/postern/internal/store/sqlstore"
)

// The benchmark population is deterministic, so that Dovecot's passwd-file,
// Postern's database and the clients agree without passing secrets around:
// member i is u<i>@bench.test, its app password j is derived from (i, j),
// and every member has the same main password. These are test credentials
// of a throw-away database on loopback, never real ones.

const (
	benchDomain  = "bench.test"
	mainPassword = "bench-main-password-for-loopback-only"
	// wrongMain is what the flood sends: a wrong main password.
	wrongMain = "not-the-main-password-of-anyone"
)

func emailOf(i int) string { return fmt.Sprintf("u%06d@%s", i, benchDomain) }

// appPassword returns member i's j-th app password: 20 characters of
// account.Alphabet, a letter first and a digit last (the format's rule).
func appPassword(i, j int) string {
	var in [16]byte
	binary.BigEndian.PutUint64(in[:8], uint64(i))
	binary.BigEndian.PutUint64(in[8:], uint64(j))
	sum := sha256.Sum256(append([]byte("postern-bench/"), in[:]...))
	const letters, digits = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ", "23456789"
	b := make([]byte, account.AppPasswordLen)
	for k := range b {
		b[k] = account.Alphabet[int(sum[k])%len(account.Alphabet)]
	}
	b[0] = letters[int(sum[20])%len(letters)]
	b[len(b)-1] = digits[int(sum[21])%len(digits)]
	return string(b)
}

// users returns the logins of members [from, to) with their first app password.
func users(from, to int) []user {
	out := make([]user, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, user{Email: emailOf(i), Pass: appPassword(i, 0)})
	}
	return out
}

// writeKey creates a 32-byte random HMAC key at path (as postern would).
func writeKey(path string) ([]byte, error) {
	if b, err := os.ReadFile(path); err == nil && len(b) >= 32 {
		return b, nil
	}
	key := make([]byte, 32)
	rand.Read(key)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	return key, os.WriteFile(path, key, 0o600)
}

// freshSchema drops and creates schema in the PostgreSQL database of dsn and
// returns the DSN that uses it.
func freshSchema(ctx context.Context, dsn, schema string) (string, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return "", err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `DROP SCHEMA IF EXISTS `+schema+` CASCADE`); err != nil {
		return "", fmt.Errorf("drop schema %s: %w", schema, err)
	}
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		return "", fmt.Errorf("create schema %s: %w", schema, err)
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "search_path=" + schema, nil
}

func dropSchema(dsn, schema string) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return
	}
	defer db.Close()
	db.Exec(`DROP SCHEMA IF EXISTS ` + schema + ` CASCADE`)
}

// seed creates the domain bench.test (enforced: created now) and members
// [0, n), each holding perMember app passwords, in bulk: multi-row INSERTs of
// 1,000 rows in one transaction, the main password hashed once with
// argon2id and shared, app passwords HMAC'd with key as account.Service
// does. It is benchmark tooling; the product creates members one by one.
//
// Members [n, n+spare) get no app passwords: the revocation figure creates
// and deletes theirs through the product.
func seed(ctx context.Context, dsn string, key []byte, n, perMember, spare int) (time.Duration, error) {
	start := time.Now()
	db, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	hash, err := passhash.New(passhash.Default).Hash(ctx, mainPassword)
	if err != nil {
		return 0, err
	}
	ph := func(k int) string { // placeholders of one row of k columns, engine-specific
		return "(" + strings.TrimSuffix(strings.Repeat("?, ", k), ", ") + ")"
	}
	q := func(s string) string { // ? -> $n on PostgreSQL
		if db.Dialect != sqlstore.Postgres {
			return s
		}
		var b strings.Builder
		c := 0
		for _, r := range s {
			if r == '?' {
				c++
				fmt.Fprintf(&b, "$%d", c)
			} else {
				b.WriteRune(r)
			}
		}
		return b.String()
	}
	now := time.Now().UTC().UnixMicro()
	tx, err := db.SQL.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	var domainID int64
	if err := tx.QueryRowContext(ctx, q(`INSERT INTO domains (name, created_at) VALUES (?, ?) RETURNING id`), benchDomain, now).Scan(&domainID); err != nil {
		return 0, fmt.Errorf("seed domain: %w", err)
	}
	const batch = 1000
	total := n + spare
	for lo := 0; lo < total; lo += batch {
		hi := min(lo+batch, total)
		var sb strings.Builder
		args := make([]any, 0, (hi-lo)*7)
		sb.WriteString(`INSERT INTO members (domain_id, email, name, password_hash, use_app_passwords, state, created_at) VALUES `)
		for i := lo; i < hi; i++ {
			if i > lo {
				sb.WriteString(", ")
			}
			sb.WriteString(ph(7))
			args = append(args, domainID, emailOf(i), fmt.Sprintf("Member %d", i), hash, true, "active", now)
		}
		sb.WriteString(` RETURNING id, email`)
		rows, err := tx.QueryContext(ctx, q(sb.String()), args...)
		if err != nil {
			return 0, fmt.Errorf("seed members: %w", err)
		}
		ids := map[string]int64{}
		for rows.Next() {
			var id int64
			var e string
			if err := rows.Scan(&id, &e); err != nil {
				rows.Close()
				return 0, err
			}
			ids[e] = id
		}
		rows.Close()
		if perMember == 0 || lo >= n {
			continue
		}
		hi = min(hi, n)
		sb.Reset()
		args = args[:0]
		sb.WriteString(`INSERT INTO app_passwords (id, member_id, name, name_key, hash, created_at) VALUES `)
		for i := lo; i < hi; i++ {
			for j := 0; j < perMember; j++ {
				if i > lo || j > 0 {
					sb.WriteString(", ")
				}
				sb.WriteString(ph(6))
				name := fmt.Sprintf("App %d", j)
				args = append(args, fmt.Sprintf("%08x%08x", i, j), ids[emailOf(i)], name, strings.ToLower(name),
					account.HashAppPassword(key, appPassword(i, j)), now)
			}
		}
		if _, err := tx.ExecContext(ctx, q(sb.String()), args...); err != nil {
			return 0, fmt.Errorf("seed app passwords: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	d := time.Since(start)
	if db.Dialect == sqlstore.Postgres {
		// Leave the database as autovacuum would soon have: statistics,
		// the visibility map (index-only scans), and the bulk load's dirty
		// pages written, so that no measurement runs beside that work.
		for _, q := range []string{`VACUUM ANALYZE`, `CHECKPOINT`} {
			if _, err := db.SQL.ExecContext(ctx, q); err != nil {
				return 0, fmt.Errorf("seed: %s: %w", q, err)
			}
		}
	}
	return d, nil
}
