// Command postern runs the Postern account server and administers its
// domains, members and app passwords. It is the only package that knows every
// concrete type: it wires the stores, the account service and the listeners.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/buildinfo"
	"github.com/postern/postern/internal/queue"
)

func main() {
	privateUmask() // before anything creates a file
	// SIGINT and SIGTERM cancel the context: serve shuts down gracefully, and a
	// command in flight stops at its next database call.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// command is one subcommand. setup registers the command's own flags on fs
// and returns the function that runs it with the positional arguments.
type command struct {
	name     string // "user add"
	args     string // synopsis after the name, for usage
	summary  string
	min, max int // positional arguments
	setup    func(a *app, fs *flag.FlagSet) runFunc
}

type runFunc func(ctx context.Context, a *app, args []string) error

// commands in the order of the usage text. They are set in init because
// their run functions refer back to the table (usage errors).
var commands []*command

// serveCommand and demoCommand log at info by default, the others at warn.
var serveCommand, demoCommand *command

// quickstartCommand writes the configuration file rather than reading it.
var quickstartCommand *command

func init() {
	serveCommand = &command{name: "serve", args: "[--web-addr ADDR] [--imap-addr ADDR] … [--tls-cert FILE --tls-key FILE]",
		summary: "run the server: web UI and API, IMAP, POP3, SMTP submission, CalDAV/CardDAV", setup: serveSetup}
	demoCommand = &command{name: "demo", args: "[serve flags]",
		summary: "serve with demo domains and members; prints their credentials", setup: demoSetup}
	quickstartCommand = &command{name: "quickstart", args: "MAILHOST ADMIN-EMAIL [--data DIR] [--config FILE] [serve flags]",
		summary: "set up a new installation: settings file, domain, admin; prints the DNS records and the systemd unit", min: 2, max: 2, setup: quickstartSetup}
	commands = []*command{
		serveCommand,
		demoCommand,
		quickstartCommand,
		{name: "admin grant", args: "EMAIL (--org | --domain DOMAIN…) [--json]", summary: "make a member an administrator of every domain or of the domains named", min: 1, max: 1, setup: adminGrant},
		{name: "admin revoke", args: "EMAIL [--domain DOMAIN]", summary: "take a member's administrator roles away, all or one domain's", min: 1, max: 1, setup: adminRevoke},
		{name: "admin list", args: "[--json]", summary: "list the administrators and what they administer", setup: adminList},
		{name: "domain add", args: "NAME [--created YYYY-MM-DD]", summary: "add a domain (created now unless --created)", min: 1, max: 1, setup: domainAdd},
		{name: "domain list", args: "[--json]", summary: "list the domains and their policy", setup: domainList},
		{name: "domain set", args: "DOMAIN --quota SIZE|0|default [--json]", summary: "set the default mail storage limit of the domain's members", min: 1, max: 1, setup: domainSet},
		{name: "domain delete", args: "DOMAIN [--with-members] [--json]", summary: "delete a domain with its aliases and DKIM keys; refused while it has members unless --with-members", min: 1, max: 1, setup: domainDelete},
		{name: "domain policy", args: "DOMAIN [--protocols imap,pop3,smtp,caldav,carddav|all] [--allow-cidr CIDR…|any] [--expire-unused-days N] [--force-setting on|off] [--quota SIZE] [--json]", summary: "show or change the domain's security policy for third-party apps", min: 1, max: 1, setup: domainPolicy},
		{name: "domain catchall", args: "DOMAIN [MEMBER | --off] [--json]", summary: "show, set or turn off the member who gets mail to the domain's unknown addresses", min: 1, max: 2, setup: domainCatchall},
		{name: "domain dns", args: "DOMAIN [--mail-host HOST] [--mta-sts-mode MODE] [--json]", summary: "print the DNS records to publish for the domain, and why each", min: 1, max: 1, setup: domainDNS},
		{name: "domain dkim list", args: "DOMAIN [--json]", summary: "list the domain's DKIM keys and the records to keep published", min: 1, max: 1, setup: domainDKIMList},
		{name: "domain dkim rotate", args: "DOMAIN [--json]", summary: "make new DKIM keys the signing ones; the old stay published until retired", min: 1, max: 1, setup: domainDKIMRotate},
		{name: "domain dkim retire", args: "DOMAIN SELECTOR", summary: "retire an inactive DKIM key: erase it; its record may leave DNS", min: 2, max: 2, setup: domainDKIMRetire},
		{name: "user add", args: "EMAIL [--name NAME] [--password-stdin]", summary: "add a member (a strong password is generated and printed unless --password-stdin)", min: 1, max: 1, setup: userAdd},
		{name: "user list", args: "[DOMAIN] [--domain D] [--query Q] [--after EMAIL] [--limit N] [--json]", summary: "list or search members, of one domain or all, a page at a time with --limit", max: 1, setup: userList},
		{name: "user import", args: "FILE.csv|- [--dry-run] [--passwords-out FILE] [--json]", summary: "add members from CSV (email,name,password; no password: a one-time one); --dry-run only checks", min: 1, max: 1, setup: userImport},
		{name: "user rename", args: "OLD NEW [--keep-alias] [--json]", summary: "change a member's address; mail, aliases and app passwords follow, sessions close", min: 2, max: 2, setup: userRename},
		{name: "user reset-password", args: "EMAIL [--json]", summary: "give a member a one-time password, to change at the next web sign-in", min: 1, max: 1, setup: userResetPassword},
		{name: "user delete", args: "EMAIL --yes [--json]", summary: "delete a member with their mail, calendars, contacts and app passwords", min: 1, max: 1, setup: userDelete},
		{name: "user unpause", args: "EMAIL [--json]", summary: "lift the pause that failed logins put on a member's main password", min: 1, max: 1, setup: userUnpause},
		{name: "user sessions", args: "EMAIL [--json]", summary: "list a member's web sessions and the apps connected now, on every server", min: 1, max: 1, setup: userSessions},
		{name: "user end-sessions", args: "EMAIL [--json]", summary: "sign a member out everywhere: web sessions and live third-party sessions", min: 1, max: 1, setup: userEndSessions},
		{name: "user passwd", args: "EMAIL --password-stdin [--delete-app-passwords]", summary: "reset a member's main password", min: 1, max: 1, setup: userPasswd},
		{name: "user set", args: "EMAIL [--use-app-passwords on|off] [--quota SIZE|0|default] [--json]", summary: "change \"Use a third-party app password\" (optional domains only) or the member's mail storage limit", min: 1, max: 1, setup: userSet},
		{name: "user suspend", args: "EMAIL", summary: "suspend a member: every session ends, logins fail", min: 1, max: 1, setup: userState(account.StateSuspended)},
		{name: "user resume", args: "EMAIL", summary: "make a suspended member active again", min: 1, max: 1, setup: userState(account.StateActive)},
		{name: "alias add", args: "ADDRESS MEMBER... [--json]", summary: "create an alias or list delivering to members, or add members to it", min: 2, max: 1 + account.MaxAliasTargets, setup: aliasAdd},
		{name: "alias list", args: "[DOMAIN] [--json]", summary: "list aliases, of one domain or all, with their members", max: 1, setup: aliasList},
		{name: "alias show", args: "ADDRESS [--json]", summary: "show an alias and the members it delivers to", min: 1, max: 1, setup: aliasShow},
		{name: "alias delete", args: "ADDRESS [MEMBER...]", summary: "delete an alias, or only remove the members named from it", min: 1, max: 1 + account.MaxAliasTargets, setup: aliasDelete},
		{name: "queue list", args: "[--json]", summary: "list the mail waiting to be delivered to other domains", setup: queueList},
		{name: "queue show", args: "ID [--json]", summary: "show a queued message and its recipients' attempts", min: 1, max: 1, setup: queueShow},
		{name: "queue retry", args: "ID... | --all", summary: "try queued messages again now", max: 1000, setup: queueAct(queue.Retry, "Will try again now")},
		{name: "queue hold", args: "ID... | --all", summary: "hold queued messages: no attempt until released", max: 1000, setup: queueAct(queue.Hold, "Held")},
		{name: "queue release", args: "ID... | --all", summary: "release held messages and try them now", max: 1000, setup: queueAct(queue.Release, "Released")},
		{name: "queue delete", args: "ID... | --all", summary: "delete queued messages without a report to the sender", max: 1000, setup: queueAct(queue.Delete, "Deleted")},
		{name: "apppass create", args: "EMAIL --name NAME [--json]", summary: "create a third-party app password and print it once; the member is notified", min: 1, max: 1, setup: apppassCreate},
		{name: "apppass list", args: "EMAIL [--json]", summary: "list a member's third-party app passwords", min: 1, max: 1, setup: apppassList},
		{name: "apppass expire", args: "[--at TIME] [--json]", summary: "apply the domains' expiry of unused third-party app passwords now (serve does every hour)", setup: apppassExpire},
		{name: "apppass delete", args: "EMAIL ID | EMAIL --all", summary: "delete a third-party app password, or all; their sessions end, the member is notified", min: 1, max: 2, setup: apppassDelete},
		{name: "audit retention", args: "[DAYS] [--json]", summary: "show or set how many days audit entries are kept", max: 1, setup: auditRetention},
		{name: "audit", args: "[--member EMAIL] [--action A] [--since T] [--until T] [--limit N] [--before CURSOR] [--json|--csv]", summary: "show the audit log: every change, sign-in and login, newest first", setup: auditList},
		{name: "migrate", args: "[--status] [--json]", summary: "apply the database's pending migrations, or list them with --status", setup: migrateCmd},
		{name: "backup", args: "DEST [--pg-dump]", summary: "copy the database, the secret key and the data folder's files to a new folder, while serve runs", min: 1, max: 1, setup: backupCmd},
		{name: "restore", args: "SRC", summary: "check a backup's checksums and schema and restore it into an empty data folder", min: 1, max: 1, setup: restoreCmd},
		{name: "version", args: "[--json]", summary: "print the version of this binary (also: postern --version)", setup: versionCmd},
	}
}

// usageError is a mistake on the command line: exit status 2 and a usage text.
type usageError struct {
	msg string
	cmd *command // nil: the general usage
}

func (e *usageError) Error() string { return e.msg }

func usagef(cmd *command, format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...), cmd: cmd}
}

