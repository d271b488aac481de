// ctl.go owns `etcdlite ctl` (also reached when the binary is invoked as
// `etcdctl`): the command table, the urfave/cli-style argument parsing of
// etcdctl v2, its global flags and ETCDCTL_* variables, help and usage
// output, and exit codes. The HTTP client is in ctl_client.go, the
// commands in ctl_keys.go, ctl_members.go and ctl_auth.go.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Exit codes of etcdctl v2.
const (
	ctlExitSuccess = iota
	ctlExitBadArgs
	ctlExitBadConnection
	ctlExitBadAuth
	ctlExitServerError
	ctlExitClusterNotHealthy
)

// ctlExitNoHelpTopic is the status of an unknown command name, as the
// command-line library of etcdctl gives it.
const ctlExitNoHelpTopic = 3

// ctlVersion is the etcdctl version ctl reports and imitates.
const ctlVersion = "3.4.23"

// isCtlInvocation reports whether args (os.Args) ask for the client: the
// program is named etcdctl, or its first argument is "ctl". It returns the
// arguments the client parses (without the program name).
func isCtlInvocation(args []string) ([]string, bool) {
	if len(args) > 0 && filepath.Base(args[0]) == "etcdctl" {
		return args[1:], true
	}
	if len(args) > 1 && args[1] == "ctl" {
		return args[2:], true
	}
	return nil, false
}

// ctlMain runs the client with the process's arguments and streams and
// returns its exit status. An interrupt ends a watch with status 0 and
// any other command with 130, the status of a process the signal killed.
func ctlMain(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := runCtl(ctx, args, &ctlIO{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, environ: os.Environ()})
	if code != ctlExitSuccess && ctx.Err() != nil {
		return 130
	}
	return code
}

// ctlIO is what a ctl run talks to: its streams and environment.
type ctlIO struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	environ        []string
}

// getenv returns the value of the environment variable k, or "".
func (o *ctlIO) getenv(k string) string {
	for i := len(o.environ) - 1; i >= 0; i-- {
		if name, v, ok := strings.Cut(o.environ[i], "="); ok && name == k {
			return v
		}
	}
	return ""
}

// ctlFlagKind is the type of a flag's value.
type ctlFlagKind int

const (
	ctlBool ctlFlagKind = iota
	ctlString
	ctlInt
	ctlDuration
	ctlStringSlice
)

// ctlFlag is one flag of a command: its names (the first is the one the
// code asks for), type, default, and the two columns of its help line.
type ctlFlag struct {
	names []string
	kind  ctlFlagKind
	def   string
	left  string // e.g. "--ttl value"
	usage string
}

// ctlCommand is a command or a group of subcommands.
type ctlCommand struct {
	name    string
	aliases []string
	usage   string // the one-line summary
	args    string // the usage line after the command's full name
	desc    string // DESCRIPTION, when there is one
	flags   []ctlFlag
	subs    []*ctlCommand
	run     func(c *ctlContext) int
	helpOpt bool // the OPTIONS section lists --help (command groups)
}

// ctlContext is one parsed command line.
type ctlContext struct {
	ctx     context.Context
	io      *ctlIO
	global  *flag.FlagSet
	local   *flag.FlagSet
	args    []string
	rawArgs []string // the command's arguments as given
}

// Global returns the value of a global flag.
func (c *ctlContext) Global(name string) any {
	return c.global.Lookup(name).Value.(flag.Getter).Get()
}

// GlobalString returns a global string flag.
func (c *ctlContext) GlobalString(name string) string { return c.Global(name).(string) }

// GlobalBool returns a global bool flag.
func (c *ctlContext) GlobalBool(name string) bool { return c.Global(name).(bool) }

// GlobalDuration returns a global duration flag.
func (c *ctlContext) GlobalDuration(name string) time.Duration { return c.Global(name).(time.Duration) }

// String returns a string flag of the command.
func (c *ctlContext) String(name string) string {
	return c.local.Lookup(name).Value.(flag.Getter).Get().(string)
}

