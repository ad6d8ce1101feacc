package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/nixflow/nixflow/actions"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// app is what every subcommand gets: its streams and the logger. Nothing
// below main reads globals.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	environ        []string
	logLevel       string
	showTrace      bool
	// logLevelSet reports that --log-level was given: a workflow's
	// logging.level does not override it.
	logLevelSet bool
	log         hclog.Logger
	// logMasker is the run's masker once there is one: nixflow's own
	// diagnostics quote what executors, hooks and commands said, which
	// may hold a secret.
	logMasker atomic.Pointer[actions.Masker]
}

// maskingLogger masks the message and the values of every entry before
// hclog formats them: hclog escapes a value's quotes and control
// characters, and a secret holding one would no longer match once
// written.
type maskingLogger struct {
	hclog.Logger
	masker *atomic.Pointer[actions.Masker]
}

func (l maskingLogger) mask(msg string, args []any) (string, []any) {
	m := l.masker.Load()
	if m == nil {
		return msg, args
	}
	out := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case string:
			a = m.Mask(v)
		case error:
			a = errors.New(m.Mask(v.Error()))
		case fmt.Stringer:
			a = m.Mask(v.String())
		case nil:
		default:
			// A list, a number: as text only where it holds a secret.
			if t := fmt.Sprint(v); m.Mask(t) != t {
				a = m.Mask(t)
			}
		}
		out[i] = a
	}
	return m.Mask(msg), out
}

func (l maskingLogger) Log(level hclog.Level, msg string, args ...any) {
	msg, args = l.mask(msg, args)
	l.Logger.Log(level, msg, args...)
}
func (l maskingLogger) Trace(msg string, args ...any) { l.Log(hclog.Trace, msg, args...) }
func (l maskingLogger) Debug(msg string, args ...any) { l.Log(hclog.Debug, msg, args...) }
func (l maskingLogger) Info(msg string, args ...any)  { l.Log(hclog.Info, msg, args...) }
func (l maskingLogger) Warn(msg string, args ...any)  { l.Log(hclog.Warn, msg, args...) }
func (l maskingLogger) Error(msg string, args ...any) { l.Log(hclog.Error, msg, args...) }
func (l maskingLogger) With(args ...any) hclog.Logger {
	_, args = l.mask("", args)
	return maskingLogger{l.Logger.With(args...), l.masker}
}
func (l maskingLogger) Named(name string) hclog.Logger {
	return maskingLogger{l.Logger.Named(name), l.masker}
}
func (l maskingLogger) ResetNamed(name string) hclog.Logger {
	return maskingLogger{l.Logger.ResetNamed(name), l.masker}
}

// Main runs the nixflow command line and returns its exit status.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, environ: os.Environ()}
	root := a.rootCommand()
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	return report(stderr, cobraUsage(root, cmd, err))
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "nixflow",
		Short: "Run CI workflows written in Nix, locally first",
		Long: `nixflow runs a CI workflow (a JSON job graph, or a Nix workflow) with its jobs
in parallel as their needs allow, on this machine, in containers, over SSH or on EC2.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			level := hclog.LevelFromString(a.logLevel)
			if level == hclog.NoLevel {
				return usageError(fmt.Errorf("invalid --log-level %q (known: trace, debug, info, warn, error)", a.logLevel))
			}
			a.logLevelSet = cmd.Flags().Changed("log-level")
			a.log = maskingLogger{hclog.New(&hclog.LoggerOptions{Name: "nixflow", Level: level, Output: a.stderr}), &a.logMasker}
			return nil
		},
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	root.PersistentFlags().StringVar(&a.logLevel, "log-level", "warn", "level of nixflow's own diagnostics on stderr: trace, debug, info, warn, error")
	root.PersistentFlags().BoolVar(&a.showTrace, "show-trace", false, "on a Nix evaluation error, show Nix's whole trace (nix --show-trace)")
	root.AddCommand(
		a.runCommand(),
		a.compileCommand(),
		a.planCommand(),
		a.listCommand(),
		a.validateCommand(),
		a.runsCommand(),
		a.logsCommand(),
		a.reportCommand(),
		a.gcCommand(),
		a.versionCommand(),
		a.initCommand(),
		a.ec2Command(),
	)
	root.InitDefaultCompletionCmd()
	root.SetHelpCommand(&cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := c.Root().Find(args)
			if err != nil || len(rest) > 0 {
				return usageError(fmt.Errorf("no help topic %q", strings.Join(args, " ")), "'nixflow --help' lists the commands")
			}
			return cmd.Help()
		},
	})
	refuseUnknownSubcommands(root)
	return root
}

// refuseUnknownSubcommands makes every command group below root (ec2,
// completion) a usage error for an argument that is none of its commands:
// cobra shows the group's help and exits 0.
func refuseUnknownSubcommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		refuseUnknownSubcommands(sub)
		if !sub.HasSubCommands() || sub.Runnable() {
			continue
		}
		sub.Args = cobra.ArbitraryArgs
		sub.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				var names []string
				for _, c := range cmd.Commands() {
					if c.IsAvailableCommand() {
						names = append(names, c.Name())
					}
				}
				return usageError(fmt.Errorf("%s has no command %q (known: %s)", cmd.CommandPath(), args[0], strings.Join(names, ", ")))
			}
			return cmd.Help()
		}
	}
}

// exactArgs is cobra.RangeArgs with a usage exit status.
func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.RangeArgs(lo, hi)(cmd, args); err != nil {
			return usageError(err, "see 'nixflow "+cmd.Name()+" --help'")
		}
		return nil
	}
}
