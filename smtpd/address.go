package smtpd

import "github.com/outguard/outguard/internal/smtpclient"

// go-smtp hands the session envelope addresses with a quoted local part
// already unquoted. Every address outguard writes to the wire goes
// through smtpclient.Path, which quotes the local part again where
// RFC 5321 §4.1.2 requires it; the session refuses at once an address
// that no path can carry (smtpclient.CheckAddress).

var (
	replyBadSender = smtpclient.ReplyBadSender
	replyBadRcpt   = smtpclient.ReplyBadRecipient
)
