package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/outguard/outguard/admin/apiv1"
	"golang.org/x/term"
)

var learnHelp = helpText(
	"outguard learn spam|ham [--json] FILE...\n"+
		"  outguard learn spam|ham --id [--reason TEXT] [--json] LOGID...",
	`Teaches the built-in engine's content model that messages are spam, or ham
(wanted mail), so that it scores messages like them higher or lower from
now on. The daemon has one model for all its domains: what a message
teaches changes how every domain's mail is scored.

With FILE arguments, each file (a message as .eml, "-" for standard input)
is uploaded to the daemon, which learns from it and keeps nothing of it.
Uploads need a token of scope all.

With --id, the arguments are log ids (as in 'outguard logs'): the daemon
learns from the content it keeps of each quarantined message and records
in the log what the message was taught as. A token scoped to one domain may
teach its domain's messages. A message whose content is not kept (accepted,
deleted or expired) is refused (HTTP 409), and so is every message when the
configuration turns learning off. --reason goes to the audit trail.

Releasing a message ('outguard quarantine release') already teaches ham,
and a lock taken from a message in the console teaches spam. Use
learn spam --id to confirm that a quarantined message is spam, and learn
with files for spam that got through (outguard keeps nothing of accepted
mail) and for messages from elsewhere.

For each message one line tells the content model's score of it before and
after learning and the model version now:

  spam.eml: learnt as spam: score 1.20 -> 5.35 (model seed-ab12cd34ef56+8)

With --json, one object per message and line, with the keys file (for
files), id (with --id), as, before, after and version; a message that could
not be taught has error (the API's error code, or unreadable or
request-failed) and detail instead of the scores. The exit status is 1 if
any message could not be taught.

With more than one message, a progress bar runs on standard error while it
is a terminal, and a summary line ends the run there.
`+clientHelp,
	`  outguard learn spam missed-spam.eml
  outguard learn ham --json false-positives/*.eml
  outguard learn spam --id 01JNB6Q8W5X2Y7Z3K4M5N6P7Q8 --reason "ticket 4711"
  outguard logs --status quarantined --identity alice@customer.example --json | jq -r .id | xargs outguard learn spam --id`)

// learnLine is one line of `outguard learn --json`.
type learnLine struct {
	File string `json:"file,omitempty"`
	apiv1.LearnResult
}

func runLearn(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("learn", learnHelp, stderr)
	cf := addClientFlags(fs, "learn")
	byID := fs.Bool("id", false, "the arguments are log ids of quarantined messages, not files")
	reason := fs.String("reason", "", "why (with --id): `TEXT` for the audit trail")
	if c := parseFlags(fs, args, stdout); c >= 0 {
		return c
	}
	as := fs.Arg(0)
	switch as {
	case "help":
		return parseFlags(fs, []string{"--help"}, stdout)
	case "spam", "ham":
	case "":
		return usageError(stderr, "learn", "say what the messages are: learn spam FILE..., or learn ham FILE...")
	default:
		return usageError(stderr, "learn", "%q: use learn spam or learn ham", as)
	}
	cf.name = "learn " + as
	targets := fs.Args()[1:]
	switch {
	case len(targets) == 0 && *byID:
		return usageError(stderr, cf.name, "give at least one log ID")
	case len(targets) == 0:
		return usageError(stderr, cf.name, "give at least one FILE (or - for standard input), or --id and log IDs")
	case *reason != "" && !*byID:
		return usageError(stderr, cf.name, "--reason is for --id only: an uploaded message is audited without one")
	}
	cl, code := cf.client(stderr)
	if cl == nil {
		return code
	}
	status := exitOK
	prog := newProgress(stderr, "outguard "+cf.name, "messages", len(targets))
	defer prog.finish()
	for _, t := range targets {
		var res apiv1.LearnResult
		var err error
		if *byID {
			err = cl.call("POST", "/messages/"+url.PathEscape(t)+"/learn", nil, apiv1.LearnRequest{As: as, Reason: *reason}, &res)
		} else {
			res, err = learnFile(cl, t, as)
		}
		prog.clear()
		if err != nil {
			status = exitFailed
			if cf.json {
				line := map[string]any{"as": as, "error": errorCode(err), "detail": err.Error()}
				if *byID {
					line["id"] = t
				} else {
					line["file"] = t
				}
				writeJSON(stdout, line)
			}
			fmt.Fprintf(stderr, "outguard %s: %s: %v\n", cf.name, t, err)
			prog.step("errors")
			continue
		}
		if cf.json {
			line := learnLine{LearnResult: res}
			if !*byID {
				line.File = t
			}
			writeJSON(stdout, line)
		} else {
			fmt.Fprintf(stdout, "%s: learnt as %s: %s\n", clean(t, 200), res.As, learntScores(res))
		}
		prog.step("learnt as " + res.As)
	}
	return status
}

