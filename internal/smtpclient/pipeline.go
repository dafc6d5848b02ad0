package smtpclient

import (
	"fmt"
	"time"
)

// maxAhead is the most recipients Mail sends ahead.
const maxAhead = 100

// txState is what a Conn knows of the transaction in progress, for the
// recipients sent ahead of their Rcpt (MailOptions.Ahead).
type txState struct {
	// mail is the MAIL command line.
	mail string
	// accepted are the forward paths of the recipients Rcpt returned
	// success for.
	accepted []string
	// ahead are the addresses sent ahead whose replies are unread, in
	// the order sent.
	ahead []string
	// stray: the server accepted a recipient sent ahead that Rcpt never
	// took; the transaction must be sent again before DATA (resend).
	stray bool
}

// begin starts a transaction with the MAIL line mail ("" ends one).
func (t *txState) begin(mail string) {
	t.mail = mail
	t.accepted = t.accepted[:0]
	t.ahead = nil
	t.stray = false
}

// mailAhead writes MAIL and RCPT for each of rcpts (up to maxAhead, and
// up to the first one Path refuses) in one write, then reads MAIL's
// reply. When MAIL is refused, the server has no transaction and refuses
// the recipients too: their replies are read and dropped.
func (c *Conn) mailAhead(rcpts []string) error {
	c.conn.SetDeadline(time.Now().Add(c.opts.Timeout))
	w := c.text.W
	w.WriteString(c.tx.mail)
	w.WriteString("\r\n")
	var ahead []string
	for _, to := range rcpts[:min(len(rcpts), maxAhead)] {
		path, err := Path(to)
		if err != nil {
			break
		}
		w.WriteString("RCPT TO:")
		w.WriteString(path)
		w.WriteString("\r\n")
		ahead = append(ahead, to)
	}
	if err := w.Flush(); err != nil {
		_, _, err = c.reply(0, "", err)
		return err
	}
	c.tx.ahead = ahead
	if _, _, err := c.read(250); err != nil {
		if !c.broken {
			if serr := c.settle(); serr != nil {
				return serr
			}
		}
		return err
	}
	return nil
}

// readAhead reads the reply to the first recipient sent ahead.
func (c *Conn) readAhead() error {
	c.tx.ahead = c.tx.ahead[1:]
	_, _, err := c.read(250)
	return err
}

// settle reads the replies to the recipients sent ahead that Rcpt did
// not take; an accepted one makes the transaction stray.
func (c *Conn) settle() error {
	for len(c.tx.ahead) > 0 {
		if err := c.readAhead(); err == nil {
			c.tx.stray = true
		} else if c.broken {
			return err
		}
	}
	return nil
}

// resend replaces a stray transaction by one with only the accepted
// recipients: RSET, then MAIL and their RCPTs in one write (the server
// offers PIPELINING, or nothing went ahead). Every reply must be a
// success, as before; otherwise the transaction is reset and resend
// fails with ErrUnavailable.
func (c *Conn) resend() error {
	if _, _, err := c.cmd(250, "RSET"); err != nil {
		return err
	}
	c.tx.stray = false
	w := c.text.W
	w.WriteString(c.tx.mail)
	w.WriteString("\r\n")
	for _, path := range c.tx.accepted {
		w.WriteString("RCPT TO:")
		w.WriteString(path)
		w.WriteString("\r\n")
	}
	if err := w.Flush(); err != nil {
		_, _, err = c.reply(0, "", err)
		return err
	}
	var first error
	for range 1 + len(c.tx.accepted) {
		if _, _, err := c.read(250); err != nil {
			if c.broken {
				return err
			}
			if first == nil {
				first = err
			}
		}
	}
	if first == nil {
		return nil
	}
	if _, _, err := c.cmd(250, "RSET"); err != nil && !c.broken {
		// A refused RSET leaves the state unknown.
		c.broken = true
	}
	return fmt.Errorf("%w: the next hop answered differently when the transaction was sent again without a recipient it had accepted ahead: %v", ErrUnavailable, first)
}
