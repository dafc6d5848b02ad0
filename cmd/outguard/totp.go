package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

const totpHelp = `Usage:
  outguard totp-secret --name ACCOUNT [--issuer NAME] [--out FILE] [--json]

Makes a new secret for the second factor (TOTP, RFC 6238) of a console
account (admin.accounts, docs/config-admin.md#accounts) and prints:

  - the secret, in base32, for the account's totp_secret (or, with
    --out FILE, writes it to FILE with mode 0600 for totp_secret_file and
    does not print it);
  - the otpauth:// URI that authenticator apps (FreeOTP, Aegis, Google
    Authenticator, 1Password...) enrol from: paste it, or turn it into a
    QR code on a trusted machine (e.g. qrencode -t ansiutf8 'URI').

The codes have 6 digits, change every 30 seconds and use HMAC-SHA1, the
settings every authenticator app supports. The secret is 20 random bytes
(160 bits, RFC 4226 section 4). Anyone holding it can make codes: keep it
as secret as the password hash's password, and make a new one if it leaks.

The console accepts the code of the current 30-second step and of the
steps just before and after (clock skew), and each code once only.

Examples:
  outguard totp-secret --name alice
  outguard totp-secret --name alice --out /etc/outguard/alice.totp
  outguard totp-secret --name alice --json | jq -r .uri | qrencode -t ansiutf8

Exit status: 0 done; 1 the file could not be written; 2 usage error.
`

// totpSecret is what totp-secret --json prints.
type totpSecret struct {
	Account string `json:"account"`
	Issuer  string `json:"issuer"`
	// Secret is "" when it was written to File instead.
	Secret    string `json:"secret"`
	File      string `json:"file"`
	URI       string `json:"uri"`
	Digits    int    `json:"digits"`
	Period    int    `json:"period"`
	Algorithm string `json:"algorithm"`
}

func runTOTPSecret(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("totp-secret", totpHelp, stderr)
	name := fs.String("name", "", "the console account's name (admin.accounts[].name); required")
	issuer := fs.String("issuer", "outguard", "the issuer that authenticator apps show beside the account")
	out := fs.String("out", "", "write the secret to `FILE` (mode 0600, must not exist) instead of printing it")
	asJSON := fs.Bool("json", false, "print {account, issuer, secret, file, uri, digits, period, algorithm}")
	if c := parseFlags(fs, args, stdout); c >= 0 {
		return c
	}
	if fs.NArg() > 0 || *name == "" || *issuer == "" {
		fmt.Fprintln(stderr, "outguard totp-secret: --name ACCOUNT is required and takes no arguments (outguard totp-secret --help)")
		return exitUsage
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: *issuer, AccountName: *name, SecretSize: 20, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1, Period: 30})
	if err != nil {
		fmt.Fprintf(stderr, "outguard totp-secret: %v\n", err)
		return exitFailed
	}
	res := totpSecret{Account: *name, Issuer: *issuer, Secret: key.Secret(), URI: key.URL(), Digits: 6, Period: 30, Algorithm: "SHA1"}
	if *out != "" {
		f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			_, err = fmt.Fprintln(f, key.Secret())
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "outguard totp-secret: %v\n", err)
			return exitFailed
		}
		res.Secret, res.File = "", *out
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		enc.Encode(res)
		return exitOK
	}
	if res.File != "" {
		fmt.Fprintf(stdout, "secret written to %s: set totp_secret_file: %s\n", res.File, res.File)
	} else {
		fmt.Fprintf(stdout, "totp_secret: %s\n", res.Secret)
	}
	fmt.Fprintf(stdout, "enrol: %s\n", res.URI)
	return exitOK
}
