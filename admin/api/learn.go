package api

import (
	"io"
	"net/http"
	"strconv"

	"github.com/outguard/outguard/admin/apiv1"
	"github.com/outguard/outguard/admin/ops"
)

// learnMessage teaches the model with a quarantined message: "confirm
// spam", or ham for a message wrongly blocked.
func (a *API) learnMessage(w http.ResponseWriter, r *http.Request, pr ops.Principal) error {
	if p := newParams(r); p.err != nil {
		return p.err
	}
	var req apiv1.LearnRequest
	if err := a.decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	spam, err := ops.ParseAs(req.As)
	if err != nil {
		return err
	}
	res, err := a.ops.LearnStored(r.Context(), pr, r.PathValue("id"), spam, req.Reason, "")
	if err != nil {
		return err
	}
	writeJSON(w, LearnResultOf(res))
	return nil
}

// learnUpload teaches the model with an uploaded message (the body,
// message/rfc822), as ?as=spam or ?as=ham.
func (a *API) learnUpload(w http.ResponseWriter, r *http.Request, pr ops.Principal) error {
	p := newParams(r, "as")
	spam, err := ops.ParseAs(p.str("as"))
	if p.err != nil {
		return p.err
	}
	if err != nil {
		return err
	}
	res, err := a.ops.LearnUpload(r.Context(), pr, spam, func() ([]byte, error) {
		raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, ops.MaxLearnBytes))
		if err != nil {
			return nil, ops.Errorf(ops.ErrTooLarge, "message over %d bytes", ops.MaxLearnBytes)
		}
		return raw, nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, LearnResultOf(res))
	return nil
}

func (a *API) modelInfo(w http.ResponseWriter, r *http.Request, pr ops.Principal) error {
	if p := newParams(r); p.err != nil {
		return p.err
	}
	info, err := a.ops.ModelInfo(pr)
	if err != nil {
		return err
	}
	writeJSON(w, ModelInfoOf(info))
	return nil
}

func (a *API) exportOverlay(w http.ResponseWriter, r *http.Request, pr ops.Principal) error {
	if p := newParams(r); p.err != nil {
		return p.err
	}
	data, err := a.ops.ExportOverlay(pr)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="outguard-overlay.bin"`)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.Write(data)
	return nil
}

func (a *API) importOverlay(w http.ResponseWriter, r *http.Request, pr ops.Principal) error {
	if p := newParams(r); p.err != nil {
		return p.err
	}
	info, err := a.ops.ImportOverlay(pr, func(limit int64) ([]byte, error) {
		data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		if err != nil {
			return nil, ops.Errorf(ops.ErrTooLarge, "overlay over %d bytes (twice max_overlay_features entries)", limit)
		}
		return data, nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, ModelInfoOf(info))
	return nil
}

func (a *API) resetOverlay(w http.ResponseWriter, r *http.Request, pr ops.Principal) error {
	if p := newParams(r); p.err != nil {
		return p.err
	}
	info, err := a.ops.ResetOverlay(pr)
	if err != nil {
		return err
	}
	writeJSON(w, ModelInfoOf(info))
	return nil
}