// run executes one command line and returns the exit status: 0, 1 for a
// failed command, 2 for a usage error.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	defer a.close()
	return exitCode(a, dispatch(ctx, a, args))
}

// exitCode reports err on stderr and returns the exit status for it.
func exitCode(a *app, err error) int {
	if a.logBuf != nil {
		a.logBuf.Flush() // the log's last lines before the error
	}
	stderr := a.stderr
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "postern: %s\n", ue.msg)
		if ue.cmd != nil {
			fmt.Fprintf(stderr, "usage: postern %s %s\n", ue.cmd.name, ue.cmd.args)
			fmt.Fprintf(stderr, "Run 'postern %s --help' for the flags.\n", ue.cmd.name)
		} else {
			printUsage(stderr, false)
		}
		return 2
	default:
		fmt.Fprintf(stderr, "postern: %s\n", humanError(a, err))
		return 1
	}
}

var errHelp = errors.New("help shown")

func dispatch(ctx context.Context, a *app, args []string) error {
	words, rest := splitWords(args, boolFlags())
	if len(words) == 0 {
		if isVersionFlag(rest) {
			_, err := fmt.Fprintln(a.stdout, buildinfo.Read())
			return err
		}
		if hasHelpFlag(rest) {
			printUsage(a.stdout, true)
			return errHelp
		}
		return usagef(nil, "no command given")
	}
	if words[0] == "help" {
		printUsage(a.stdout, true)
		return errHelp
	}
	cmd, n := findCommand(words)
	if cmd == nil {
		if subs := subcommands(words[0]); len(subs) > 0 {
			return usagef(nil, "%s needs one of: %s", words[0], strings.Join(subs, ", "))
		}
		return usagef(nil, "unknown command %q", words[0])
	}
	// The words after the command's name are its positional arguments.
	positional := words[n:]
	if err := a.parseFlags(cmd, rest); err != nil {
		return err
	}
	if len(positional) < cmd.min || len(positional) > cmd.max {
		return usagef(cmd, "%s takes %s", cmd.name, plural(cmd.min, cmd.max))
	}
	return a.runCmd(ctx, a, positional)
}

