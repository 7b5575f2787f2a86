// Package nats is the transmitter adapter for NATS JetStream: each event is published with
// JetStream's async publish and counts as delivered once the stream acknowledged it. The event
// ID travels as Nats-Msg-Id, so a re-sent event inside the stream's duplicate window is stored
// once.
//
// Options (the "options" object of a transmitter of type "nats"):
//
//	{"url": "nats://127.0.0.1:4222", "subject": "strata.{type}", "timeout": "10s"}
//
// The subject's {type}, {stream}, {tenant}, {category} and {subsystem} are filled in per event
// (with '.', '*', '>' and spaces replaced by '_'); a JetStream stream must capture it.
package nats

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/transmit"
)

// Options configure the adapter.
type Options struct {
	// URL of the NATS server(s), comma-separated; default nats://127.0.0.1:4222.
	URL string `json:"url,omitempty"`
	// Subject is the subject template; default "strata.{type}".
	Subject string `json:"subject,omitempty"`
	// Timeout bounds the wait for one batch's acknowledgements; default 10s.
	Timeout transmit.Duration `json:"timeout,omitempty"`
	// ReconnectWait is the wait between reconnection attempts; default 250ms.
	ReconnectWait transmit.Duration `json:"reconnectWait,omitempty"`
	// Mode is set from the transmitter's mode by Factory.
	Mode transmit.Mode `json:"-"`
}

// Sink publishes to JetStream.
type Sink struct {
	o  Options
	nc *natsgo.Conn
	js jetstream.JetStream
}

var _ transmit.Sink = (*Sink)(nil)

// Factory opens a Sink from a transmitter configuration.
func Factory(ctx context.Context, sc transmit.SinkConfig) (transmit.Sink, error) {
	var o Options
	if err := transmit.DecodeOptions(sc, &o); err != nil {
		return nil, err
	}
	o.Mode = sc.Mode
	return Open(ctx, o)
}

// Open connects to NATS. The connection reconnects by itself for ever; a batch sent while it is
// down fails (and is retried by the transmitter) once its timeout passes.
func Open(_ context.Context, o Options) (*Sink, error) {
	const op = "nats open"
	if o.URL == "" {
		o.URL = natsgo.DefaultURL
	}
	if o.Subject == "" {
		o.Subject = "strata.{type}"
	}
	if o.Timeout <= 0 {
		o.Timeout = transmit.Duration(10 * time.Second)
	}
	if o.ReconnectWait <= 0 {
		o.ReconnectWait = transmit.Duration(250 * time.Millisecond)
	}
	// No reconnect buffer: a message published while the connection is down fails at once
	// instead of waiting in a buffer that is flushed after the reconnect, ahead of the messages
	// lost with the old connection, which would then arrive after later events of their streams.
	nc, err := natsgo.Connect(o.URL, natsgo.Name("strata-transmit"), natsgo.MaxReconnects(-1),
		natsgo.ReconnectWait(time.Duration(o.ReconnectWait)), natsgo.RetryOnFailedConnect(true),
		natsgo.ReconnectBufSize(-1))
	if err != nil {
		return nil, transmit.Unavailable(op, err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8192), jetstream.WithPublishAsyncTimeout(time.Duration(o.Timeout)))
	if err != nil {
		nc.Close()
		return nil, transmit.Unavailable(op, err)
	}
	return &Sink{o: o, nc: nc, js: js}, nil
}

var subjectCleaner = strings.NewReplacer(".", "_", "*", "_", ">", "_", " ", "_", "\t", "_", "\r", "_", "\n", "_")

func cleanToken(s string) string {
	if s == "" {
		return "_"
	}
	return subjectCleaner.Replace(s)
}

// Send implements transmit.Sink.
func (s *Sink) Send(ctx context.Context, batch []*transmit.Message) error {
	const op = "nats publish"
	if s.nc.IsClosed() {
		return transmit.Unavailable(op, natsgo.ErrConnectionClosed)
	}
	var be *transmit.BatchError
	futures := make([]jetstream.PubAckFuture, len(batch))
	for i, m := range batch {
		body, ct := m.Body(s.o.Mode)
		msg := natsgo.NewMsg(transmit.Expand(s.o.Subject, m, cleanToken))
		msg.Data = body
		msg.Header.Set("Content-Type", ct)
		if s.o.Mode == transmit.Binary {
			for _, h := range m.Headers("ce-") {
				msg.Header.Set(h.Name, h.Value)
			}
		}
		f, err := s.js.PublishMsgAsync(msg, jetstream.WithMsgID(m.ID()))
		if err != nil {
			be = be.Fail(i, classify(err))
			if transmit.IsRejection(be.Errors[i]) {
				continue // refused for itself; the connection is fine
			}
			// The connection is down. What was written before it failed arrived as a prefix,
			// if at all; publishing the rest on the next connection would let it overtake the
			// lost messages, so the rest waits for the retry, in order.
			for j := i + 1; j < len(batch); j++ {
				be = be.Fail(j, transmit.NotSent(fmt.Errorf("not sent: publishing event %s failed first", m.ID())))
			}
			break
		}
		futures[i] = f
	}
	timeout := time.NewTimer(time.Duration(s.o.Timeout) + time.Second)
	defer timeout.Stop()
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case <-f.Ok():
		case err := <-f.Err():
			be = be.Fail(i, classify(err))
		case <-timeout.C:
			return transmit.Unavailable(op, errors.New("no acknowledgement from JetStream in time"))
		case <-ctx.Done():
			return transmit.Unavailable(op, ctx.Err())
		}
	}
	return be.Err()
}

// classify marks what JetStream refuses for the message itself as a rejection.
func classify(err error) error {
	var api *jetstream.APIError
	switch {
	case errors.Is(err, natsgo.ErrMaxPayload), errors.Is(err, natsgo.ErrBadSubject):
		return transmit.Reject(err)
	case errors.As(err, &api) && api.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum:
		return transmit.Reject(err)
	}
	return &strata.Error{Code: strata.Unavailable, Op: "nats publish", Err: err}
}

// Close closes the connection.
func (s *Sink) Close() error {
	s.nc.Close()
	return nil
}
