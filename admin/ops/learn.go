package ops

import (
	"context"
	"fmt"
	"strconv"

	"github.com/outguard/outguard/filter/content"
)

// ModelTeacher is what the operations need of the content model:
// learning from a stored or an uploaded message, and managing the learnt
// overlay. The daemon implements it over the built-in engine's
// content.Learner.
type ModelTeacher interface {
	// LearnStored teaches the model with the quarantined message id.
	// ErrConflict when its content is not kept or learning is off.
	LearnStored(ctx context.Context, id string, spam bool) (LearnResult, error)
	// LearnRaw teaches the model with an uploaded message.
	LearnRaw(ctx context.Context, raw []byte, spam bool) (LearnResult, error)
	// Info describes the model.
	Info() (ModelInfo, error)
	// Export returns the overlay; Import replaces it; Reset drops it.
	Export() ([]byte, error)
	Import(data []byte) error
	Reset() error
}

// LearnResult is what one learning step did to the taught message's score.
type LearnResult struct {
	// ID is the log id of the taught message; "" for an upload.
	ID string
	// As is spam or ham.
	As string
	// Before and After are the content model's score of the message.
	Before, After float64
	// Version is the model version after learning.
	Version string
}

// ModelInfo describes the content model.
type ModelInfo struct {
	// Overlay describes what was learnt on top of the seed.
	Overlay content.OverlayInfo
	// SeedFeatures is the seed model's number of weighted features.
	SeedFeatures int
	// Trained says what the seed was trained on.
	Trained string
	// SpamThreshold and SuspectThreshold are the seed's thresholds on
	// the built-in score scale.
	SpamThreshold, SuspectThreshold float64
}

// MaxLearnBytes bounds an uploaded message to learn from.
const MaxLearnBytes = 25 << 20

func (o *Ops) teacher() (ModelTeacher, error) {
	if o.opts.Teacher == nil {
		return nil, Errorf(ErrUnavailable, "the content model is not available in this daemon")
	}
	return o.opts.Teacher, nil
}

// ParseAs reads a lesson: spam (true) or ham (false).
func ParseAs(s string) (bool, error) {
	switch s {
	case "spam":
		return true, nil
	case "ham":
		return false, nil
	}
	return false, Errorf(ErrBadRequest, "as %q: use spam or ham", s)
}

// LearnStored teaches the model with the stored message id, which must be
// in p's scope, and writes the audit entry with reason (optional); via
// names the front end. It is the one path of the API's learn, the
// console's "confirm spam", and the lessons of releases and locks.
func (o *Ops) LearnStored(ctx context.Context, p Principal, id string, spam bool, reason, via string) (LearnResult, error) {
	reason, err := checkReason(reason, false)
	if err != nil {
		return LearnResult{}, err
	}
	t, err := o.teacher()
	if err != nil {
		return LearnResult{}, err
	}
	rec, err := o.Message(p, id)
	if err != nil {
		return LearnResult{}, err
	}
	res, err := t.LearnStored(ctx, rec.ID, spam)
	if err != nil {
		return LearnResult{}, err
	}
	res.ID = rec.ID
	o.record(p, AuditLearn, AuditTarget{Kind: "message", Domain: rec.Domain, Name: rec.ID}, reason, learnDetail(res), via)
	return res, nil
}

func learnDetail(res LearnResult) string {
	return fmt.Sprintf("as %s: score %.2f -> %.2f (%s)", res.As, res.Before, res.After, res.Version)
}

// needAll refuses a domain-scoped principal an action on what every
// domain shares.
func needAll(p Principal, msg string) error {
	if !p.All() {
		return Errorf(ErrForbidden, "%s", msg)
	}
	return nil
}

// LearnUpload teaches the model with an uploaded message, read by read
// once p may (the model is shared by every domain: scope all).
func (o *Ops) LearnUpload(ctx context.Context, p Principal, spam bool, read func() ([]byte, error)) (LearnResult, error) {
	if err := needAll(p, "teaching the model with an uploaded message needs a token of scope all: the model is shared by every domain"); err != nil {
		return LearnResult{}, err
	}
	t, err := o.teacher()
	if err != nil {
		return LearnResult{}, err
	}
	raw, err := read()
	if err != nil {
		return LearnResult{}, err
	}
	if len(raw) == 0 {
		return LearnResult{}, Errorf(ErrBadRequest, "empty body: send the message (message/rfc822)")
	}
	res, err := t.LearnRaw(ctx, raw, spam)
	if err != nil {
		return LearnResult{}, err
	}
	o.record(p, AuditLearn, AuditTarget{Kind: "upload", Name: strconv.Itoa(len(raw)) + " bytes"}, "", learnDetail(res), "")
	return res, nil
}

// ModelInfo describes the content model; any principal may read it.
func (o *Ops) ModelInfo(p Principal) (ModelInfo, error) {
	t, err := o.teacher()
	if err != nil {
		return ModelInfo{}, err
	}
	return t.Info()
}

const overlayScope = "the model overlay is shared by every domain: use a token of scope all"

// overlay checks an action on the whole overlay: scope all, a model.
func (o *Ops) overlay(p Principal) (ModelTeacher, error) {
	if err := needAll(p, overlayScope); err != nil {
		return nil, err
	}
	return o.teacher()
}

// ExportOverlay returns the learnt overlay (scope all).
func (o *Ops) ExportOverlay(p Principal) ([]byte, error) {
	t, err := o.overlay(p)
	if err != nil {
		return nil, err
	}
	return t.Export()
}

// ImportOverlay replaces the overlay (scope all) with what read returns;
// read gets the largest overlay the model accepts, in bytes. It writes
// the audit entry and returns the model's new description.
func (o *Ops) ImportOverlay(p Principal, read func(limit int64) ([]byte, error)) (ModelInfo, error) {
	t, err := o.overlay(p)
	if err != nil {
		return ModelInfo{}, err
	}
	info, err := t.Info()
	if err != nil {
		return ModelInfo{}, err
	}
	// The learner refuses more than twice its bound of 8-byte entries;
	// read no more than that (plus the header).
	data, err := read(int64(info.Overlay.MaxFeatures)*2*8 + 64)
	if err != nil {
		return ModelInfo{}, err
	}
	if err := t.Import(data); err != nil {
		return ModelInfo{}, err
	}
	info, err = t.Info()
	if err != nil {
		return ModelInfo{}, err
	}
	o.record(p, AuditModel, AuditTarget{Kind: "model", Name: "overlay"}, "", "imported: "+info.Overlay.Version, "")
	return info, nil
}

// ResetOverlay drops what was learnt (scope all) and writes the audit
// entry.
func (o *Ops) ResetOverlay(p Principal) (ModelInfo, error) {
	t, err := o.overlay(p)
	if err != nil {
		return ModelInfo{}, err
	}
	if err := t.Reset(); err != nil {
		return ModelInfo{}, err
	}
	info, err := t.Info()
	if err != nil {
		return ModelInfo{}, err
	}
	o.record(p, AuditModel, AuditTarget{Kind: "model", Name: "overlay"}, "", "reset to the seed", "")
	return info, nil
}
