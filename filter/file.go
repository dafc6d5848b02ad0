package filter

import (
	"context"
	"fmt"
	"os"
)

// FileResult is the outcome of ClassifyFile, shaped for
// `outguard classify --json`: one JSON object per file with the keys file,
// class, score, reasons and error.
type FileResult struct {
	// File is the path as given.
	File string `json:"file"`
	// Class is clean, spam, phishing or virus; "" when Error is set.
	Class string `json:"class"`
	// Score is the merged verdict's score.
	Score float64 `json:"score"`
	// Reasons are the verdict's reasons; never nil, so JSON shows [].
	Reasons []string `json:"reasons"`
	// Band is clean, suspect or spam (blocked); "" when Error is set.
	Band string `json:"band"`
	// ModelVersion names the content model that judged the message.
	ModelVersion string `json:"model_version,omitempty"`
	// PartiallyScanned names the limits that left content unscanned;
	// absent when the engines saw the whole message.
	PartiallyScanned []string `json:"partially_scanned,omitempty"`
	// Error says why the file could not be classified; "" on success.
	Error string `json:"error"`
	// Defects lists what was malformed in the message (not in the JSON
	// contract; shown by the text output).
	Defects []string `json:"-"`
}

// ClassifyFile parses the message stored at path (a .eml file, or an mbox
// file holding one message) within c's limits and classifies it with an
// empty envelope. Failures, including a scanner failure that would defer
// the message, are reported in FileResult.Error rather than returned, so
// that the caller can go on with the next file.
func ClassifyFile(ctx context.Context, c *Classifier, path string) FileResult {
	res := FileResult{File: path, Reasons: []string{}}
	f, err := os.Open(path)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		res.Error = err.Error()
		return res
	}
	if !st.Mode().IsRegular() {
		res.Error = fmt.Sprintf("%s: not a regular file", path)
		return res
	}
	m, err := ParseMessage(f, st.Size(), c.Limits())
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.Defects = m.Defects
	v, err := c.Classify(ctx, m)
	if v.Reasons != nil {
		res.Reasons = v.Reasons
	}
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.Class = v.Class.String()
	res.Score = v.Score
	res.Band = v.Band.String()
	res.ModelVersion = v.ModelVersion
	res.PartiallyScanned = PartialLimits(v.Gaps)
	return res
}