// learnFile uploads one message to learn from.
func learnFile(cl *apiClient, name, as string) (apiv1.LearnResult, error) {
	var res apiv1.LearnResult
	raw, err := readArg(name)
	if err != nil {
		return res, &readError{err}
	}
	err = cl.send("POST", "/learn", url.Values{"as": {as}}, bytes.NewReader(raw), "message/rfc822", &res)
	return res, err
}

// readError is a FILE argument that could not be read.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// errorCode is the stable code of a failed request for JSON output: the
// API's error code, unreadable for a file that could not be read, else
// request-failed.
func errorCode(err error) string {
	var ae *apiError
	var re *readError
	switch {
	case errors.As(err, &ae):
		return ae.code
	case errors.As(err, &re):
		return "unreadable"
	}
	return "request-failed"
}

// learntScores tells what learning did to a message's score.
func learntScores(r apiv1.LearnResult) string {
	return fmt.Sprintf("score %.2f -> %.2f (model %s)", r.Before, r.After, clean(r.Version, 80))
}

var modelHelp = helpText(
	"outguard model info [--json]\n"+
		"  outguard model export FILE [--json]\n"+
		"  outguard model import FILE [--json]\n"+
		"  outguard model reset [--yes] [--json]",
	`Manages the built-in engine's content model: a seed model trained offline
and shipped in the binary, plus an overlay of what operators taught it
('outguard learn', releases, locks taken from a message in the console).
Only the overlay changes at run time; a new seed comes with a new outguard.

  info    the version that judges messages now, the seed (version, number
          of weighted features, what it was trained on), its spam and
          suspect thresholds, and the overlay: messages learnt, updates,
          adjusted features against their bound.
  export  writes the overlay (a binary file) to FILE, "-" for standard
          output. An existing FILE is not overwritten. Use it as a backup,
          or to carry what one daemon learnt to another.
  import  replaces the overlay with FILE ("-": standard input), as written
          by export; a file that is not an overlay is refused (HTTP 400).
          The version continues from the higher of the two overlays.
  reset   drops the overlay: the seed alone judges again, and everything
          learnt is lost. It asks for confirmation when standard input is a
          terminal; --yes confirms without asking, and is required
          otherwise.

export, import and reset need a token of scope all; import and reset are
written to the audit trail. With --json, info, import and reset print the
model as one document with the keys overlay (seed, version, updates,
learned, features, max_features), seed_features, trained, spam_threshold
and suspect_threshold; export to a file prints {"file", "bytes"}.
`+clientHelp,
	`  outguard model info
  outguard model export /var/backups/outguard-overlay.bin
  outguard model import overlay.bin --server https://mx2.example.net:8025
  outguard model export - | ssh mx2 outguard model import -
  outguard model reset --yes`)

