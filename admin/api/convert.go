package api

import (
	"maps"
	"slices"
	"time"

	"github.com/outguard/outguard/admin/apiv1"
	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/feedback"
	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/quarantine"
)

// Conversions from the domain types to the API's wire types (apiv1): one
// function per type, so that a domain type's change never reaches the
// API's JSON unnoticed (convert_test.go fills every field).

// MessageOf is a log record as the API shows it.
func MessageOf(r *quarantine.Record) apiv1.Message {
	m := apiv1.Message{
		ID: r.ID, Time: r.Time.UTC(), Listener: r.Listener, ClientPort: r.ClientPort,
		User: r.User, Domain: r.Domain, Identity: r.Identity, Sender: r.Sender,
		Recipients: []apiv1.Recipient{}, HeaderFrom: r.HeaderFrom, Subject: r.Subject, MessageID: r.MessageID,
		Size: r.Size, Status: r.Status.String(), Verdict: r.Verdict.String(), Score: r.Score,
		Reasons: append([]string{}, r.Reasons...), NextHopReply: r.NextHopReply,
		DurationMS: r.Duration.Milliseconds(), Complaints: r.Complaints,
		Band: r.Band.String(), Model: r.Model, Learned: r.Learned,
		PartiallyScanned: append([]string(nil), r.Partial...),
		Campaign:         r.Campaign,
	}
	if r.ClientIP.IsValid() {
		m.ClientIP = r.ClientIP.String()
	}
	for _, rc := range r.Recipients {
		m.Recipients = append(m.Recipients, apiv1.Recipient{Address: rc.Address, Code: rc.Code, Text: rc.Text, Refused: rc.Refused})
	}
	if q := r.Quarantine; q != nil {
		m.Quarantine = &apiv1.Quarantine{RawSize: q.RawSize, StoredSize: q.StoredSize, HasContent: q.HasContent(),
			ReleasedAt: q.ReleasedAt, ReleasedBy: q.ReleasedBy,
			ReleaseReason: q.ReleaseReason, ReleaseLearn: q.ReleaseLearn, DeletedAt: q.DeletedAt, DeletedBy: q.DeletedBy, Expired: q.Expired}
	}
	return m
}

// ContentOf is the display-safe rendering of a quarantined message.
func ContentOf(v *quarantine.View) *apiv1.Content {
	c := &apiv1.Content{Header: []apiv1.Header{}, Body: v.Body, BodyType: v.BodyType, Truncated: v.Truncated, Parts: []apiv1.Part{}}
	for _, h := range v.Header {
		c.Header = append(c.Header, apiv1.Header{Name: h.Name, Value: h.Value})
	}
	for _, p := range v.Parts {
		c.Parts = append(c.Parts, apiv1.Part{Type: p.Type, Filename: p.Filename, Size: p.Size})
	}
	return c
}

// TargetOf is a lock target.
func TargetOf(t identity.Target) apiv1.Target {
	return apiv1.Target{Kind: string(t.Kind), Domain: t.Domain, Name: t.Name}
}

// EvidenceOf is what made an automatic lock; nil for nil.
func EvidenceOf(e *identity.Evidence) *apiv1.Evidence {
	if e == nil {
		return nil
	}
	v := evidenceOf(*e)
	return &v
}

func evidenceOf(e identity.Evidence) apiv1.Evidence {
	return apiv1.Evidence{User: e.User, Counter: e.Counter, Count: e.Count, Threshold: e.Threshold, Window: e.Window,
		TxIDs: slices.Clone(e.TxIDs), Counts: maps.Clone(e.Counts), At: e.At}
}

// LockOf is a lock with its state at now.
func LockOf(l identity.Lock, now time.Time) apiv1.Lock {
	return apiv1.Lock{LockRecord: lockRecordOf(l), State: l.State(now).String()}
}

