package app

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/outguard/outguard/config"
)

// Replies of the storage checks (docs/config-store.md).
var (
	replyLowSpace = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "Insufficient system storage"}
	replyNoLog    = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Message log unavailable, try again later"}
	// replyNoQuarantine answers mail that would be quarantined while
	// PostgreSQL, which keeps the quarantine, is out of reach.
	replyNoQuarantine = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Message store unavailable, cannot quarantine; try again later"}
)

// dataDisk keeps store.min_free_space on the filesystem of the database:
// MAIL is refused with 452 4.3.1 while less is free, so that outguard
// takes no message it may not be able to record.
type dataDisk struct {
	dir     string
	reserve atomic.Pointer[config.FreeSpace]
	// statfs returns the bytes available and the filesystem's size.
	statfs func(dir string) (free, total uint64, err error)
	log    *slog.Logger

	low atomic.Bool // below the reserve at the last check
	// roomy is until when a reading far above the reserve stands for
	// the next checks (see check): UnixNano, 0 when none does.
	roomy    atomic.Int64
	now      func() time.Time
	warned   atomic.Bool // statfs failed and was logged
	refusals *prometheus.CounterVec
}

func newDataDisk(dir string, reserve config.FreeSpace, statfs func(string) (uint64, uint64, error), reg prometheus.Registerer, log *slog.Logger) *dataDisk {
	d := &dataDisk{dir: dir, statfs: statfs, log: log, now: time.Now}
	d.reserve.Store(&reserve)
	f := promauto.With(reg)
	d.refusals = f.NewCounterVec(prometheus.CounterOpts{
		Name: "outguard_storage_refusals_total",
		Help: "Transactions refused for storage: low_space (452 4.3.1 at MAIL, below store.min_free_space), log_unwritable (451 4.3.0, the message log cannot be written), quarantine_unavailable (451 4.3.0 after DATA: the message would be quarantined but PostgreSQL is out of reach).",
	}, []string{"reason"})
	for _, r := range []string{"low_space", "log_unwritable", "quarantine_unavailable"} {
		d.refusals.WithLabelValues(r)
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "outguard_store_free_bytes",
		Help: "Bytes available on the filesystem of the database.",
	}, func() float64 {
		free, _, err := d.statfs(d.dir)
		if err != nil {
			return -1
		}
		return float64(free)
	})
	return d
}

// Reading the free space costs a system call; a reading with at least
// roomyMargin more than the reserve stands for the checks of the next
// roomyFor. Filling the margin within that time takes 1 GiB/s of writes,
// more than a relay's log and spool write; near the reserve every check
// reads again.
const (
	roomyMargin = 1 << 30
	roomyFor    = time.Second
)

// setReserve applies a reloaded store.min_free_space from the next check.
func (d *dataDisk) setReserve(r config.FreeSpace) {
	d.reserve.Store(&r)
	d.roomy.Store(0)
}

// check returns replyLowSpace while the free space is below the reserve,
// and logs the changes between the two states.
func (d *dataDisk) check() *smtp.SMTPError {
	now := d.now().UnixNano()
	if until := d.roomy.Load(); until != 0 && now < until {
		return nil
	}
	free, total, err := d.statfs(d.dir)
	if err != nil {
		if d.warned.CompareAndSwap(false, true) {
			d.log.Warn("cannot read the free space of the data filesystem; store.min_free_space is not enforced", "dir", d.dir, "err", err)
		}
		return nil
	}
	reserve := d.reserve.Load().Of(total)
	if free >= reserve+roomyMargin {
		d.roomy.Store(now + int64(roomyFor))
	} else {
		d.roomy.Store(0)
	}
	if free >= reserve {
		if d.low.CompareAndSwap(true, false) {
			d.log.Warn("free space on the data filesystem back above store.min_free_space; accepting mail", "dir", d.dir, "free_bytes", free, "min_free_bytes", reserve)
		}
		return nil
	}
	if d.low.CompareAndSwap(false, true) {
		d.log.Error("free space on the data filesystem below store.min_free_space; refusing mail with 452 4.3.1 until there is more", "dir", d.dir, "free_bytes", free, "min_free_bytes", reserve)
	}
	d.refusals.WithLabelValues("low_space").Inc()
	return replyLowSpace
}

// storage refuses a transaction that could not be recorded: 452 4.3.1
// below the free-space reserve, 451 4.3.0 while the message log cannot be
// written (quarantine.Store.Writable).
func (p *pipeline) storage() *smtp.SMTPError {
	if p.disk == nil {
		return nil
	}
	if r := p.disk.check(); r != nil {
		return r
	}
	if err := p.store.Writable(); err != nil {
		p.disk.refusals.WithLabelValues("log_unwritable").Inc()
		return replyNoLog
	}
	return nil
}
