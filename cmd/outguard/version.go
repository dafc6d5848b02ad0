package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

const versionHelp = `Usage:
  outguard version [--json]

Prints outguard's version, the commit it was built from and the Go version
that built it. Release builds (make deb) take the version from git describe;
a plain go build says "dev". With --json, one object with the keys version,
commit and go.
`

// buildVersion is what version prints: Version, the VCS commit recorded by
// the go command (with "-dirty" for uncommitted changes) and the Go
// release.
type buildVersion struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Go      string `json:"go"`
}

// Commit is set at build time with -ldflags "-X main.Commit=..." (make
// does); otherwise the commit the go command recorded is used.
var Commit = ""

func currentVersion() buildVersion {
	v := buildVersion{Version: Version, Commit: "unknown", Go: runtime.Version()}
	if Commit != "" {
		v.Commit = Commit
	} else if info, ok := debug.ReadBuildInfo(); ok {
		dirty := false
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Commit = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if dirty && v.Commit != "unknown" {
			v.Commit += "-dirty"
		}
	}
	return v
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("version", versionHelp, stderr)
	asJSON := fs.Bool("json", false, "print as JSON")
	if c := parseFlags(fs, args, stdout); c >= 0 {
		return c
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "outguard version: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	v := currentVersion()
	if *asJSON {
		writeJSON(stdout, v)
	} else {
		fmt.Fprintf(stdout, "outguard %s (commit %s, %s)\n", v.Version, v.Commit, v.Go)
	}
	return exitOK
}
