// Package gosmtppatches holds changes for go-smtp upstream, not code
// outguard runs:
//
//   - success-replies.patch adds Server.SuccessReply, with which a server
//     chooses the texts of the positive replies go-smtp writes for
//     accepted commands (MAIL, RCPT, DATA's 354, BDAT chunks, VRFY, NOOP,
//     RSET, QUIT), today fixed inside go-smtp ("Roger, accepting mail from
//     <...>", "I'll make sure <...> gets this", "I have successfully done
//     nothing", "Go ahead. End your data with <CR><LF>.<CR><LF>").
//     docs/replies.md says which texts wait on it.
//   - bdat-reset.patch makes a reset wait for the Data call of the BDAT
//     transfer it aborts (RFC 3030). go-smtp runs that Data in a goroutine
//     of its own; after a refused chunk or RSET it resets the session and
//     reads on while the goroutine still hands Data's result to a field of
//     the connection that the next BDAT replaces. A pipelined "BDAT n"
//     (refused), RSET, MAIL, RCPT, "BDAT m LAST" can then answer the
//     second message with the first one's "message transmission aborted"
//     while the second was accepted. outguard's session and its test next
//     hop wait for that goroutine themselves (internal/bdatsync).
//
// The test applies each patch to a copy of each go-smtp version in the Go
// module cache that outguard builds with or that is the newest (v0.25.1,
// v0.26.0) and runs go-smtp's own tests there, the patch's test among
// them, under the race detector. outguard neither forks nor vendors
// go-smtp. See bench/README.md.
package gosmtppatches