func runModel(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("model", modelHelp, stderr)
	cf := addClientFlags(fs, "model")
	yes := fs.Bool("yes", false, "reset without asking for confirmation")
	if c := parseFlags(fs, args, stdout); c >= 0 {
		return c
	}
	sub := fs.Arg(0)
	switch sub {
	case "help":
		return parseFlags(fs, []string{"--help"}, stdout)
	case "info", "export", "import", "reset":
	case "":
		return usageError(stderr, "model", "say what to do: info, export FILE, import FILE or reset")
	default:
		return usageError(stderr, "model", "unknown action %q: use info, export, import or reset", sub)
	}
	cf.name = "model " + sub
	rest := fs.Args()[1:]
	file := ""
	switch sub {
	case "info", "reset":
		if len(rest) > 0 {
			return usageError(stderr, cf.name, "unexpected argument %q", rest[0])
		}
	case "export", "import":
		if len(rest) != 1 {
			return usageError(stderr, cf.name, "give exactly one FILE (- for standard %s)", map[string]string{"export": "output", "import": "input"}[sub])
		}
		file = rest[0]
	}
	if *yes && sub != "reset" {
		return usageError(stderr, cf.name, "--yes is for reset only")
	}
	if sub == "export" && file == "-" && cf.json {
		return usageError(stderr, cf.name, "--json and export to standard output: the overlay is the output")
	}
	interactive := term.IsTerminal(int(os.Stdin.Fd()))
	if sub == "reset" && !*yes && !interactive {
		return usageError(stderr, cf.name, "reset drops everything the model learnt: confirm with --yes")
	}
	cl, code := cf.client(stderr)
	if cl == nil {
		return code
	}
	var info apiv1.ModelInfo
	switch sub {
	case "info":
		if err := cl.call("GET", "/model", nil, nil, &info); err != nil {
			return cl.fail(err)
		}
		if cf.json {
			writeJSON(stdout, info)
		} else {
			printModel(stdout, info)
		}
	case "export":
		out := file
		if out == "-" {
			out = ""
		}
		n, err := download(cl, "/model/overlay", out, stdout)
		if err != nil {
			return cl.fail(err)
		}
		switch {
		case out == "":
		case cf.json:
			writeJSON(stdout, map[string]any{"file": file, "bytes": n})
		default:
			fmt.Fprintf(stdout, "wrote the content model's overlay to %s (%d bytes)\n", clean(file, 200), n)
		}
	case "import":
		raw, err := readArg(file)
		if err != nil {
			return cl.fail(err)
		}
		if err := cl.send("PUT", "/model/overlay", nil, bytes.NewReader(raw), "application/octet-stream", &info); err != nil {
			return cl.fail(err)
		}
		if cf.json {
			writeJSON(stdout, info)
		} else {
			fmt.Fprintf(stdout, "imported %s: model %s, %d messages learnt, %d features adjusted\n",
				clean(file, 200), clean(info.Overlay.Version, 80), info.Overlay.Learned, info.Overlay.Features)
		}
	case "reset":
		if !*yes {
			ok, err := confirmReset(cl, stderr)
			if err != nil {
				return cl.fail(err)
			}
			if !ok {
				fmt.Fprintln(stderr, "not reset")
				return exitFailed
			}
		}
		if err := cl.call("DELETE", "/model/overlay", nil, nil, &info); err != nil {
			return cl.fail(err)
		}
		if cf.json {
			writeJSON(stdout, info)
		} else {
			fmt.Fprintf(stdout, "reset the content model to its seed: model %s\n", clean(info.Overlay.Version, 80))
		}
	}
	return exitOK
}

// confirmReset asks on the terminal whether to drop the overlay, telling
// what it holds.
func confirmReset(cl *apiClient, stderr io.Writer) (bool, error) {
	var info apiv1.ModelInfo
	if err := cl.call("GET", "/model", nil, nil, &info); err != nil {
		return false, err
	}
	fmt.Fprintf(stderr, "Drop what the content model learnt (%d messages, %d features adjusted, model %s) and go back to the seed? [y/N] ",
		info.Overlay.Learned, info.Overlay.Features, clean(info.Overlay.Version, 80))
	line, err := bufio.NewReader(io.LimitReader(os.Stdin, 256)).ReadString('\n')
	if err != nil && err != io.EOF {
		return false, err
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}

func printModel(w io.Writer, info apiv1.ModelInfo) {
	o := info.Overlay
	tw := table(w)
	row(tw, "version", o.Version)
	row(tw, "seed", fmt.Sprintf("%s, %d features", o.Seed, info.SeedFeatures))
	if info.Trained != "" {
		// Not cut like other cells: it is the one place that says what
		// the seed learnt from.
		fmt.Fprintf(tw, "trained\t%s\n", clean(info.Trained, 2000))
	}
	row(tw, "thresholds", fmt.Sprintf("spam %.2f, suspect %.2f", info.SpamThreshold, info.SuspectThreshold))
	if o.Updates == 0 {
		row(tw, "learnt", "nothing: the seed alone judges")
	} else {
		row(tw, "learnt", fmt.Sprintf("%d messages in %d updates", o.Learned, o.Updates))
	}
	row(tw, "overlay", strconv.Itoa(o.Features)+" of "+strconv.Itoa(o.MaxFeatures)+" features adjusted")
	tw.Flush()
}
