package admin

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/outguard/outguard/filter/content"
)

// ModelTeacher is what the API needs of the content model: learning from a
// stored or an uploaded message, and managing the learnt overlay. The
// daemon implements it over the built-in engine's content.Learner.
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
	ID string `json:"id,omitempty"`
	// As is spam or ham.
	As string `json:"as"`
	// Before and After are the content model's score of the message.
	Before float64 `json:"before"`
	After  float64 `json:"after"`
	// Version is the model version after learning.
	Version string `json:"version"`
}

// ModelInfo is the answer of GET /api/v1/model.
type ModelInfo struct {
	// Overlay describes what was learnt on top of the seed.
	Overlay content.OverlayInfo `json:"overlay"`
	// SeedFeatures is the seed model's number of weighted features.
	SeedFeatures int `json:"seed_features"`
	// Trained says what the seed was trained on.
	Trained string `json:"trained"`
	// SpamThreshold and SuspectThreshold are the seed's thresholds on
	// the built-in score scale.
	SpamThreshold    float64 `json:"spam_threshold"`
	SuspectThreshold float64 `json:"suspect_threshold"`
}

// LearnRequest is the body of POST /api/v1/messages/{id}/learn.
type LearnRequest struct {
	// As is spam or ham.
	As     string `json:"as"`
	Reason string `json:"reason"`
}

// AuditLearn records a message taught to the content model; AuditModel a
// change of the whole overlay (import, reset).
const (
	AuditLearn = "learn"
	AuditModel = "model"
)

// maxLearnBytes bounds an uploaded message to learn from.
const maxLearnBytes = 25 << 20

func (a *API) teacher() (ModelTeacher, error) {
	if a.opts.Teacher == nil {
		return nil, errorf(ErrUnavailable, "the content model is not available in this daemon")
	}
	return a.opts.Teacher, nil
}

func parseAs(s string) (bool, error) {
	switch s {
	case "spam":
		return true, nil
	case "ham":
		return false, nil
	}
	return false, errorf(ErrBadRequest, "as %q: use spam or ham", s)
}

// learnMessage teaches the model with a quarantined message: "confirm
// spam", or ham for a message wrongly blocked.
func (a *API) learnMessage(w http.ResponseWriter, r *http.Request, pr Principal) error {
	if p := newParams(r); p.err != nil {
		return p.err
	}
	var req LearnRequest
	if err := a.decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	spam, err := parseAs(req.As)
	if err != nil {
		return err
	}
	res, err := a.learnStored(r.Context(), pr, r.PathValue("id"), spam, req.Reason, "")
	if err != nil {
		return err
	}
	writeJSON(w, res)
	return nil
}

// learnStored teaches the model with the stored message id, which must be
// in pr's scope, and writes it to the audit trail with reason; via names
// the front end in the entry's detail ("" for the API, "console"). It is
// the one path of the API's and the console's "confirm spam".
func (a *API) learnStored(ctx context.Context, pr Principal, id string, spam bool, reason, via string) (LearnResult, error) {
	reason, err := checkReason(reason, false)
	if err != nil {
		return LearnResult{}, err
	}
	t, err := a.teacher()
	if err != nil {
		return LearnResult{}, err
	}
	rec, _, err := a.messageByID(id, pr)
	if err != nil {
		return LearnResult{}, err
	}
	res, err := t.LearnStored(ctx, rec.ID, spam)
	if err != nil {
		return LearnResult{}, err
	}
	res.ID = rec.ID
	detail := learnDetail(res)
	if via != "" {
		detail += "; " + via
	}
	a.record(pr, AuditLearn, AuditTarget{Kind: "message", Domain: rec.Domain, Name: rec.ID}, reason, detail)
	return res, nil
}

func learnDetail(res LearnResult) string {
	return fmt.Sprintf("as %s: score %.2f -> %.2f (%s)", res.As, res.Before, res.After, res.Version)
}

