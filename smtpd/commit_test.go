package smtpd

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

// committingPolicy is fakePolicy whose checks are Committers; commitErr
// fails Commit.
type committingPolicy struct {
	fakePolicy
	commitErr error

	cmu     sync.Mutex
	commits []Result
}

func (p *committingPolicy) Begin(ctx context.Context, tx *Transaction) (Check, error) {
	c, err := p.fakePolicy.Begin(ctx, tx)
	if err != nil {
		return nil, err
	}
	return &committingCheck{fakeCheck: c.(*fakeCheck), p: p}, nil
}

type committingCheck struct {
	*fakeCheck
	p *committingPolicy
}

func (c *committingCheck) Commit(ctx context.Context, tx *Transaction, msg *Message, res Result) error {
	c.p.cmu.Lock()
	c.p.commits = append(c.p.commits, res)
	c.p.cmu.Unlock()
	return c.p.commitErr
}

// TestCommitBeforeTwoFifty: a Committer's Commit runs after the next hop
// accepted and before the client's reply; when it fails, the client gets
// 451 4.3.0, never 250, and Close sees the outcome deferred.
func TestCommitBeforeTwoFifty(t *testing.T) {
	for _, tc := range []struct {
		name      string
		commitErr error
		wantCode  int
		outcome   string
	}{
		{"recorded", nil, 0, OutcomeAccepted},
		{"not recorded", errors.New("disk full"), 451, OutcomeDeferred},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &committingPolicy{commitErr: tc.commitErr}
			h := newHarness(t, func(o *Options, _ *ListenerOptions) { o.Policy = p })
			c := h.authedClient()
			err := c.SendMail("alice@example.com", []string{"bob@example.org"}, strings.NewReader(plainMsg))
			if got := codeOf(err); got != tc.wantCode {
				t.Fatalf("reply %v, want code %d", err, tc.wantCode)
			}
			if err != nil && !strings.Contains(err.Error(), "4.3.0") && !strings.Contains(err.Error(), "could not be recorded") {
				t.Errorf("reply %v, want 4.3.0", err)
			}
			p.cmu.Lock()
			commits := p.commits
			p.cmu.Unlock()
			if len(commits) != 1 || commits[0].Outcome != OutcomeAccepted || commits[0].NextHopReply == "" {
				t.Errorf("commits %+v, want one of an accepted message with the next hop's reply", commits)
			}
			c.Quit()
			res := p.Results()
			if len(res) != 1 || res[0].Outcome != tc.outcome {
				t.Errorf("Close saw %+v, want outcome %s", res, tc.outcome)
			}
		})
	}
}