func findCommand(words []string) (*command, int) {
	for _, c := range commands {
		n := strings.Count(c.name, " ") + 1
		if len(words) >= n && strings.Join(words[:n], " ") == c.name {
			return c, n
		}
	}
	return nil, 0
}

// subcommands lists the second words of the commands in group.
func subcommands(group string) []string {
	var out []string
	for _, c := range commands {
		if g, sub, ok := strings.Cut(c.name, " "); ok && g == group {
			out = append(out, sub)
		}
	}
	return out
}

func plural(lo, hi int) string {
	switch {
	case lo == hi && lo == 0:
		return "no arguments"
	case lo == hi && lo == 1:
		return "one argument"
	case lo == hi:
		return fmt.Sprintf("%d arguments", lo)
	case lo == 0 && hi == 1:
		return "at most one argument"
	case lo == 0:
		return fmt.Sprintf("at most %d arguments", hi)
	}
	return fmt.Sprintf("%d to %d arguments", lo, hi)
}

// printUsage lists the commands; full adds the global flags.
func printUsage(w io.Writer, full bool) {
	fmt.Fprintln(w, "Postern: third-party app passwords for IMAP, POP3, SMTP, CalDAV and CardDAV.")
	fmt.Fprintln(w, "\nUsage: postern COMMAND [ARGS] [FLAGS]")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-18s %s\n", c.name, c.summary)
	}
	if !full {
		fmt.Fprintln(w, "\nRun 'postern help' for the global flags, 'postern COMMAND --help' for a command's.")
		return
	}
	fmt.Fprintln(w, "\nFlags of every command (also from the environment as POSTERN_<NAME>):")
	fs := newFlagSet(&command{name: "help"})
	a := &app{}
	a.registerGlobals(fs)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprintln(w, "\nRun 'postern COMMAND --help' for the flags of a command.")
}

// humanError is the one line a failed command prints: the client-safe message
// of an *account.Error, or a short description; internal causes go to the log.
func humanError(a *app, err error) string {
	var ae *account.Error
	if errors.As(err, &ae) {
		if ae.Code == account.EINTERNAL || ae.Message == "" {
			a.logger().Error("command failed", "err", err)
			return "internal error; see the log above"
		}
		return ae.Message
	}
	var ce *cliError
	if errors.As(err, &ce) {
		return ce.msg
	}
	if errors.Is(err, context.Canceled) {
		return "interrupted"
	}
	// Our own errors (files, database connection) say what failed; they never
	// carry a password because no password ever goes into an error here.
	return err.Error()
}

// cliError is a failure whose message is meant for the operator as is.
type cliError struct{ msg string }

func (e *cliError) Error() string { return e.msg }

func failf(format string, args ...any) error { return &cliError{msg: fmt.Sprintf(format, args...)} }