// Bool returns a bool flag of the command.
func (c *ctlContext) Bool(name string) bool {
	return c.local.Lookup(name).Value.(flag.Getter).Get().(bool)
}

// Int returns an int flag of the command.
func (c *ctlContext) Int(name string) int {
	return c.local.Lookup(name).Value.(flag.Getter).Get().(int)
}

// StringSlice returns a repeatable flag of the command.
func (c *ctlContext) StringSlice(name string) []string {
	return c.local.Lookup(name).Value.(flag.Getter).Get().([]string)
}

// output is the --output format.
func (c *ctlContext) output() string { return c.GlobalString("output") }

// stdout and stderr are shorthands for the streams.
func (c *ctlContext) stdout() io.Writer { return c.io.stdout }
func (c *ctlContext) stderr() io.Writer { return c.io.stderr }

// totalTimeout is a context bounded by --total-timeout.
func (c *ctlContext) totalTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.ctx, c.GlobalDuration("total-timeout"))
}

// handleError prints err as etcdctl does and returns code.
func (c *ctlContext) handleError(code int, err error) int {
	fmt.Fprintln(c.stderr(), "Error: ", err)
	var cerr *ctlClusterError
	if errors.As(err, &cerr) {
		fmt.Fprintln(c.stderr(), cerr.Detail())
	}
	return code
}

// ctlHelpFlag is the --help flag every command has.
var ctlHelpFlag = ctlFlag{names: []string{"help", "h"}, kind: ctlBool, left: "--help, -h", usage: "show help"}

// ctlGlobalFlags are etcdctl v2's global options.
func ctlGlobalFlags() []ctlFlag {
	return []ctlFlag{
		{names: []string{"debug"}, kind: ctlBool, left: "--debug", usage: "output cURL commands which can be used to reproduce the request"},
		{names: []string{"no-sync"}, kind: ctlBool, left: "--no-sync", usage: "don't synchronize cluster information before sending request"},
		{names: []string{"output", "o"}, kind: ctlString, def: "simple", left: "--output simple, -o simple", usage: "output response in the given format (simple, `extended` or `json`) (default: \"simple\")"},
		{names: []string{"discovery-srv", "D"}, kind: ctlString, left: "--discovery-srv value, -D value", usage: "domain name to query for SRV records describing cluster endpoints"},
		{names: []string{"insecure-discovery"}, kind: ctlBool, left: "--insecure-discovery", usage: "accept insecure SRV records describing cluster endpoints"},
		{names: []string{"peers", "C"}, kind: ctlString, left: "--peers value, -C value", usage: "DEPRECATED - \"--endpoints\" should be used instead"},
		{names: []string{"endpoint"}, kind: ctlString, left: "--endpoint value", usage: "DEPRECATED - \"--endpoints\" should be used instead"},
		{names: []string{"endpoints"}, kind: ctlString, left: "--endpoints value", usage: "a comma-delimited list of machine addresses in the cluster (default: \"http://127.0.0.1:2379,http://127.0.0.1:4001\")"},
		{names: []string{"cert-file"}, kind: ctlString, left: "--cert-file value", usage: "identify HTTPS client using this SSL certificate file"},
		{names: []string{"key-file"}, kind: ctlString, left: "--key-file value", usage: "identify HTTPS client using this SSL key file"},
		{names: []string{"ca-file"}, kind: ctlString, left: "--ca-file value", usage: "verify certificates of HTTPS-enabled servers using this CA bundle"},
		{names: []string{"username", "u"}, kind: ctlString, left: "--username value, -u value", usage: "provide username[:password] and prompt if password is not supplied."},
		{names: []string{"timeout"}, kind: ctlDuration, def: "2s", left: "--timeout value", usage: "connection timeout per request (default: 2s)"},
		{names: []string{"total-timeout"}, kind: ctlDuration, def: "5s", left: "--total-timeout value", usage: "timeout for the command execution (except watch) (default: 5s)"},
		ctlHelpFlag,
		{names: []string{"version", "v"}, kind: ctlBool, left: "--version, -v", usage: "print the version"},
	}
}

