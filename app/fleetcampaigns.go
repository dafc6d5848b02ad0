package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outguard/outguard/campaign"
)

// On the postgres backend, a campaign confirmed (or withdrawn) on one
// node is confirmed (or withdrawn) on every node (docs/campaigns.md,
// "Several nodes"). Campaign ids are each node's own, so the event
// carries the campaign's exemplar fingerprints, and each node confirms
// what they match in its own store. Events are rows of
// detection_campaign_events; every node reads the new ones each second
// and, at start, all of those younger than the confirmed fingerprints'
// life, so that a node started later blocks what the fleet confirmed.

const (
	// campaignFleetEvery is how often a node sends its events and reads
	// the fleet's.
	campaignFleetEvery = time.Second
	// campaignEventsKept is how long an event is kept: the life of a
	// confirmed fingerprint (campaign.Options.ConfirmedTTL's default,
	// which outguard uses).
	campaignEventsKept = 30 * 24 * time.Hour
	// campaignEventsQueued bounds the events waiting for the database
	// while it is out of reach; past it the oldest is dropped, with an
	// error in the log.
	campaignEventsQueued = 10000
	// campaignEventsSlack is how far back each read looks before the
	// newest event seen, for events committed out of their order.
	campaignEventsSlack = 30 * time.Second
)

// campaignEvent is one confirmation or withdrawal to share.
type campaignEvent struct {
	action string // "confirm" or "unconfirm"
	actor  string
	fps    [][]byte // campaign.Fingerprint encodings
}

// campaignFleet shares a node's campaign confirmations with the fleet.
type campaignFleet struct {
	pool *pgxpool.Pool
	node string
	camp *campaign.Store
	log  *slog.Logger

	mu      sync.Mutex
	queue   []campaignEvent
	applied map[int64]time.Time // events applied, by seq, with their time
	horizon time.Time           // reads take events after this (server time)
	started bool                // the first read (all kept events) is done
	pruned  time.Time

	stop, done chan struct{}
}

func newCampaignFleet(pool *pgxpool.Pool, node string, camp *campaign.Store, log *slog.Logger) *campaignFleet {
	f := &campaignFleet{pool: pool, node: node, camp: camp, log: log,
		applied: map[int64]time.Time{}, stop: make(chan struct{}), done: make(chan struct{})}
	// The first round reads the kept events before the node takes mail.
	ctx, cancel := context.WithTimeout(context.Background(), detectionIOTimeout)
	f.round(ctx)
	cancel()
	go f.loop()
	return f
}

func (f *campaignFleet) loop() {
	defer close(f.done)
	t := time.NewTicker(campaignFleetEvery)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), detectionIOTimeout)
			f.round(ctx)
			cancel()
		}
	}
}

// close stops the loop after one last round that sends what is queued.
func (f *campaignFleet) close() {
	close(f.stop)
	<-f.done
	ctx, cancel := context.WithTimeout(context.Background(), detectionIOTimeout)
	f.send(ctx)
	cancel()
}

// publish queues an event for the fleet. It never waits on the database.
func (f *campaignFleet) publish(action, actor string, fps []campaign.Fingerprint) {
	ev := campaignEvent{action: action, actor: actor}
	for i := range fps {
		b, err := fps[i].MarshalBinary()
		if err != nil {
			continue
		}
		ev.fps = append(ev.fps, b)
	}
	if len(ev.fps) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.queue) >= campaignEventsQueued {
		f.log.Error("campaign fleet: too many confirmations wait for the database; dropping the oldest, which the other nodes will not see",
			"queued", len(f.queue), "dropped_action", f.queue[0].action, "dropped_actor", f.queue[0].actor)
		f.queue = f.queue[1:]
	}
	f.queue = append(f.queue, ev)
}

// round sends the queued events, applies the fleet's new ones and,
// hourly, drops the events past their life.
func (f *campaignFleet) round(ctx context.Context) {
	f.send(ctx)
	if err := f.read(ctx); err != nil {
		f.log.Warn("campaign fleet: reading the fleet's confirmations", "err", err)
	}
	if time.Since(f.pruned) > time.Hour {
		if _, err := f.pool.Exec(ctx, "DELETE FROM detection_campaign_events WHERE at < now() - $1::interval",
			fmt.Sprintf("%d seconds", int64(campaignEventsKept/time.Second))); err != nil {
			f.log.Warn("campaign fleet: dropping old events", "err", err)
		} else {
			f.pruned = time.Now()
		}
	}
}

// send writes the queued events, in their order; what fails stays queued.
func (f *campaignFleet) send(ctx context.Context) {
	f.mu.Lock()
	q := f.queue
	f.queue = nil
	f.mu.Unlock()
	for i, ev := range q {
		_, err := f.pool.Exec(ctx, `INSERT INTO detection_campaign_events (node, action, actor, fingerprints)
			VALUES ($1, $2, $3, $4)`, f.node, ev.action, ev.actor, ev.fps)
		if err != nil {
			f.log.Warn("campaign fleet: sharing a confirmation", "action", ev.action, "err", err)
			f.mu.Lock()
			f.queue = append(q[i:len(q):len(q)], f.queue...)
			f.mu.Unlock()
			return
		}
	}
}

// read applies the events after the horizon that this node has not
// applied, in their order. At start it applies this node's own too (its
// saved campaign state may be older than its last events); later they are
// already applied.
func (f *campaignFleet) read(ctx context.Context) error {
	since := f.horizon
	if !f.started {
		since = time.Now().Add(-campaignEventsKept)
	}
	rows, err := f.pool.Query(ctx, `SELECT seq, at, node, action, actor, fingerprints
		FROM detection_campaign_events WHERE at > $1 ORDER BY seq`, since)
	if err != nil {
		return err
	}
	defer rows.Close()
	newest := f.horizon
	for rows.Next() {
		var (
			seq                 int64
			at                  time.Time
			node, action, actor string
			fps                 [][]byte
		)
		if err := rows.Scan(&seq, &at, &node, &action, &actor, &fps); err != nil {
			return err
		}
		if at.After(newest) {
			newest = at
		}
		if _, done := f.applied[seq]; done {
			continue
		}
		f.applied[seq] = at
		if node == f.node && f.started {
			continue
		}
		f.apply(action, actor, fps)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	f.started = true
	f.horizon = newest.Add(-campaignEventsSlack)
	for seq, at := range f.applied {
		if at.Before(f.horizon) {
			delete(f.applied, seq)
		}
	}
	return nil
}

func (f *campaignFleet) apply(action, actor string, encs [][]byte) {
	for _, b := range encs {
		var fp campaign.Fingerprint
		if err := fp.UnmarshalBinary(b); err != nil {
			f.log.Warn("campaign fleet: an unreadable fingerprint in the fleet's confirmations", "err", err)
			continue
		}
		switch action {
		case "confirm":
			if id, err := f.camp.ConfirmMessage(&fp, actor); err == nil {
				f.log.Debug("campaign fleet: confirmed", "campaign", id, "by", actor)
			}
		case "unconfirm":
			if id := f.camp.UnconfirmMatching(&fp); id != "" {
				f.log.Debug("campaign fleet: withdrawn", "campaign", id)
			}
		}
	}
}
