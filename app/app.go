// Package app wires outguard's components together: it maps the
// configuration onto each component's Options, opens the database, starts
// the listeners and stops everything in order.
//
// # Overview
//
// New builds an App from a loaded configuration; Start opens the bbolt
// file and the listeners; Reload swaps in a new configuration (users,
// policies) without dropping connections; Stop drains and closes, and is
// idempotent. cmd/outguard calls these; tests embed an App the same way.
//
// # Caveats
//
// Listener addresses, the data folder and the next hop's address are read
// at Start only; a reload that changes them is logged as needing a
// restart.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	bolt "go.etcd.io/bbolt"

	"github.com/outguard/outguard/admin"
	"github.com/outguard/outguard/arf"
	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/filter"
	"github.com/outguard/outguard/filter/content"
	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/internal/notify"
	"github.com/outguard/outguard/internal/passwd"
	"github.com/outguard/outguard/internal/tlsutil"
	"github.com/outguard/outguard/quarantine"
	"github.com/outguard/outguard/smtpd"
)

// Options configure an App.
type Options struct {
	// Config is the loaded configuration. Required.
	Config *config.Config
	// ConfigPath is re-read by Reload; empty disables reloading.
	ConfigPath string
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Registry receives every metric; default a new registry with the Go
	// and process collectors.
	Registry *prometheus.Registry
	// Version is reported by the ARF User-Agent and logs.
	Version string
	// Now is the clock seam; default time.Now.
	Now func() time.Time
	// Statfs returns the bytes available and the size of the filesystem
	// holding dir, for store.min_free_space; default statfs(2). A test
	// seam.
	Statfs func(dir string) (free, total uint64, err error)
}

// App is a running outguard.
type App struct {
	opts Options
	log  *slog.Logger
	reg  *prometheus.Registry

	mu  sync.Mutex
	cfg *config.Config

	auth     *authenticator
	metrics  *smtpd.Metrics
	db       *bolt.DB
	nextHop  smtpd.NextHop
	smtp     *smtpd.Server
	admin    *admin.Server
	smtpAddr []net.Addr

	ids      *identity.Manager
	store    *quarantine.Store
	outbox   *arf.Outbox
	pipeline *pipeline
	notifier *notify.Notifier
	// filterMetrics outlive the classifiers rebuilt on reload.
	filterMetrics *filter.Metrics
	// learner is the content model with the operator's overlay; it
	// outlives reloads. Nil when the model is disabled at start.
	learner *content.Learner
	api     *admin.API

	stopOnce sync.Once
	stopErr  error
}