// learnUpload teaches the model with an uploaded message (the body,
// message/rfc822), as ?as=spam or ?as=ham. The model is shared by every
// domain, so this needs a token of scope all.
func (a *API) learnUpload(w http.ResponseWriter, r *http.Request, pr Principal) error {
	p := newParams(r, "as")
	spam, err := parseAs(p.str("as"))
	if p.err != nil {
		return p.err
	}
	if err != nil {
		return err
	}
	if !pr.All() {
		return errorf(ErrForbidden, "teaching the model with an uploaded message needs a token of scope all: the model is shared by every domain")
	}
	t, err := a.teacher()
	if err != nil {
		return err
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxLearnBytes))
	if err != nil {
		return errorf(ErrTooLarge, "message over %d bytes", maxLearnBytes)
	}
	if len(raw) == 0 {
		return errorf(ErrBadRequest, "empty body: send the message (message/rfc822)")
	}
	res, err := t.LearnRaw(r.Context(), raw, spam)
	if err != nil {
		return err
	}
	a.record(pr, AuditLearn, AuditTarget{Kind: "upload", Name: strconv.Itoa(len(raw)) + " bytes"}, "", learnDetail(res))
	writeJSON(w, res)
	return nil
}

func (a *API) modelInfo(w http.ResponseWriter, r *http.Request, pr Principal) error {
	if p := newParams(r); p.err != nil {
		return p.err
	}
	t, err := a.teacher()
	if err != nil {
		return err
	}
	info, err := t.Info()
	if err != nil {
		return err
	}
	writeJSON(w, info)
	return nil
}

// overlayTeacher checks a request on the whole overlay: no parameters, a
// token of scope all (the overlay is shared by every domain), a model.
func (a *API) overlayTeacher(r *http.Request, pr Principal) (ModelTeacher, error) {
	if p := newParams(r); p.err != nil {
		return nil, p.err
	}
	if !pr.All() {
		return nil, errorf(ErrForbidden, "the model overlay is shared by every domain: use a token of scope all")
	}
	return a.teacher()
}

func (a *API) exportOverlay(w http.ResponseWriter, r *http.Request, pr Principal) error {
	t, err := a.overlayTeacher(r, pr)
	if err != nil {
		return err
	}
	data, err := t.Export()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="outguard-overlay.bin"`)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.Write(data)
	return nil
}

func (a *API) importOverlay(w http.ResponseWriter, r *http.Request, pr Principal) error {
	t, err := a.overlayTeacher(r, pr)
	if err != nil {
		return err
	}
	info, err := t.Info()
	if err != nil {
		return err
	}
	// The learner refuses more than twice its bound of 8-byte entries;
	// read no more than that (plus the header).
	limit := int64(info.Overlay.MaxFeatures)*2*8 + 64
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return errorf(ErrTooLarge, "overlay over %d bytes (twice max_overlay_features entries)", limit)
	}
	if err := t.Import(data); err != nil {
		return err
	}
	info, err = t.Info()
	if err != nil {
		return err
	}
	a.record(pr, AuditModel, AuditTarget{Kind: "model", Name: "overlay"}, "", "imported: "+info.Overlay.Version)
	writeJSON(w, info)
	return nil
}

func (a *API) resetOverlay(w http.ResponseWriter, r *http.Request, pr Principal) error {
	t, err := a.overlayTeacher(r, pr)
	if err != nil {
		return err
	}
	if err := t.Reset(); err != nil {
		return err
	}
	info, err := t.Info()
	if err != nil {
		return err
	}
	a.record(pr, AuditModel, AuditTarget{Kind: "model", Name: "overlay"}, "", "reset to the seed")
	writeJSON(w, info)
	return nil
}

// learnAfterRelease teaches the model that a released message is ham. A
// failure is logged, not returned: the release itself happened.
func (a *API) learnAfterRelease(ctx context.Context, pr Principal, id string) *LearnResult {
	if a.opts.Teacher == nil {
		return nil
	}
	res, err := a.learnStored(ctx, pr, id, false, "released", "")
	if err != nil {
		a.log.Info("admin api: released message not learnt", "id", id, "err", err)
		return nil
	}
	return &res
}

// learnFromLock teaches the model that the message a lock was taken from is
// spam. The message must be in the principal's scope; failures are logged:
// the lock itself happened.
func (a *API) learnFromLock(ctx context.Context, pr Principal, id string) {
	if a.opts.Teacher == nil {
		return
	}
	if _, err := a.learnStored(ctx, pr, id, true, "locked from this message", ""); err != nil {
		a.log.Info("admin api: lock's message not learnt", "id", id, "err", err)
	}
}
