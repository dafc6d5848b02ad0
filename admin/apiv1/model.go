package apiv1

// LearnRequest is the body of POST /api/v1/messages/{id}/learn.
type LearnRequest struct {
	// As is spam or ham.
	As     string `json:"as"`
	Reason string `json:"reason"`
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

// ModelInfo is the answer of GET /api/v1/model, and of importing or
// resetting the overlay.
type ModelInfo struct {
	// Overlay describes what was learnt on top of the seed.
	Overlay Overlay `json:"overlay"`
	// SeedFeatures is the seed model's number of weighted features.
	SeedFeatures int `json:"seed_features"`
	// Trained says what the seed was trained on.
	Trained string `json:"trained"`
	// SpamThreshold and SuspectThreshold are the seed's thresholds on
	// the built-in score scale.
	SpamThreshold    float64 `json:"spam_threshold"`
	SuspectThreshold float64 `json:"suspect_threshold"`
}

// Overlay describes the learnt overlay of the content model.
type Overlay struct {
	// Seed is the seed model's version.
	Seed string `json:"seed"`
	// Version is the version that judges messages now.
	Version string `json:"version"`
	// Updates counts the overlay's changes; 0 for none.
	Updates uint64 `json:"updates"`
	// Learned counts the messages taught.
	Learned uint64 `json:"learned"`
	// Features is the number of adjusted weights.
	Features int `json:"features"`
	// MaxFeatures is the bound on Features.
	MaxFeatures int `json:"max_features"`
}