// newFlagSet registers flags on a new flag set that prints its parse
// errors on w.
func newFlagSet(name string, flags []ctlFlag, w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {}
	for _, f := range flags {
		switch f.kind {
		case ctlBool:
			p := new(bool)
			for _, n := range f.names {
				fs.BoolVar(p, n, false, f.usage)
			}
		case ctlString:
			p := new(string)
			for _, n := range f.names {
				fs.StringVar(p, n, f.def, f.usage)
			}
		case ctlInt:
			p := new(int)
			for _, n := range f.names {
				fs.IntVar(p, n, 0, f.usage)
			}
		case ctlStringSlice:
			p := &ctlSliceValue{}
			for _, n := range f.names {
				fs.Var(p, n, f.usage)
			}
		case ctlDuration:
			p := new(time.Duration)
			d, _ := time.ParseDuration(f.def)
			for _, n := range f.names {
				fs.DurationVar(p, n, d, f.usage)
			}
		}
	}
	return fs
}

// ctlSliceValue is a flag given any number of times.
type ctlSliceValue struct{ vals []string }

// String implements flag.Value.
func (s *ctlSliceValue) String() string { return strings.Join(s.vals, ",") }

// Set implements flag.Value.
func (s *ctlSliceValue) Set(v string) error { s.vals = append(s.vals, v); return nil }

// Get implements flag.Getter.
func (s *ctlSliceValue) Get() any { return s.vals }

// reorderArgs moves the command's own flags (and the value that may follow
// each) in front of the other arguments, and a "--" with everything after
// it to the end, as etcdctl's command-line library does before parsing.
func reorderArgs(flags []ctlFlag, args []string) []string {
	var reordered, rest []string
	mayBeValue := false
	for i, a := range args {
		switch {
		case mayBeValue && !argIsFlag(flags, a):
			mayBeValue = false
			reordered = append(reordered, a)
		case a == "--":
			rest = append([]string{"--"}, rest...)
			rest = append(rest, args[i+1:]...)
			return append(reordered, rest...)
		case argIsFlag(flags, a):
			reordered = append(reordered, a)
			mayBeValue = !strings.Contains(a, "=")
		default:
			rest = append(rest, a)
		}
	}
	return append(reordered, rest...)
}

// argIsFlag reports whether a names one of flags.
func argIsFlag(flags []ctlFlag, a string) bool {
	if a == "-" || !strings.HasPrefix(a, "-") {
		return false
	}
	if strings.HasPrefix(a, "--") {
		a = a[2:]
	} else {
		a = a[1:]
	}
	a, _, _ = strings.Cut(a, "=")
	for _, f := range flags {
		for _, n := range f.names {
			if n == a {
				return true
			}
		}
	}
	return false
}

// runCtl runs one etcdctl command line (without the program name) and
// returns the exit status.
func runCtl(ctx context.Context, args []string, cio *ctlIO) int {
	app := ctlCommands()
	gflags := ctlGlobalFlags()
	global := newFlagSet("etcdctl", gflags, cio.stderr)
	if err := global.Parse(args); err != nil {
		fmt.Fprintf(cio.stdout, "Incorrect Usage. %v\n\n", err)
		writeAppHelp(cio.stdout, app, gflags)
		return ctlExitBadArgs
	}
	c := &ctlContext{ctx: ctx, io: cio, global: global}
	if c.GlobalBool("help") {
		writeAppHelp(cio.stdout, app, gflags)
		return ctlExitSuccess
	}
	if c.GlobalBool("version") {
		fmt.Fprintf(cio.stdout, "etcdctl version: %s\nAPI version: 2\n", ctlVersion)
		return ctlExitSuccess
	}
	rest := global.Args()
	if len(rest) == 0 {
		writeAppHelp(cio.stdout, app, gflags)
		return ctlExitSuccess
	}
	if rest[0] == "help" || rest[0] == "h" {
		if len(rest) == 1 {
			writeAppHelp(cio.stdout, app, gflags)
			return ctlExitSuccess
		}
		cmd := findCommand(app, rest[1])
		if cmd == nil {
			fmt.Fprintf(cio.stderr, "No help topic for '%s'\n", rest[1])
			return ctlExitNoHelpTopic
		}
		writeCommandHelp(cio.stdout, "etcdctl "+cmd.name, cmd)
		return ctlExitSuccess
	}
	cmd := findCommand(app, rest[0])
	if cmd == nil {
		fmt.Fprintf(cio.stderr, "No help topic for '%s'\n", rest[0])
		return ctlExitNoHelpTopic
	}
	return runCommand(c, "etcdctl "+cmd.name, cmd, rest[1:])
}

