// Package content is the statistical content model of the built-in engine:
// a tokeniser that turns a message's text, links and MIME structure into
// hashed binary features, a logistic-regression Model over them shipped
// as an embedded seed, and a Learner that adjusts the seed by online
// gradient steps as operators release or confirm messages.
//
// # Overview
//
// The score of a document with the n distinct features F is
//
//	b + Σ_{f∈F} w_f / √n
//
// where the weights w are the seed's plus the Learner's overlay. The seed
// is trained by `go run ./filter/train` and calibrated so that its Spam
// threshold is 5, the built-in engine's default spam threshold; Suspect is
// the threshold of the suspect band. docs/content-model.md says what the
// seed was trained on, how it was evaluated and how to rebuild it.
//
// Call order on the hot path: take an Extractor from a pool, build a Doc,
// call Extract, then Learner.Score with the features; the features are
// valid until the Extractor's next Extract.
//
// # Caveats
//
// Features are 32-bit hashes, so two tokens can share a weight; with a few
// hundred thousand features this touches a handful of rare tokens. The
// tokeniser's version is part of the model file: changing what Extract
// produces means retraining the seed, which Parse enforces.
package content
