package cmd

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/qkvdev/qkv/internal/outfile"
)

// Exit statuses.
const (
	ExitOK       = 0
	ExitFindings = 1 // a check found problems
	ExitUsage    = 2
	ExitInput    = 3 // the input could not be read
)

// exitError carries an exit status. Every error a command returns either
// is one, or is one of the typed errors exitCode knows (a *formats.Error,
// an *outfile.Error, a findingsError); the status never comes from a
// message's text.
type exitError struct {
	code int
	err  error
	// hint is a line printed after the message ("Did you mean …?").
	hint string
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError marks a bad flag or argument: exit status 2.
func usageError(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

// inputError marks an input that could not be read: exit status 3.
func inputError(format string, args ...any) error {
	return &exitError{code: ExitInput, err: fmt.Errorf(format, args...)}
}

// asUsage marks err (cobra's or pflag's own) as a usage error.
func asUsage(err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: ExitUsage, err: err}
}

// findingsError reports that a check found problems (exit status 1) after
// the command printed its result; msg, when set, is printed on stderr.
type findingsError struct{ msg string }

func (e *findingsError) Error() string { return e.msg }

// exitCode maps an error to the exit status. Errors without a status of
// their own are inputs that could not be read (status 3).
func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	var fe *findingsError
	if errors.As(err, &fe) {
		return ExitFindings
	}
	var oe *outfile.Error
	if errors.As(err, &oe) && oe.Refused {
		return ExitUsage
	}
	// A *formats.Error, an *outfile.Error that is not a refusal, and every
	// other error: an input (or output) that could not be read or written.
	return ExitInput
}

// exactArgs is cobra.ExactArgs with a usage error (exit status 2).
func exactArgs(n int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError("accepts %d arg(s), received %d", n, len(args))
		}
		return nil
	}
}

// noArgs is cobra.NoArgs with a usage error.
func noArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError("unknown command %q for %q", args[0], c.CommandPath())
	}
	return nil
}
