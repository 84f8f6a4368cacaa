package main

import (
	"net/url"
	"sort"
	"strings"
)

// libpqParams are the URL parameters libpq (pg_dump, pg_restore, psql)
// accepts; pgx sends any other one as a run-time setting, which libpq
// refuses ("invalid URI query parameter"). The secret ones are left out.
var libpqParams = map[string]bool{
	"host": true, "hostaddr": true, "port": true, "dbname": true, "user": true, "passfile": true,
	"channel_binding": true, "connect_timeout": true, "client_encoding": true, "options": true,
	"application_name": true, "fallback_application_name": true, "keepalives": true,
	"keepalives_idle": true, "keepalives_interval": true, "keepalives_count": true,
	"tcp_user_timeout": true, "gssencmode": true, "sslmode": true, "sslnegotiation": true,
	"sslcompression": true, "sslcert": true, "sslkey": true, "sslrootcert": true, "sslcrl": true,
	"sslcrldir": true, "sslsni": true, "requirepeer": true, "ssl_min_protocol_version": true,
	"ssl_max_protocol_version": true, "krbsrvname": true, "gsslib": true, "gssdelegation": true,
	"service": true, "target_session_attrs": true, "load_balance_hosts": true,
}

// pgConn splits Postern's --database URL into what the PostgreSQL tools
// take: the URL without its password and without the parameters libpq
// does not know, and the schema of a search_path parameter (Postern's
// tables live there, and pg_dump dumps only it with --schema).
func pgConn(dsn string) (conn, schema string) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "'<the --database URL without its password>'", ""
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	q := u.Query()
	keep := url.Values{}
	names := make([]string, 0, len(q))
	for k := range q {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		switch {
		case k == "search_path":
			schema = strings.TrimSpace(strings.Split(q.Get(k), ",")[0])
		case libpqParams[k]:
			keep[k] = q[k]
		}
	}
	u.RawQuery = keep.Encode()
	return shellQuote(u.String()), schema
}

// pgDumpCommand is the command that dumps the database of dsn to file, in
// pg_dump's custom format (compressed; pg_restore restores it, also in
// parallel and selectively).
func pgDumpCommand(dsn, file string) string {
	conn, schema := pgConn(dsn)
	cmd := "pg_dump --format=custom --file=" + shellQuote(file)
	if schema != "" {
		cmd += " --schema=" + shellQuote(schema)
	}
	return cmd + " --dbname=" + conn
}

// pgRestoreCommand is the command that restores such a dump into the
// database of dsn, which must be empty. --no-owner: the tables belong to
// whoever restores them, the user Postern connects as.
func pgRestoreCommand(dsn, file string) string {
	conn, _ := pgConn(dsn)
	return "pg_restore --no-owner --exit-on-error --dbname=" + conn + " " + shellQuote(file)
}

// shellQuote quotes s for a POSIX shell when it needs quoting.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@=,+", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
