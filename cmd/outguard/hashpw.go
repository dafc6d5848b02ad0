package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/outguard/outguard/internal/passwd"
)

const hashHelp = `Usage:
  outguard hash-password [--bcrypt] [--json] < PASSWORD

Reads a password (or an admin API token) from standard input, or prompts
for it twice when standard input is a terminal, and prints its hash for
password_hash (outgoing users) or hash (admin tokens). The default is
argon2id; --bcrypt makes a bcrypt hash instead. Only the first line of
standard input is used; the password itself is never printed.

Examples:
  outguard hash-password
  printf '%s' 'correct horse battery staple' | outguard hash-password
  openssl rand -hex 24 | tee token.txt | outguard hash-password
`

func runHashPassword(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("hash-password", hashHelp, stderr)
	useBcrypt := fs.Bool("bcrypt", false, "make a bcrypt hash instead of argon2id")
	asJSON := fs.Bool("json", false, "print {\"hash\": ...}")
	if c := parseFlags(fs, args, stdout); c >= 0 {
		return c
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, "outguard hash-password: the password is read from standard input, not from arguments")
		return exitUsage
	}
	pw, err := readPassword(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "outguard hash-password: %v\n", err)
		return exitFailed
	}
	if pw == "" {
		fmt.Fprintln(stderr, "outguard hash-password: empty password")
		return exitFailed
	}
	var h string
	if *useBcrypt {
		if len(pw) > 72 {
			fmt.Fprintln(stderr, "outguard hash-password: bcrypt uses at most 72 bytes; use argon2id (the default) for longer passwords")
			return exitFailed
		}
		h, err = passwd.HashBcrypt(pw)
	} else {
		h, err = passwd.Hash(pw)
	}
	if err != nil {
		fmt.Fprintf(stderr, "outguard hash-password: %v\n", err)
		return exitFailed
	}
	if *asJSON {
		json.NewEncoder(stdout).Encode(map[string]string{"hash": h})
	} else {
		fmt.Fprintln(stdout, h)
	}
	return exitOK
}

func readPassword(stderr io.Writer) (string, error) {
	fd := int(os.Stdin.Fd())
	if term.IsTerminal(fd) {
		fmt.Fprint(stderr, "Password: ")
		a, err := term.ReadPassword(fd)
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(stderr, "Again: ")
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		if string(a) != string(b) {
			return "", fmt.Errorf("the two entries differ")
		}
		return string(a), nil
	}
	line, err := bufio.NewReader(io.LimitReader(os.Stdin, 4096)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}
