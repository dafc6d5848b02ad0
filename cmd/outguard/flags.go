package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// newFlags returns a FlagSet whose --help prints help and the flags, and
// whose errors are reported as usage errors.
func newFlags(name, help string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprint(out, help)
		var flags strings.Builder
		fs.SetOutput(&flags)
		fs.PrintDefaults()
		fs.SetOutput(out)
		if flags.Len() > 0 {
			fmt.Fprintf(out, "\nFlags:\n%s", flags.String())
		}
	}
	return fs
}

// parseFlags parses args and maps the outcome to an exit code: -1 to go
// on, exitOK after --help, exitUsage on a bad flag.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) int {
	for _, a := range args {
		if a == "--help" || a == "-h" || a == "-help" {
			fs.SetOutput(stdout)
			fs.Usage()
			return exitOK
		}
		if a == "--" {
			break
		}
	}
	if err := fs.Parse(reorder(fs, args)); err != nil {
		return exitUsage
	}
	return -1
}

// reorder moves flags after positional arguments to the front, so that
// `outguard check-config FILE --json` works like `--json FILE`.
func reorder(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if strings.Contains(name, "=") {
				continue
			}
			if f := fs.Lookup(name); f != nil {
				if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
					continue
				}
				if i+1 < len(args) {
					flags = append(flags, args[i+1])
					i++
				}
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}