// runCommand parses a command's flags and runs it, or its subcommand.
func runCommand(c *ctlContext, full string, cmd *ctlCommand, args []string) int {
	flags := append(append([]ctlFlag(nil), cmd.flags...), ctlHelpFlag)
	if cmd.subs != nil {
		// a group: only --help before the subcommand's name
		fs := newFlagSet(full, flags, c.stderr())
		if err := fs.Parse(args); err != nil {
			fmt.Fprintf(c.stdout(), "Incorrect Usage. %v\n\n", err)
			writeCommandHelp(c.stdout(), full, cmd)
			return ctlExitBadArgs
		}
		rest := fs.Args()
		if fs.Lookup("help").Value.String() == "true" || len(rest) == 0 {
			writeCommandHelp(c.stdout(), full, cmd)
			return ctlExitSuccess
		}
		if rest[0] == "help" || rest[0] == "h" {
			if len(rest) == 1 {
				writeCommandHelp(c.stdout(), full, cmd)
				return ctlExitSuccess
			}
			sub := findCommand(cmd.subs, rest[1])
			if sub == nil {
				fmt.Fprintf(c.stderr(), "No help topic for '%s'\n", rest[1])
				return ctlExitNoHelpTopic
			}
			writeCommandHelp(c.stdout(), full+" "+sub.name, sub)
			return ctlExitSuccess
		}
		sub := findCommand(cmd.subs, rest[0])
		if sub == nil {
			fmt.Fprintf(c.stderr(), "No help topic for '%s'\n", rest[0])
			return ctlExitNoHelpTopic
		}
		return runCommand(c, full+" "+sub.name, sub, rest[1:])
	}
	fs := newFlagSet(full, flags, c.stderr())
	if err := fs.Parse(reorderArgs(flags, args)); err != nil {
		fmt.Fprintf(c.stdout(), "Incorrect Usage: %v\n\n", err)
		writeCommandHelp(c.stdout(), full, cmd)
		return ctlExitBadArgs
	}
	if fs.Lookup("help").Value.String() == "true" {
		writeCommandHelp(c.stdout(), full, cmd)
		return ctlExitSuccess
	}
	c.local, c.args, c.rawArgs = fs, fs.Args(), args
	return cmd.run(c)
}

// findCommand returns the command called name, or nil.
func findCommand(cmds []*ctlCommand, name string) *ctlCommand {
	for _, c := range cmds {
		if c.name == name {
			return c
		}
		for _, a := range c.aliases {
			if a == name {
				return c
			}
		}
	}
	return nil
}

// writeColumns writes two-column help lines, the second column aligned.
func writeColumns(w io.Writer, rows [][2]string) {
	width := 0
	for _, r := range rows {
		width = max(width, len(r[0]))
	}
	for _, r := range rows {
		fmt.Fprintf(w, "   %-*s  %s\n", width, r[0], r[1])
	}
}

