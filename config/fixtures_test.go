package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sectionBase is a minimal valid configuration without the optional
// sections, for the tests of the arf, notify and store sections.
const sectionBase = `
hostname: mta.out.example.net
listeners:
  - name: submission
    address: "127.0.0.1:2525"
    tls: none
    allow_insecure_auth: true
next_hop:
  type: capture
domains:
  - name: out.example.net
    users:
      - name: alice
        networks: ["127.0.0.1/32"]
`

// badCase is a fixture under testdata and the words its error must
// contain (the key and the hint).
type badCase struct {
	file string
	want []string
}

// checkBadFixtures parses base followed by each fixture and checks that it
// fails with ErrInvalid naming every word of want, and that every
// testdata/<prefix>*.yaml fixture has a case.
func checkBadFixtures(t *testing.T, prefix, base string, cases []badCase) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join("testdata", prefix+"*.yaml"))
	if len(files) != len(cases) {
		t.Errorf("got %d %s* fixtures, want a case for each of %d", len(files), prefix, len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse([]byte(base + string(b)))
			if err == nil {
				t.Fatalf("got no error, want one mentioning %q", tc.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("got %v, want it to wrap ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to mention %q", err, w)
				}
			}
		})
	}
}
