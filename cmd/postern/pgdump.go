package main

import (
	"errors"
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
// does not know, the schema of a search_path parameter (Postern's tables
// live there, and pg_dump dumps only it with --schema), and the password,
// for the PGPASSWORD of a tool Postern runs itself.
func pgConn(dsn string) (conn, schema, password string, err error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", "", "", errors.New("the --database URL does not parse")
	}
	if u.User != nil {
		password, _ = u.User.Password()
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
		case k == "password":
			password = q.Get(k)
		case libpqParams[k]:
			keep[k] = q[k]
		}
	}
	u.RawQuery = keep.Encode()
	return u.String(), schema, password, nil
}

// pgDumpArgs are pg_dump's arguments to dump the database of dsn to file in
// its custom format (compressed; pg_restore restores it, also in parallel
// and selectively), and the password to give it in PGPASSWORD.
func pgDumpArgs(dsn, file string) (args []string, password string, err error) {
	conn, schema, password, err := pgConn(dsn)
	if err != nil {
		return nil, "", err
	}
	args = []string{"--format=custom", "--file=" + file}
	if schema != "" {
		args = append(args, "--schema="+schema)
	}
	return append(args, "--dbname="+conn), password, nil
}

// pgDumpCommand is the pg_dump command line, without the password, for
// the operator to run.
func pgDumpCommand(dsn, file string) string {
	args, _, err := pgDumpArgs(dsn, file)
	if err != nil {
		return "pg_dump --format=custom --file=" + shellQuote(file) + " --dbname='<the --database URL without its password>'"
	}
	return shellCommand("pg_dump", args)
}

// pgRestoreCommand is the command that restores such a dump into the
// database of dsn, which must be empty. --no-owner: the tables belong to
// whoever restores them, the user Postern connects as.
func pgRestoreCommand(dsn, file string) string {
	conn, _, _, err := pgConn(dsn)
	if err != nil {
		conn = "<the --database URL without its password>"
	}
	return shellCommand("pg_restore", []string{"--no-owner", "--exit-on-error", "--dbname=" + conn, file})
}

// shellCommand joins a command line for a POSIX shell, quoting the value
// of each --flag=value apart so that the flag stays readable.
func shellCommand(name string, args []string) string {
	parts := []string{name}
	for _, a := range args {
		if flag, value, ok := strings.Cut(a, "="); ok && strings.HasPrefix(flag, "--") {
			parts = append(parts, flag+"="+shellQuote(value))
		} else {
			parts = append(parts, shellQuote(a))
		}
	}
	return strings.Join(parts, " ")
}