// writeAppHelp writes etcdctl's top-level help.
func writeAppHelp(w io.Writer, cmds []*ctlCommand, gflags []ctlFlag) {
	fmt.Fprintf(w, "NAME:\n   etcdctl - A simple command line client for etcd.\n\n"+
		"USAGE:\n   etcdctl [global options] command [command options] [arguments...]\n\n"+
		"VERSION:\n   %s\n\nCOMMANDS:\n", ctlVersion)
	var rows [][2]string
	for _, c := range cmds {
		rows = append(rows, [2]string{c.name, c.usage})
	}
	rows = append(rows, [2]string{"help, h", "Shows a list of commands or help for one command"})
	writeColumns(w, rows)
	fmt.Fprint(w, "\nGLOBAL OPTIONS:\n")
	rows = rows[:0]
	for _, f := range gflags {
		rows = append(rows, [2]string{f.left, f.usage})
	}
	writeColumns(w, rows)
}

// writeCommandHelp writes the help of one command or command group.
func writeCommandHelp(w io.Writer, full string, cmd *ctlCommand) {
	fmt.Fprintf(w, "NAME:\n   %s - %s\n\nUSAGE:\n   %s %s\n", full, cmd.usage, full, cmd.args)
	if cmd.subs != nil {
		fmt.Fprint(w, "\nCOMMANDS:\n")
		var rows [][2]string
		for _, s := range cmd.subs {
			rows = append(rows, [2]string{s.name, s.usage})
		}
		writeColumns(w, rows)
	}
	if cmd.desc != "" {
		fmt.Fprintf(w, "\nDESCRIPTION:\n%s\n", cmd.desc)
	}
	flags := cmd.flags
	if cmd.helpOpt {
		flags = append(append([]ctlFlag(nil), flags...), ctlHelpFlag)
	}
	if len(flags) > 0 {
		fmt.Fprint(w, "\nOPTIONS:\n")
		var rows [][2]string
		for _, f := range flags {
			rows = append(rows, [2]string{f.left, f.usage})
		}
		writeColumns(w, rows)
		fmt.Fprint(w, "   \n")
	}
}

