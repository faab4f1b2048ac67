package cliopt

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// ParseFlags parses args with fs the way our own tools (neosimple,
// neobench), whose options are Go flags, do: fs writes nothing, a
// positional argument is an error, and [UsageStatus] reports the outcome
// in one line. After -h/--help it writes usage to stdout and returns
// [flag.ErrHelp]; a bad command line is a *[UsageError].
func ParseFlags(fs *flag.FlagSet, args []string, usage string, stdout io.Writer) error {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return err
		}
		return &UsageError{Msg: err.Error()}
	}
	if fs.NArg() > 0 {
		return &UsageError{Msg: fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

// UsageStatus reports the error of a tool's command line, from
// [ParseFlags] or the tool's own checks, and returns the exit status: 0
// after -h ([flag.ErrHelp], the usage was written), else 2 after
// "PROG: MSG (see PROG -h)" on stderr for a *[UsageError] and "PROG: ERR"
// for any other error.
func UsageStatus(prog string, err error, stderr io.Writer) int {
	var ue *UsageError
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "%s: %s (see %s -h)\n", prog, ue.Msg, prog)
	default:
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
	}
	return 2
}