// New checks the configuration against what this process can do and
// returns an App ready to Start.
func New(o Options) (*App, error) {
	if o.Config == nil {
		return nil, errors.New("app: Options.Config is required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
		o.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.Statfs == nil {
		o.Statfs = statfs
	}
	a := &App{opts: o, log: o.Logger, reg: o.Registry, cfg: o.Config}
	if err := CheckTrialCredentials(o.Config); err != nil {
		return nil, err
	}
	a.auth = &authenticator{verifier: passwd.NewVerifier(10000)}
	dummy, err := passwd.HashBcrypt(fmt.Sprintf("%d-unknown-user", time.Now().UnixNano()))
	if err != nil {
		return nil, err
	}
	a.auth.dummy = dummy
	a.auth.table.Store(buildUsers(o.Config))
	a.metrics = smtpd.NewMetrics(a.reg)
	return a, nil
}

// Config returns the configuration in force.
func (a *App) Config() *config.Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg
}

// Start opens the database and the listeners.
func (a *App) Start() error {
	cfg := a.Config()
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	dbPath := cfg.Store.Path
	if dbPath == "" {
		dbPath = filepath.Join(cfg.DataDir, "outguard.db")
	}
	db, err := bolt.Open(dbPath, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return fmt.Errorf("opening database %s (is another outguard running on it?): %w", dbPath, err)
	}
	// Batch (the ARF and notification outboxes) answers a 550 only after
	// its commit; bbolt's default 10ms gathering delay would add to every
	// blocked message's reply.
	db.MaxBatchDelay = 2 * time.Millisecond
	a.db = db

	nh, err := a.buildNextHop(cfg)
	if err != nil {
		a.closeAll()
		return err
	}
	a.nextHop = nh
	if err := a.startComponents(cfg); err != nil {
		a.closeAll()
		return err
	}

	srv, err := smtpd.New(smtpd.Options{
		Hostname:            cfg.Hostname,
		Auth:                a.auth,
		Policy:              a.pipeline,
		NextHop:             nh,
		IsFeedbackAddress:   a.isFeedbackAddress,
		NewID:               quarantine.NewID,
		MaxMessageBytes:     cfg.Limits.MaxMessageBytes,
		MaxRecipients:       cfg.Limits.MaxRecipients,
		MaxLineLength:       cfg.Limits.MaxLineLength,
		MaxHeaderBytes:      cfg.Limits.MaxHeaderBytes,
		IdleTimeout:         cfg.Limits.IdleTimeout.D(),
		SessionTimeout:      cfg.Limits.SessionTimeout.D(),
		MaxConnections:      cfg.Limits.MaxConnections,
		MaxConnectionsPerIP: cfg.Limits.MaxConnectionsPerIP,
		AuthFailuresMax:     cfg.Limits.AuthFailures.Max,
		AuthFailuresWindow:  cfg.Limits.AuthFailures.Window.D(),
		SpoolThreshold:      cfg.Limits.SpoolThreshold,
		SpoolDir:            filepath.Join(cfg.DataDir, "spool"),
		Logger:              a.log,
		Metrics:             a.metrics,
		Now:                 a.opts.Now,
	})
	if err != nil {
		a.closeAll()
		return err
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "spool"), 0o700); err != nil {
		a.closeAll()
		return fmt.Errorf("spool folder: %w", err)
	}
	a.smtp = srv
	for _, l := range cfg.Listeners {
		lo := smtpd.ListenerOptions{Name: l.Name, Address: l.Address, AllowInsecureAuth: l.AllowInsecureAuth, Feedback: l.Feedback}
		if l.TLS != "none" {
			tc, err := a.listenerTLS(cfg, l)
			if err != nil {
				a.closeAll()
				return err
			}
			lo.TLSConfig, lo.Implicit = tc, l.TLS == "implicit"
		}
		addr, err := srv.Listen(lo)
		if err != nil {
			a.closeAll()
			return err
		}
		a.smtpAddr = append(a.smtpAddr, addr)
	}

	var adminTLS *tls.Config
	if cfg.Admin.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.Admin.CertFile, cfg.Admin.KeyFile)
		if err != nil {
			a.closeAll()
			return fmt.Errorf("admin certificate: %w", err)
		}
		adminTLS = tlsutil.Config(cert)
	}
	a.admin = admin.New(admin.Options{
		Address:   cfg.Admin.Address,
		TLSConfig: adminTLS,
		Gatherer:  a.reg,
		Reload:    a.ReloadFromFile,
		Ready: func() error {
			if a.smtp.Draining() {
				return errors.New("shutting down")
			}
			return nil
		},
		Logger: a.log,
	})
	if err := a.mountAPI(cfg); err != nil {
		a.closeAll()
		return err
	}
	if err := a.admin.Start(); err != nil {
		a.closeAll()
		return err
	}
	a.log.Info("outguard started", "version", a.opts.Version, "data_dir", cfg.DataDir)
	return nil
}

func (a *App) buildNextHop(cfg *config.Config) (smtpd.NextHop, error) {
	nh := cfg.NextHop
	if nh.Type == "capture" {
		a.log.Warn("next hop is the trial capture folder: relayed mail is written to disk and NOT delivered", "folder", nh.CaptureDir)
		return &smtpd.CaptureNextHop{Dir: nh.CaptureDir}, nil
	}
	return smtpd.NewSMTPNextHop(smtpd.NextHopOptions{
		Address:            nh.Address,
		TLS:                nh.TLS,
		ServerName:         nh.ServerName,
		InsecureSkipVerify: nh.InsecureSkipVerify,
		Username:           nh.Username,
		Password:           nh.Password,
		Helo:               nh.Helo,
		Timeout:            nh.Timeout.D(),
		DataTimeout:        nh.DataTimeout.D(),
		PoolSize:           nh.PoolSize,
		IdleTimeout:        nh.IdleTimeout.D(),
		Metrics:            a.metrics,
	})
}

func (a *App) listenerTLS(cfg *config.Config, l config.Listener) (*tls.Config, error) {
	if l.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(l.CertFile, l.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("listener %s: certificate: %w", l.Name, err)
		}
		return tlsutil.Config(cert), nil
	}
	host, _, _ := net.SplitHostPort(l.Address)
	cert, created, err := tlsutil.LoadOrCreate(filepath.Join(cfg.DataDir, "tls"), cfg.Hostname, host, "localhost")
	if err != nil {
		return nil, fmt.Errorf("listener %s: self-signed certificate: %w", l.Name, err)
	}
	if created {
		a.log.Warn("no certificate configured: made a self-signed one (for trying out only; configure cert_file and key_file for production)",
			"listener", l.Name, "file", filepath.Join(cfg.DataDir, "tls", "selfsigned.crt"))
	} else {
		a.log.Warn("no certificate configured: using the self-signed one (for trying out only)", "listener", l.Name)
	}
	return tlsutil.Config(cert), nil
}

// SMTPAddrs returns the bound SMTP listener addresses, in config order.
func (a *App) SMTPAddrs() []net.Addr { return a.smtpAddr }

// AdminAddr returns the bound admin address.
func (a *App) AdminAddr() net.Addr {
	if a.admin == nil {
		return nil
	}
	return a.admin.Addr()
}

// Registry returns the metrics registry.
func (a *App) Registry() *prometheus.Registry { return a.reg }