// ctlCommands is the command table, in etcdctl's order.
func ctlCommands() []*ctlCommand {
	ttl := ctlFlag{names: []string{"ttl"}, kind: ctlInt, left: "--ttl value", usage: "key time-to-live in seconds (default: 0)"}
	return []*ctlCommand{
		{name: "backup", usage: "backup an etcd directory", args: "[command options]  ", run: ctlBackup,
			flags: []ctlFlag{
				{names: []string{"data-dir"}, kind: ctlString, left: "--data-dir value", usage: "Path to the etcd data dir"},
				{names: []string{"wal-dir"}, kind: ctlString, left: "--wal-dir value", usage: "Path to the etcd wal dir"},
				{names: []string{"backup-dir"}, kind: ctlString, left: "--backup-dir value", usage: "Path to the backup dir"},
				{names: []string{"backup-wal-dir"}, kind: ctlString, left: "--backup-wal-dir value", usage: "Path to the backup wal dir"},
				{names: []string{"with-v3"}, kind: ctlBool, left: "--with-v3", usage: "Backup v3 backend data"},
			}},
		{name: "cluster-health", usage: "check the health of the etcd cluster", args: "[command options]  ", run: ctlClusterHealth,
			flags: []ctlFlag{{names: []string{"forever", "f"}, kind: ctlBool, left: "--forever, -f", usage: "forever check the health every 10 second until CTRL+C"}}},
		{name: "mk", usage: "make a new key with a given value", args: "[command options] <key> <value>", run: ctlMk,
			flags: []ctlFlag{{names: []string{"in-order"}, kind: ctlBool, left: "--in-order", usage: "create in-order key under directory <key>"}, ttl}},
		{name: "mkdir", usage: "make a new directory", args: "[command options] <key>", run: ctlMkdir, flags: []ctlFlag{ttl}},
		{name: "rm", usage: "remove a key or a directory", args: "[command options] <key>", run: ctlRm,
			flags: []ctlFlag{
				{names: []string{"dir"}, kind: ctlBool, left: "--dir", usage: "removes the key if it is an empty directory or a key-value pair"},
				{names: []string{"recursive", "r"}, kind: ctlBool, left: "--recursive, -r", usage: "removes the key and all child keys(if it is a directory)"},
				{names: []string{"with-value"}, kind: ctlString, left: "--with-value value", usage: "previous value"},
				{names: []string{"with-index"}, kind: ctlInt, left: "--with-index value", usage: "previous index (default: 0)"},
			}},
		{name: "rmdir", usage: "removes the key if it is an empty directory or a key-value pair", args: "<key>", run: ctlRmdir},
		{name: "get", usage: "retrieve the value of a key", args: "[command options] <key>", run: ctlGet,
			flags: []ctlFlag{
				{names: []string{"sort"}, kind: ctlBool, left: "--sort", usage: "returns result in sorted order"},
				{names: []string{"quorum", "q"}, kind: ctlBool, left: "--quorum, -q", usage: "require quorum for get request"},
			}},
		{name: "ls", usage: "retrieve a directory", args: "[command options] [key]", run: ctlLs,
			flags: []ctlFlag{
				{names: []string{"sort"}, kind: ctlBool, left: "--sort", usage: "returns result in sorted order"},
				{names: []string{"recursive", "r"}, kind: ctlBool, left: "--recursive, -r", usage: "returns all key names recursively for the given path"},
				{names: []string{"p"}, kind: ctlBool, left: "-p", usage: "append slash (/) to directories"},
				{names: []string{"quorum", "q"}, kind: ctlBool, left: "--quorum, -q", usage: "require quorum for get request"},
			}},
		{name: "set", usage: "set the value of a key", args: "[command options] <key> <value>", run: ctlSet,
			desc: "   Set sets the value of a key.\n\n   When <value> begins with '-', <value> is interpreted as a flag.\n   Insert '--' for workaround:\n\n   $ set -- <key> <value>",
			flags: []ctlFlag{ttl,
				{names: []string{"swap-with-value"}, kind: ctlString, left: "--swap-with-value value", usage: "previous value"},
				{names: []string{"swap-with-index"}, kind: ctlInt, left: "--swap-with-index value", usage: "previous index (default: 0)"},
			}},
		{name: "setdir", usage: "create a new directory or update an existing directory TTL", args: "[command options] <key>", run: ctlSetdir, flags: []ctlFlag{ttl}},
		{name: "update", usage: "update an existing key with a given value", args: "[command options] <key> <value>", run: ctlUpdate, flags: []ctlFlag{ttl}},
		{name: "updatedir", usage: "update an existing directory", args: "[command options] <key> <value>", run: ctlUpdatedir, flags: []ctlFlag{ttl}},
		{name: "watch", usage: "watch a key for changes", args: "[command options] <key>", run: ctlWatch,
			flags: []ctlFlag{
				{names: []string{"forever", "f"}, kind: ctlBool, left: "--forever, -f", usage: "forever watch a key until CTRL+C"},
				{names: []string{"after-index"}, kind: ctlInt, left: "--after-index value", usage: "watch after the given index (default: 0)"},
				{names: []string{"recursive", "r"}, kind: ctlBool, left: "--recursive, -r", usage: "returns all values for key and child keys"},
			}},
		{name: "exec-watch", usage: "watch a key for changes and exec an executable", args: "[command options] <key> <command> [args...]", run: ctlExecWatch,
			flags: []ctlFlag{
				{names: []string{"after-index"}, kind: ctlInt, left: "--after-index value", usage: "watch after the given index (default: 0)"},
				{names: []string{"recursive", "r"}, kind: ctlBool, left: "--recursive, -r", usage: "watch all values for key and child keys"},
			}},
		ctlMemberCommand(),
		ctlUserCommand(),
		ctlRoleCommand(),
		ctlAuthCommand(),
	}
}

// ctlBackup hands `backup` and its arguments to the server's backup.
func ctlBackup(c *ctlContext) int {
	return runBackup(c.rawArgs, os.Stdout, os.Stderr)
}
