package app

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/internal/tlsutil"
)

// servedCerts are the certificates the running listeners serve, swapped
// on reload so that a renewed certificate needs no restart
// (docs/config-tls.md). The maps are written at Start only; the
// certificates inside are swapped under App.reloadMu.
type servedCerts struct {
	// smtp holds the certificate of each SMTP listener with TLS, by
	// listener name.
	smtp map[string]*tlsutil.Cert
	// admin is the admin listener's certificate; nil without HTTPS.
	admin *tlsutil.Cert
	// dataDir is the data folder in force (read at Start only), where
	// the self-signed certificate lives.
	dataDir string
}

// loadListenerCert reads listener l's certificate: its cert_file and
// key_file, or the self-signed pair under dataDir (made the first time).
func (a *App) loadListenerCert(dataDir, hostname string, l config.Listener) (tls.Certificate, error) {
	if l.CertFile != "" {
		cert, err := tlsutil.LoadPair(l.CertFile, l.KeyFile)
		if err != nil {
			return cert, fmt.Errorf("listener %s: certificate: %w", l.Name, err)
		}
		return cert, nil
	}
	host, _, _ := net.SplitHostPort(l.Address)
	dir := filepath.Join(dataDir, "tls")
	cert, created, err := tlsutil.LoadOrCreate(dir, hostname, host, "localhost")
	if err != nil {
		return cert, fmt.Errorf("listener %s: self-signed certificate: %w", l.Name, err)
	}
	if created {
		a.log.Warn("no certificate configured: made a self-signed one (for trying out only; configure cert_file and key_file for production)",
			"listener", l.Name, "file", filepath.Join(dir, "selfsigned.crt"))
	} else if a.certs.smtp[l.Name] == nil {
		a.log.Warn("no certificate configured: using the self-signed one (for trying out only)", "listener", l.Name)
	}
	return cert, nil
}

// certSwap is a certificate loaded by a reload, to be served once the
// rest of the configuration applied.
type certSwap struct {
	to   *tlsutil.Cert
	cert tls.Certificate
	what string
}

// loadCerts reads every certificate cfg names for the listeners running
// with TLS. It changes nothing: on error no certificate is swapped and
// the error names each one that could not be loaded. A listener that
// gained TLS since Start needs a restart, which restartOnly reports.
func (a *App) loadCerts(cfg *config.Config) ([]certSwap, error) {
	var swaps []certSwap
	var errs []error
	for _, l := range cfg.Listeners {
		to, ok := a.certs.smtp[l.Name]
		if !ok || l.TLS == "none" {
			continue
		}
		cert, err := a.loadListenerCert(a.certs.dataDir, cfg.Hostname, l)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		swaps = append(swaps, certSwap{to: to, cert: cert, what: "listener " + l.Name})
	}
	if a.certs.admin != nil && cfg.Admin.CertFile != "" {
		cert, err := tlsutil.LoadPair(cfg.Admin.CertFile, cfg.Admin.KeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("admin certificate: %w", err))
		} else {
			swaps = append(swaps, certSwap{to: a.certs.admin, cert: cert, what: "admin"})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("certificates not reloaded, still serving the old ones: %w", err)
	}
	return swaps, nil
}

// swapCerts serves the certificates loadCerts read from the next
// handshake on.
func (a *App) swapCerts(swaps []certSwap) {
	for _, s := range swaps {
		old := s.to.Current()
		s.to.Set(s.cert)
		if old != nil && old.Leaf != nil && s.cert.Leaf != nil && !old.Leaf.Equal(s.cert.Leaf) {
			a.log.Info("certificate renewed", "for", s.what, "subject", s.cert.Leaf.Subject.String(),
				"not_after", s.cert.Leaf.NotAfter)
		}
	}
}

// reloadMetrics report the outcome of the last reload, so that a reload
// that failed (a renewal hook's SIGHUP with a broken certificate, whose
// error only reaches the log) can be alerted on.
type reloadMetrics struct {
	successful  prometheus.Gauge
	successTime prometheus.Gauge
}

func newReloadMetrics(reg prometheus.Registerer, now time.Time) *reloadMetrics {
	f := promauto.With(reg)
	m := &reloadMetrics{
		successful: f.NewGauge(prometheus.GaugeOpts{
			Name: "outguard_config_last_reload_successful",
			Help: "Whether the last configuration reload (SIGHUP or POST /-/reload) succeeded: 1, or 0 while the previous configuration and certificates are kept.",
		}),
		successTime: f.NewGauge(prometheus.GaugeOpts{
			Name: "outguard_config_last_reload_success_timestamp_seconds",
			Help: "When the configuration was last loaded successfully (at start or by a reload), in Unix seconds.",
		}),
	}
	m.successful.Set(1)
	m.successTime.Set(float64(now.Unix()))
	return m
}

// observe records a reload's outcome.
func (m *reloadMetrics) observe(err error, now time.Time) {
	if err != nil {
		m.successful.Set(0)
		return
	}
	m.successful.Set(1)
	m.successTime.Set(float64(now.Unix()))
}