// ReloadFromFile re-reads the configuration file and applies it. On any
// error the running configuration stays and the error says why.
func (a *App) ReloadFromFile() error {
	if a.opts.ConfigPath == "" {
		return errors.New("no configuration file to reload")
	}
	cfg, err := config.Load(a.opts.ConfigPath)
	if err != nil {
		a.log.Error("reload failed, keeping the running configuration", "err", err)
		return err
	}
	return a.Reload(cfg)
}

// Reload applies cfg: users, networks and policies take effect for new
// transactions. Settings read only at start are reported.
func (a *App) Reload(cfg *config.Config) error {
	if err := CheckTrialCredentials(cfg); err != nil {
		a.log.Error("reload failed, keeping the running configuration", "err", err)
		return err
	}
	a.mu.Lock()
	old := a.cfg
	a.cfg = cfg
	a.mu.Unlock()
	if err := a.applyPolicy(cfg); err != nil {
		a.mu.Lock()
		a.cfg = old
		a.mu.Unlock()
		a.log.Error("reload failed, keeping the running configuration", "err", err)
		return err
	}
	a.auth.table.Store(buildUsers(cfg))
	if a.api != nil {
		if err := a.api.SetTokens(adminTokens(cfg)); err != nil {
			a.log.Error("admin tokens not reloaded, keeping the old ones", "err", err)
		}
	}
	for _, what := range restartOnly(old, cfg) {
		a.log.Warn("configuration change needs a restart to take effect", "setting", what)
	}
	a.log.Info("configuration reloaded")
	return nil
}

func restartOnly(old, cfg *config.Config) []string {
	var out []string
	if fmt.Sprint(old.Listeners) != fmt.Sprint(cfg.Listeners) {
		out = append(out, "listeners")
	}
	if old.DataDir != cfg.DataDir {
		out = append(out, "data_dir")
	}
	if fmt.Sprint(old.NextHop) != fmt.Sprint(cfg.NextHop) {
		out = append(out, "next_hop")
	}
	if fmt.Sprint(old.Admin.Address, old.Admin.CertFile) != fmt.Sprint(cfg.Admin.Address, cfg.Admin.CertFile) {
		out = append(out, "admin.address")
	}
	if fmt.Sprint(old.Limits) != fmt.Sprint(cfg.Limits) {
		out = append(out, "limits")
	}
	if fmt.Sprint(old.Notify) != fmt.Sprint(cfg.Notify) {
		out = append(out, "notify")
	}
	// min_free_space applies on reload; the rest of store needs a restart.
	oldStore, newStore := old.Store, cfg.Store
	oldStore.MinFreeSpace, newStore.MinFreeSpace = config.FreeSpace{}, config.FreeSpace{}
	if fmt.Sprint(oldStore) != fmt.Sprint(newStore) {
		out = append(out, "store")
	}
	return out
}

// Stop drains the SMTP listeners (transactions in flight get up to the
// configured shutdown timeout), then stops the rest. It is idempotent.
func (a *App) Stop() error {
	a.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), a.Config().ShutdownTimeout.D())
		defer cancel()
		if a.smtp != nil {
			if err := a.smtp.Shutdown(ctx); err != nil {
				a.stopErr = err
				a.log.Warn("shutdown deadline reached", "err", err)
			}
		}
		a.closeAll()
		a.log.Info("outguard stopped")
	})
	return a.stopErr
}

func (a *App) closeAll() {
	if a.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		a.admin.Stop(ctx)
		cancel()
	}
	if c, ok := a.nextHop.(interface{ Close() error }); ok {
		c.Close()
	}
	a.stopComponents()
	if a.db != nil {
		a.db.Close()
		a.db = nil
	}
}

// trialPassword and trialToken are the credentials of the shipped example
// configuration (SPEC §6).
const (
	trialPassword = "trial-password"
	trialToken    = "trial-token"
)

// CheckTrialCredentials refuses a configuration that exposes the trial
// credentials on a non-loopback address.
func CheckTrialCredentials(cfg *config.Config) error {
	exposedSMTP := false
	for _, l := range cfg.Listeners {
		if !config.IsLoopback(l.Address) {
			exposedSMTP = true
		}
	}
	if exposedSMTP {
		for _, d := range cfg.Domains {
			for _, u := range d.Users {
				if u.PasswordHash != "" && passwd.Verify(u.PasswordHash, trialPassword) == nil {
					return fmt.Errorf("user %q has the trial password %q and a listener is not on loopback: set a real password with `outguard hash-password`", u.Name, trialPassword)
				}
			}
		}
	}
	if !config.IsLoopback(cfg.Admin.Address) {
		for _, t := range cfg.Admin.Tokens {
			if passwd.Verify(t.Hash, trialToken) == nil {
				return fmt.Errorf("admin token %q is the trial token %q and admin.address %s is not loopback: make a real token hash with `outguard hash-password`", t.Name, trialToken, cfg.Admin.Address)
			}
		}
	}
	return nil
}