func lockRecordOf(l identity.Lock) apiv1.LockRecord {
	return apiv1.LockRecord{Target: TargetOf(l.Target), Reason: l.Reason, Actor: l.Actor, Automatic: l.Automatic,
		Escalated: l.Escalated, Start: l.Start, Expires: l.Expires, Evidence: EvidenceOf(l.Evidence),
		Unlocked: l.Unlocked, UnlockedBy: l.UnlockedBy, UnlockReason: l.UnlockReason}
}

// HistoryOf is a lock target's history, [] rather than null.
func HistoryOf(h []identity.HistoryEntry) []apiv1.HistoryEntry {
	out := make([]apiv1.HistoryEntry, 0, len(h))
	for _, e := range h {
		out = append(out, apiv1.HistoryEntry{Action: string(e.Action), At: e.At, Actor: e.Actor, Reason: e.Reason,
			Automatic: e.Automatic, Expires: e.Expires, Evidence: EvidenceOf(e.Evidence)})
	}
	return out
}

// UsageOf is an identity's usage against its thresholds.
func UsageOf(u identity.Usage) apiv1.Usage {
	out := apiv1.Usage{Domain: u.Domain, Identity: u.Identity, User: u.User, LastSeen: u.LastSeen,
		Counters: make([]apiv1.CounterUsage, 0, len(u.Counters))}
	for _, c := range u.Counters {
		out.Counters = append(out.Counters, apiv1.CounterUsage{Counter: c.Counter, Count: c.Count, Threshold: c.Threshold, Window: c.Window})
	}
	if u.Lock != nil {
		l := lockRecordOf(*u.Lock)
		out.Lock = &l
	}
	return out
}

// WouldLockOf is a monitor-mode crossing.
func WouldLockOf(w identity.WouldLock) apiv1.WouldLock {
	return apiv1.WouldLock{ID: w.ID, Target: TargetOf(w.Target), At: w.At, Evidence: evidenceOf(w.Evidence)}
}

// FeedbackResultOf is what the intake made of a report. A refused report
// (not feedback) shows only its parse result.
func FeedbackResultOf(r feedback.Result) apiv1.FeedbackResult {
	p := r.Parse
	out := apiv1.FeedbackResult{File: p.File, OK: p.OK, Error: p.Error, Detail: p.Detail, Warnings: slices.Clone(p.Warnings),
		Profile: p.Profile, FeedbackType: p.FeedbackType, Version: p.Version, UserAgent: p.UserAgent,
		OriginalMailFrom: p.OriginalMailFrom, OriginalRcptTo: slices.Clone(p.OriginalRcptTo), ArrivalDate: p.ArrivalDate,
		SourceIP: p.SourceIP, SourcePort: p.SourcePort, ReportedDomain: slices.Clone(p.ReportedDomain),
		ReportedURI: slices.Clone(p.ReportedURI), Incidents: p.Incidents, MessageID: p.MessageID}
	if !p.OK {
		return out
	}
	out.ID, out.Attribution, out.Attributed = r.ID, r.Method, r.Attributed()
	out.TxID, out.User, out.Domain, out.Identity = r.TxID, r.User, r.Domain, r.Identity
	out.Counted, out.NotCounted, out.Locked = r.Counted, r.NotCounted, r.Locked
	out.Reporter, out.Duplicate, out.DuplicateOf = r.Reporter, r.Duplicate, r.DuplicateOf
	out.Received, out.Source = r.Received, r.Source
	return out
}

// LearnResultOf is what a learning step did.
func LearnResultOf(r ops.LearnResult) apiv1.LearnResult {
	return apiv1.LearnResult{ID: r.ID, As: r.As, Before: r.Before, After: r.After, Version: r.Version}
}

// ModelInfoOf describes the content model.
func ModelInfoOf(m ops.ModelInfo) apiv1.ModelInfo {
	o := m.Overlay
	return apiv1.ModelInfo{Overlay: apiv1.Overlay{Seed: o.Seed, Version: o.Version, Updates: o.Updates, Learned: o.Learned,
		Features: o.Features, MaxFeatures: o.MaxFeatures}, SeedFeatures: m.SeedFeatures, Trained: m.Trained,
		SpamThreshold: m.SpamThreshold, SuspectThreshold: m.SuspectThreshold}
}

