package smtpd

import (
	"context"
	"errors"
	"log/slog"

	"github.com/emersion/go-smtp"

	"github.com/outguard/outguard/internal/smtpclient"
)

// Sentinel errors. Components wrap them with %w; toReply maps them to SMTP
// replies.
var (
	// ErrNextHopUnavailable: the next hop could not be reached or the
	// connection broke. Answered 451 4.4.1.
	ErrNextHopUnavailable = smtpclient.ErrUnavailable
	// ErrNextHopTimeout: the next hop did not answer in time, or the
	// command's context ended first. 451 4.4.1.
	ErrNextHopTimeout = smtpclient.ErrTimeout
	// ErrAuthFailed: wrong user name or password. 535 5.7.8.
	ErrAuthFailed = errors.New("authentication failed")
	// ErrAuthBusy: the password could not be checked now (too many
	// checks in progress). 454 4.7.0.
	ErrAuthBusy = errors.New("authentication busy")
	// ErrTempfail: a component asks the client to retry later (a scanner
	// failed with on_error tempfail). 451 4.7.1.
	ErrTempfail = errors.New("temporary failure")
)

// Replies used in more than one place.
var (
	replyAuthRequired   = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	replyAuthFailed     = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
	replyAuthThrottled  = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many authentication failures, try again later"}
	replyAuthBusy       = &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Temporary authentication failure, try again later"}
	replyRcptRefusals   = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many refused recipients, closing connection"}
	replyNextHopDown    = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 1}, Message: "Next hop not reachable, try again later"}
	replyTempfail       = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "Message could not be checked now, try again later"}
	replyInternal       = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Internal error, try again later"}
	replyNotRecorded    = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Message could not be recorded, try again later"}
	replyDeadline       = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 5}, Message: "Processing took too long, try again later"}
	replyTooManyRcpts   = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: "Too many recipients"}
	replyTooLarge       = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "Message too large"}
	replyHeaderLine     = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Header line longer than 998 octets"}
	replyHeaderCR       = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Header contains a bare CR (RFC 5322 allows CR only before LF)"}
	replyHeaderTooLarge = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "Header block too large"}
	replyDataLine       = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "Message has a line longer than allowed"}
	replyLineTooLong    = &smtp.SMTPError{Code: 500, EnhancedCode: smtp.EnhancedCode{5, 4, 0}, Message: "Too long line, closing connection"}
	replyNoTransaction  = &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "Bad sequence of commands"}
)

// toReply is the one place where an internal error becomes an SMTP reply.
// A known *smtp.SMTPError passes through; sentinels map to their reply;
// anything else becomes a generic 451 4.3.0 that reveals no internals and
// is logged with the cause.
func toReply(err error, log *slog.Logger) *smtp.SMTPError {
	if err == nil {
		return nil
	}
	var serr *smtp.SMTPError
	switch {
	case errors.As(err, &serr):
		return serr
	case errors.Is(err, ErrNextHopUnavailable), errors.Is(err, ErrNextHopTimeout):
		log.Warn("next hop failed", "err", err)
		return replyNextHopDown
	case errors.Is(err, ErrAuthFailed):
		return replyAuthFailed
	case errors.Is(err, ErrAuthBusy):
		return replyAuthBusy
	case errors.Is(err, ErrTempfail):
		log.Warn("temporary failure", "err", err)
		return replyTempfail
	case errors.Is(err, context.DeadlineExceeded):
		log.Warn("deadline exceeded", "err", err)
		return replyDeadline
	case errors.Is(err, smtp.ErrDataTooLarge):
		return replyTooLarge
	}
	log.Error("internal error", "err", err)
	return replyInternal
}
