package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/httpapi"
	"github.com/strata-events/strata/ledger"
)

// defaultAddr is where strata serve listens unless --addr or STRATA_ADDR say otherwise.
const defaultAddr = "127.0.0.1:8080"

// schemaReloadEvery is how often strata serve reads the declared event schemas again, so that
// a declaration (strata schema set) made while it runs applies to its appends within that time.
const schemaReloadEvery = 5 * time.Second

type serveFlags struct {
	addr            string
	tlsCert, tlsKey string
	signKey         string
	checkpointEvery time.Duration
	maxBody         int64
	requestTimeout  time.Duration
	shutdownTimeout time.Duration
	logFormat       string
	traceLog        bool
	transmitters    string // --transmitters: transmitters file (issue 9)
}

func newServeCmd(g *globals) *cobra.Command {
	var fl serveFlags
	c := &cobra.Command{
		Use:   "serve [--addr HOST:PORT] [--tls-cert FILE --tls-key FILE] [--key LOG.key]",
		Short: "Serve the store over HTTP: JSON API, live subscriptions, metrics, web explorer",
		Long: `Serve the store over HTTP: the JSON API (docs/HTTP.md, docs/openapi.json), Server-Sent Events
subscriptions, /healthz, /readyz, /metrics and the web explorer at /. Requests need an API key
(strata apikey create). With --key (or STRATA_SIGNING_KEY) the server also seals the log into the
ledger continuously and signs a checkpoint every --checkpoint-every; with --transmitters FILE it
delivers events to brokers and webhooks (docs/DELIVERY.md).

On SIGINT or SIGTERM it stops accepting connections, ends subscriptions with a resumable cursor,
finishes the requests in flight (every acknowledged append is committed) and exits. Requests
still in flight after --shutdown-timeout, or at a second SIGINT or SIGTERM, are cut, and serve
exits 5.`,
		Example: `  strata apikey create --role writer --tenant acme-ca
  strata serve --db postgres://... --addr :8080 --key ca-log.key`,
		Args: argsExactly(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error { return serve(cmd, g, fl) },
	}
	f := c.Flags()
	f.StringVar(&fl.addr, "addr", "", "listen address (env STRATA_ADDR; default "+defaultAddr+")")
	f.StringVar(&fl.tlsCert, "tls-cert", "", "TLS certificate file (PEM); serve HTTPS with --tls-key")
	f.StringVar(&fl.tlsKey, "tls-key", "", "TLS private key file (PEM)")
	f.StringVar(&fl.signKey, "key", "", "ledger signer key file: seal continuously and sign checkpoints (env STRATA_SIGNING_KEY)")
	f.DurationVar(&fl.checkpointEvery, "checkpoint-every", time.Minute, "how often to sign a checkpoint when the tree has grown")
	f.Int64Var(&fl.maxBody, "max-body", httpapi.DefaultMaxBodyBytes, "largest request body, in bytes")
	f.DurationVar(&fl.requestTimeout, "request-timeout", httpapi.DefaultRequestTimeout, "time limit of one request (subscriptions excepted)")
	f.DurationVar(&fl.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long shutdown waits for requests in flight")
	f.StringVar(&fl.logFormat, "log-format", "json", "access log format: json or text")
	f.StringVar(&fl.transmitters, "transmitters", "", "run the transmitters of this file (docs/DELIVERY.md; env STRATA_TRANSMITTERS)")
	f.BoolVar(&fl.traceLog, "trace-log", false, "log every finished trace span (OpenTelemetry) at debug level")
	return c
}

func serve(cmd *cobra.Command, g *globals, fl serveFlags) (err error) {
	const op = "serve"
	if (fl.tlsCert == "") != (fl.tlsKey == "") {
		return invalidf(op, "--tls-cert and --tls-key go together")
	}
	if fl.maxBody <= 0 {
		return invalidf(op, "--max-body must be 1 byte or more")
	}
	if fl.shutdownTimeout <= 0 {
		return invalidf(op, "--shutdown-timeout must be more than 0")
	}
	if fl.requestTimeout <= 0 {
		return invalidf(op, "--request-timeout must be more than 0 (it also bounds reading a request)")
	}
	addr := fl.addr
	if addr == "" {
		addr = g.getenv("STRATA_ADDR")
	}
	if addr == "" {
		addr = defaultAddr
	}
	var logger *slog.Logger
	var hopts *slog.HandlerOptions
	if fl.traceLog {
		hopts = &slog.HandlerOptions{Level: slog.LevelDebug} // the spans are logged at debug level
	}
	switch fl.logFormat {
	case "json":
		logger = slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), hopts))
	case "text":
		logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), hopts))
	default:
		return invalidf(op, "--log-format %q: want json or text", fl.logFormat)
	}
	signKey := fl.signKey
	if signKey == "" {
		signKey = g.getenv("STRATA_SIGNING_KEY")
	}
	var sealOpts []ledger.Option
	if signKey != "" {
		skey, err := readKey(signKey)
		if err != nil {
			return err
		}
		signer, err := ledger.NewSigner(skey)
		if err != nil {
			return err
		}
		sealOpts = append(sealOpts, ledger.WithSigner(signer), ledger.WithCheckpointInterval(fl.checkpointEvery), ledger.WithLogger(logger))
	}

	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	st, d, err := g.open(ctx)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)
	p, haveKEK, err := g.protector(ctx, st)
	if err != nil {
		return err
	}
	tpOpts := []sdktrace.TracerProviderOption{}
	if fl.traceLog {
		tpOpts = append(tpOpts, sdktrace.WithSyncer(spanLogger{logger}))
	}
	tp := sdktrace.NewTracerProvider(tpOpts...)
	defer tp.Shutdown(context.WithoutCancel(ctx))

	reg := prometheus.NewRegistry()
	api, err := httpapi.New(httpapi.Config{
		Store: st, Protector: p, Reveal: haveKEK, Logger: logger, TracerProvider: tp,
		MaxBodyBytes: fl.maxBody, RequestTimeout: fl.requestTimeout, Registerer: reg, Gatherer: reg,
	})
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           api.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       fl.requestTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	srv.RegisterOnShutdown(api.Close)
	scheme := "http"
	if fl.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(fl.tlsCert, fl.tlsKey)
		if err != nil {
			return invalidf(op, "TLS key pair: %v", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		scheme = "https"
	}
	var sealer *ledger.Sealer
	if signKey != "" {
		if sealer, err = ledger.NewSealer(st, sealOpts...); err != nil {
			return err
		}
		// A key that is not the one the log's checkpoints are signed with would fail every
		// checkpoint for as long as the server runs: refuse it now, as strata seal does.
		if _, err := sealer.Checkpoint(ctx); strata.ErrorCode(err) == strata.Invalid {
			return err
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("serve: listen on %s: %w", addr, err)
	}
	useTLS := srv.TLSConfig != nil

	var wg sync.WaitGroup
	bg, cancelBG := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBG()
	if tf := cmp.Or(fl.transmitters, g.getenv("STRATA_TRANSMITTERS")); tf != "" {
		m, err := newTransmitManager(ctx, g, st, tf, logger)
		if err != nil {
			ln.Close()
			return err
		}
		if err := reg.Register(newTransmitCollector(st, m)); err != nil {
			ln.Close()
			return fmt.Errorf("serve: transmitter metrics: %w", err)
		}
		wg.Go(func() { m.Run(bg) }) // each transmitter restarts itself; Run ends with bg
	}
	// strata schema set declares personal data in the database, for every writer: the appends
	// of this server must protect what was declared after it started too.
	wg.Go(func() {
		t := time.NewTicker(schemaReloadEvery)
		defer t.Stop()
		for {
			select {
			case <-bg.Done():
				return
			case <-t.C:
				if err := p.Reload(bg); err != nil && bg.Err() == nil {
					logger.Warn("reloading the declared event schemas", "error", err.Error())
				}
			}
		}
	})
	if sealer != nil {
		wg.Go(func() {
			// The sealer resumes from the stored head: restarting it after a failure is safe.
			for bg.Err() == nil {
				if err := sealer.Run(bg); err != nil && bg.Err() == nil {
					logger.Error("ledger sealer stopped; restarting", "error", err.Error())
					select {
					case <-time.After(5 * time.Second):
					case <-bg.Done():
					}
				}
			}
		})
	}

	serveErr := make(chan error, 1)
	go func() {
		if useTLS {
			serveErr <- srv.ServeTLS(ln, "", "") // the certificate is in TLSConfig
			return
		}
		serveErr <- srv.Serve(ln)
	}()
	fmt.Fprintf(cmd.OutOrStdout(), "strata serve: %s on %s://%s\n", d, scheme, ln.Addr())
	logger.Info("serving", "db", d.String(), "addr", ln.Addr().String(), "tls", useTLS, "sealer", signKey != "")

	select {
	case err = <-serveErr:
		err = fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
		logger.Info("shutting down: finishing requests in flight (a second SIGINT or SIGTERM cuts them)")
		sctx, cancel := context.WithTimeout(context.Background(), fl.shutdownTimeout)
		// A second signal cuts the requests in flight at once, rather than waiting for them
		// until --shutdown-timeout.
		again := make(chan os.Signal, 1)
		signal.Notify(again, syscall.SIGINT, syscall.SIGTERM)
		var cut atomic.Bool
		go func() {
			select {
			case <-again:
				cut.Store(true)
				logger.Warn("second signal: cutting the requests in flight")
				cancel()
			case <-sctx.Done():
			}
		}()
		err = nil
		if serr := srv.Shutdown(sctx); serr != nil {
			logger.Error("shutdown", "error", serr.Error())
			srv.Close()
			// The operator learns that the stop was not clean: requests were cut.
			if cut.Load() {
				err = strata.Errorf(strata.Unavailable, op, "requests still in flight were cut by a second signal: %w", serr)
			} else {
				err = strata.Errorf(strata.Unavailable, op, "requests still in flight after --shutdown-timeout %s were cut: %w", fl.shutdownTimeout, serr)
			}
		}
		cancel()
		signal.Stop(again)
	}
	cancelBG()
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// spanLogger exports finished spans to the log at debug level (--trace-log).
type spanLogger struct{ log *slog.Logger }

func (l spanLogger) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	for _, s := range spans {
		l.log.Debug("span", "name", s.Name(), "trace", s.SpanContext().TraceID().String(),
			"span", s.SpanContext().SpanID().String(), "duration", s.EndTime().Sub(s.StartTime()))
	}
	return nil
}

func (l spanLogger) Shutdown(context.Context) error { return nil }