// CampaignOf is a listed campaign.
func CampaignOf(c ops.Campaign) apiv1.Campaign {
	return apiv1.Campaign{ID: c.ID, FirstSeen: c.FirstSeen, LastSeen: c.LastSeen, Messages: c.Messages,
		Recipients: c.Recipients, Blocked: c.Blocked, Identities: c.Identities, Users: c.Users,
		Verdicts:  apiv1.CampaignVerdicts{Clean: c.Verdicts.Clean, Suspect: c.Verdicts.Suspect, Spam: c.Verdicts.Spam},
		Confirmed: c.Confirmed, ConfirmedBy: c.ConfirmedBy, ConfirmedAt: c.ConfirmedAt, SampleTx: c.SampleTx}
}

// CampaignDetailOf is a campaign with the identities the caller may see.
func CampaignDetailOf(d ops.CampaignDetail) apiv1.CampaignDetail {
	out := apiv1.CampaignDetail{Campaign: CampaignOf(d.Campaign), Members: make([]apiv1.CampaignMember, 0, len(d.Members)),
		HiddenIdentities: d.HiddenIdentities}
	for _, m := range d.Members {
		out.Members = append(out.Members, apiv1.CampaignMember{Domain: m.Domain, Identity: m.Identity, User: m.User,
			Messages: m.Messages, Recipients: m.Recipients, LastSeen: m.LastSeen, LastTx: m.LastTx, Locked: m.Locked})
	}
	return out
}

// CampaignLockResultOf is what locking a campaign's identities did.
func CampaignLockResultOf(r ops.CampaignLockResult, now time.Time) apiv1.CampaignLockResult {
	out := apiv1.CampaignLockResult{Campaign: r.Campaign, Locked: make([]apiv1.Lock, 0, len(r.Locked)),
		Skipped: make([]apiv1.CampaignSkip, 0, len(r.Skipped)), SkippedOtherDomains: r.SkippedOtherDomains}
	for _, l := range r.Locked {
		out.Locked = append(out.Locked, LockOf(l, now))
	}
	for _, s := range r.Skipped {
		out.Skipped = append(out.Skipped, apiv1.CampaignSkip{Domain: s.Domain, Identity: s.Identity, Reason: s.Reason})
	}
	return out
}

// AuditEntryOf is an entry of the audit trail.
func AuditEntryOf(e ops.AuditEntry) apiv1.AuditEntry {
	return apiv1.AuditEntry{ID: e.ID, At: e.At, Actor: e.Actor, Scope: e.Scope, Action: e.Action,
		Target: apiv1.AuditTarget{Kind: e.Target.Kind, Domain: e.Target.Domain, Name: e.Target.Name}, Reason: e.Reason, Detail: e.Detail, Node: e.Node}
}

// ReleaseOf is what a release did.
func ReleaseOf(r ops.Released) apiv1.ReleaseResponse {
	out := apiv1.ReleaseResponse{ID: r.ID, ReleasedAt: r.At, ReleasedBy: r.By, ReleaseReason: r.Reason, Already: r.Already}
	if r.Learned != nil {
		l := LearnResultOf(*r.Learned)
		out.Learned = &l
	}
	return out
}

// DeleteOf is what a deletion did.
func DeleteOf(d ops.Deleted) apiv1.DeleteResponse {
	return apiv1.DeleteResponse{ID: d.ID, Deleted: true, Already: d.Already, DeletedAt: d.At, DeletedBy: d.By}
}

// ReportRowOf is a report group.
func ReportRowOf(r ops.ReportRow) apiv1.ReportRow {
	return apiv1.ReportRow{Domain: r.Domain, Key: r.Key, Count: r.Count, Locked: r.Locked}
}

// NoticeOf is the wire form of a customer notice; Domain and Identity are
// the caller's to set.
func NoticeOf(n ops.Notice) apiv1.Notice {
	return apiv1.Notice{To: n.To, Subject: n.Subject, Body: n.Body, Sample: n.Sample, Digest: n.Digest}
}
