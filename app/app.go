// Package app wires outguard's components together: it maps the
// configuration onto each component's Options, opens the database, starts
// the listeners and stops everything in order.
//
// # Overview
//
// New builds an App from a loaded configuration; Start opens the bbolt
// file and the listeners; Reload swaps in a new configuration (users,
// policies, admin tokens, the listeners' TLS certificates) without
// dropping connections, one reload at a time; Stop drains and closes, and is
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

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	bolt "go.etcd.io/bbolt"

	"github.com/outguard/outguard/admin"
	"github.com/outguard/outguard/admin/console"
	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/arf"
	"github.com/outguard/outguard/campaign"
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
	// Listeners are sockets already listening, passed by systemd's socket
	// activation (docs/install.md), by SMTP listener name: a listener with
	// a socket here serves it instead of opening its address. Each must
	// name a configured listener.
	Listeners map[string][]net.Listener
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
	// reloadMu serialises reloads (SIGHUP, POST /-/reload and the API's
	// reload): each reads the file and applies all of it before the next
	// starts, so two reloads cannot interleave their parts.
	reloadMu      sync.Mutex
	certs         servedCerts
	reloadMetrics *reloadMetrics

	auth    *authenticator
	metrics *smtpd.Metrics
	db      *bolt.DB
	// pg is the shared store of store.backend postgres; nil on bbolt.
	pg             *pgxpool.Pool
	pgStop, pgDone chan struct{}
	// pgLoops counts the other loops that stop with pgStop.
	pgLoops sync.WaitGroup
	// slotMetrics are the classification slots' gauges, registered once.
	slotMetrics *slotMetrics
	nextHop     smtpd.NextHop
	smtp        *smtpd.Server
	admin       *admin.Server
	smtpAddr    []net.Addr

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
	ops     *ops.Ops
	// console is the web console, whose OpenID Connect sign-in a reload
	// changes.
	console *console.Console
	// campaigns groups near-duplicate content across identities
	// (docs/campaigns.md); nil when campaign detection is off.
	campaigns *campaign.Store
	// detect runs the baseline and campaign signals.
	detect *detection

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
	if o.Config.Store.Backend == config.StoreBackendPostgres {
		// A fleet's log lines say which node wrote them.
		a.log = a.log.With("node_name", o.Config.NodeName)
	}
	if err := CheckTrialCredentials(o.Config); err != nil {
		return nil, err
	}
	a.auth = &authenticator{verifier: passwd.NewVerifierWith(passwd.VerifierOptions{
		CacheSize: 10000, MemoryBudget: o.Config.Limits.AuthMemoryBytes})}
	users, err := buildUsers(o.Config, nil)
	if err != nil {
		return nil, err
	}
	a.auth.table.Store(users)
	a.metrics = smtpd.NewMetrics(a.reg)
	a.reloadMetrics = newReloadMetrics(a.reg, o.Now())
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
	// outguard_node_info maps each scrape target to its node_name, on
	// either backend: the Grafana dashboard's node variable joins on it
	// (contrib/grafana).
	prometheus.WrapRegistererWith(prometheus.Labels{"node": cfg.NodeName}, a.reg).MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "outguard_node_info",
		Help: "1 for the node this process is, labelled with its node_name.",
	}, func() float64 { return 1 }))
	pg, err := a.openPostgres(cfg)
	if err != nil {
		a.closeAll()
		return err
	}
	a.pg = pg

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
		Hostname:              cfg.Hostname,
		Auth:                  a.auth,
		Policy:                a.pipeline,
		NextHop:               nh,
		IsFeedbackAddress:     a.isFeedbackAddress,
		NewID:                 quarantine.NewID,
		MaxMessageBytes:       cfg.Limits.MaxMessageBytes,
		MaxRecipients:         cfg.Limits.MaxRecipients,
		MaxRcptRefusals:       cfg.Limits.MaxRefusedRecipients,
		MaxLineLength:         cfg.Limits.MaxLineLength,
		MaxDataLineLength:     cfg.Limits.MaxDataLineLength,
		MaxHeaderBytes:        cfg.Limits.MaxHeaderBytes,
		IdleTimeout:           cfg.Limits.IdleTimeout.D(),
		IdleTimeoutBeforeMail: cfg.Limits.IdleTimeoutBeforeMail.D(),
		SessionTimeout:        cfg.Limits.SessionTimeout.D(),
		MaxConnections:        cfg.Limits.MaxConnections,
		MaxConnectionsPerIP:   cfg.Limits.MaxConnectionsPerIP,
		IPv6PrefixLength:      cfg.Limits.IPv6PrefixLength,
		AuthFailuresMax:       cfg.Limits.AuthFailures.Max,
		AuthFailuresWindow:    cfg.Limits.AuthFailures.Window.D(),
		SpoolThreshold:        cfg.Limits.SpoolThreshold,
		MessageMemoryBytes:    cfg.Limits.MessageMemoryBytes,
		SpoolDir:              filepath.Join(cfg.DataDir, "spool"),
		Logger:                a.log,
		Metrics:               a.metrics,
		Now:                   a.opts.Now,
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
	a.certs = servedCerts{smtp: map[string]*tlsutil.Cert{}, dataDir: cfg.DataDir}
	configured := map[string]bool{}
	for _, l := range cfg.Listeners {
		configured[l.Name] = true
	}
	for name, socks := range a.opts.Listeners {
		if !configured[name] {
			a.closeAll()
			return fmt.Errorf("systemd passed a socket named %q, but no listener has that name: set FileDescriptorName= in the .socket unit to a listener's name", name)
		}
		if len(socks) != 1 {
			a.closeAll()
			return fmt.Errorf("systemd passed %d sockets for listener %q: give each listener one socket", len(socks), name)
		}
	}
	for _, l := range cfg.Listeners {
		lo := smtpd.ListenerOptions{Name: l.Name, Address: l.Address, AllowInsecureAuth: l.AllowInsecureAuth, Feedback: l.Feedback,
			MaxConnections: l.MaxConnections, MaxConnectionsPerIP: l.MaxConnectionsPerIP, IdleTimeoutBeforeMail: l.IdleTimeoutBeforeMail.D()}
		if l.TLS != "none" {
			tc, err := a.listenerTLS(cfg, l)
			if err != nil {
				a.closeAll()
				return err
			}
			lo.TLSConfig, lo.Implicit = tc, l.TLS == "implicit"
		}
		var addr net.Addr
		var err error
		if socks := a.opts.Listeners[l.Name]; len(socks) == 1 {
			addr, err = srv.Serve(socks[0], lo)
			a.log.Info("serving a socket passed by systemd", "listener", l.Name, "address", addr)
		} else {
			addr, err = srv.Listen(lo)
		}
		if err != nil {
			a.closeAll()
			return err
		}
		a.smtpAddr = append(a.smtpAddr, addr)
	}

	var adminTLS *tls.Config
	if cfg.Admin.CertFile != "" {
		cert, err := tlsutil.LoadPair(cfg.Admin.CertFile, cfg.Admin.KeyFile)
		if err != nil {
			a.closeAll()
			return fmt.Errorf("admin certificate: %w", err)
		}
		a.certs.admin = tlsutil.NewCert(cert)
		adminTLS = a.certs.admin.Config()
	}
	a.admin = admin.New(admin.Options{
		Address:   cfg.Admin.Address,
		TLSConfig: adminTLS,
		Gatherer:  a.reg,
		Ready: func() error {
			if a.smtp.Draining() {
				return errors.New("shutting down")
			}
			// A store that cannot keep records (a failed disk write, or
			// PostgreSQL out of reach with the node's spool full) makes
			// every transaction a 4xx: a load balancer should send mail
			// elsewhere until it recovers. PostgreSQL out of reach alone
			// does not: the node spools and relays, and a 503 from every
			// node of the fleet at once would stop all mail
			// (docs/config-store.md).
			if a.store != nil {
				if err := a.store.Writable(); err != nil {
					return fmt.Errorf("store: %w", err)
				}
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
		NoChunking:         nh.Chunking != nil && !*nh.Chunking,
		Metrics:            a.metrics,
	})
}

// listenerTLS loads listener l's certificate and returns a TLS
// configuration that serves it until a reload swaps in a new one.
func (a *App) listenerTLS(cfg *config.Config, l config.Listener) (*tls.Config, error) {
	cert, err := a.loadListenerCert(cfg.DataDir, cfg.Hostname, l)
	if err != nil {
		return nil, err
	}
	c := tlsutil.NewCert(cert)
	a.certs.smtp[l.Name] = c
	return c.Config(), nil
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
// error the running configuration stays and the error says why. Reloads
// run one at a time, the file read included, so the last reload to
// start applies the newest file.
func (a *App) ReloadFromFile() error {
	if a.opts.ConfigPath == "" {
		return errors.New("no configuration file to reload")
	}
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	cfg, err := config.Load(a.opts.ConfigPath)
	if err != nil {
		a.log.Error("reload failed, keeping the running configuration", "err", err)
		a.reloadMetrics.observe(err, a.opts.Now())
		return err
	}
	return a.reload(cfg)
}

// Reload applies cfg: users, networks, policies and admin tokens take
// effect for new transactions and requests, and the listeners'
// certificates are read again from their files for new TLS handshakes.
// Settings read only at start are reported. On error nothing changes.
// Reloads run one at a time.
func (a *App) Reload(cfg *config.Config) error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	return a.reload(cfg)
}

// reload is Reload under reloadMu.
func (a *App) reload(cfg *config.Config) error {
	err := a.apply(cfg)
	a.reloadMetrics.observe(err, a.opts.Now())
	return err
}

// apply swaps in every part of cfg that a reload changes, or nothing.
func (a *App) apply(cfg *config.Config) error {
	if err := CheckTrialCredentials(cfg); err != nil {
		a.log.Error("reload failed, keeping the running configuration", "err", err)
		return err
	}
	certs, err := a.loadCerts(cfg)
	if err != nil {
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
	users, err := buildUsers(cfg, a.auth.table.Load())
	if err != nil {
		a.log.Error("outgoing users not reloaded, keeping the old ones", "err", err)
	} else {
		a.auth.table.Store(users)
	}
	if a.ops != nil {
		if err := a.ops.SetTokens(adminTokens(cfg)); err != nil {
			a.log.Error("admin tokens not reloaded, keeping the old ones", "err", err)
		}
		accounts, err := adminAccounts(cfg)
		if err == nil {
			err = a.ops.SetAccounts(accounts)
		}
		if err != nil {
			a.log.Error("admin accounts not reloaded, keeping the old ones", "err", err)
		}
	}
	if a.console != nil {
		o, err := adminOIDC(cfg)
		if err == nil {
			err = a.console.SetOIDC(o)
		}
		if err != nil {
			a.log.Error("admin OIDC sign-in not reloaded, keeping the old one", "err", err)
		}
	}
	a.swapCerts(certs)
	for _, what := range restartOnly(old, cfg) {
		a.log.Warn("configuration change needs a restart to take effect", "setting", what)
	}
	a.log.Info("configuration reloaded")
	return nil
}

func restartOnly(old, cfg *config.Config) []string {
	var out []string
	// Certificate files are read again on reload (docs/config-tls.md).
	withoutCerts := func(ls []config.Listener) string {
		ls = append([]config.Listener(nil), ls...)
		for i := range ls {
			ls[i].CertFile, ls[i].KeyFile = "", ""
		}
		return fmt.Sprint(ls)
	}
	if withoutCerts(old.Listeners) != withoutCerts(cfg.Listeners) {
		out = append(out, "listeners")
	}
	if old.DataDir != cfg.DataDir {
		out = append(out, "data_dir")
	}
	if old.NodeName != cfg.NodeName {
		out = append(out, "node_name")
	}
	// next_hop.chunking is a pointer (unset means true): compared by value.
	nextHop := func(nh config.NextHop) string {
		on := nh.Chunking == nil || *nh.Chunking
		nh.Chunking = nil
		return fmt.Sprint(nh, on)
	}
	if nextHop(old.NextHop) != nextHop(cfg.NextHop) {
		out = append(out, "next_hop")
	}
	if old.Admin.Address != cfg.Admin.Address || (old.Admin.CertFile == "") != (cfg.Admin.CertFile == "") {
		out = append(out, "admin.address")
	}
	if old.Admin.SignInThrottle != cfg.Admin.SignInThrottle {
		out = append(out, "admin.sign_in_throttle")
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
	a.closePostgres()
	if a.db != nil {
		a.db.Close()
		a.db = nil
	}
}

// trialPassword and trialToken are the credentials of the shipped example
// configuration (README, "Try it").
const (
	trialPassword = "trial-password"
	trialToken    = "trial-token"
	// trialDeskPassword is the example console account's password
	// (testdata/outguard.example.yaml).
	trialDeskPassword = "trial-desk-password"
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
		for _, ac := range cfg.Admin.Accounts {
			if passwd.Verify(ac.PasswordHash, trialDeskPassword) == nil {
				return fmt.Errorf("admin account %q has the example password %q and admin.address %s is not loopback: set a real password hash with `outguard hash-password`", ac.Name, trialDeskPassword, cfg.Admin.Address)
			}
		}
	}
	return nil
}
