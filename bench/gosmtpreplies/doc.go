// Package gosmtpreplies holds a change for go-smtp upstream, not code
// outguard runs: success-replies.patch adds Server.SuccessReply, with
// which a server chooses the texts of the positive replies go-smtp writes
// for accepted commands (MAIL, RCPT, DATA's 354, BDAT chunks, VRFY, NOOP,
// RSET, QUIT), today fixed inside go-smtp ("Roger, accepting mail from
// <...>", "I'll make sure <...> gets this", "I have successfully done
// nothing", "Go ahead. End your data with <CR><LF>.<CR><LF>").
//
// The test applies the patch to a copy of each go-smtp version in the Go
// module cache that outguard builds with or that is the newest (v0.25.1,
// v0.26.0) and runs go-smtp's own tests there, the patch's test among
// them. outguard neither forks nor vendors go-smtp; docs/replies.md says
// which texts wait on this change. See bench/README.md.
package gosmtpreplies
