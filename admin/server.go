// Package admin serves outguard's HTTP side on the admin listener:
// Prometheus metrics, health and readiness. The admin API (admin/api) and
// the web console (admin/console), two front ends of the operations layer
// (admin/ops), mount on it; docs/architecture.md describes the admin
// packages.
//
// # Overview
//
// New builds the handler tree; Start listens; Stop shuts down. The
// endpoints of this package need no token: /metrics, /-/healthy and
// /-/ready, which change nothing. api.New builds the token-authenticated
// JSON API, mounted with API.Mount at /api/v1/ and at /-/reload (a
// reload needs a token of scope all: docs/api.md), and console.New the
// web console mounted at "/".
package admin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options configure the admin server.
type Options struct {
	// Address is host:port to listen on.
	Address string
	// TLSConfig, when set, serves HTTPS.
	TLSConfig *tls.Config
	// Gatherer provides /metrics.
	Gatherer prometheus.Gatherer
	// Ready reports whether outguard accepts mail; nil means always.
	Ready func() error
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Server is the admin HTTP server.
type Server struct {
	opts Options
	mux  *http.ServeMux
	srv  *http.Server
	ln   net.Listener
}

// New returns a server with the built-in endpoints registered.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Server{opts: o, mux: http.NewServeMux()}
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{ErrorLog: slogPrintln{o.Logger}}))
	s.mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "outguard is healthy")
	})
	s.mux.HandleFunc("GET /-/ready", func(w http.ResponseWriter, r *http.Request) {
		if o.Ready != nil {
			if err := o.Ready(); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "outguard is ready")
	})
	return s
}

// Handle registers an additional handler (API, console).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Handler returns the root handler, for tests.
func (s *Server) Handler() http.Handler { return s.mux }

// Start listens and serves in the background.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.opts.Address)
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	if s.opts.TLSConfig != nil {
		ln = tls.NewListener(ln, s.opts.TLSConfig)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.opts.Logger.Error("admin listener stopped", "err", err)
		}
	}()
	s.opts.Logger.Info("admin listening", "address", ln.Addr().String(), "tls", s.opts.TLSConfig != nil)
	return nil
}

// Addr returns the bound address once started.
func (s *Server) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Stop shuts the server down, waiting for requests until ctx ends.
func (s *Server) Stop(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	return s.srv.Shutdown(ctx)
}

type slogPrintln struct{ l *slog.Logger }

func (p slogPrintln) Println(v ...any) { p.l.Error(fmt.Sprint(v...), "component", "metrics") }
