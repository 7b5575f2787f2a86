// Package amqp is the transmitter adapter for RabbitMQ (AMQP 0-9-1): each event is published
// persistent, mandatory, on a channel in confirm mode, and counts as delivered once the broker
// confirmed it. A message no queue takes is returned by the broker and counts as rejected, so it
// is never dropped silently. The event ID travels as the message-id property.
//
// Options (the "options" object of a transmitter of type "amqp"):
//
//	{"url": "amqp://guest:guest@127.0.0.1:5672/", "exchange": "strata", "routingKey": "{type}"}
//
// With "declare": true the exchange is declared (durable, of "exchangeType", default topic). In
// binary mode the CloudEvents attributes are headers named cloudEvents:NAME.
package amqp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/transmit"
)

// Options configure the adapter.
type Options struct {
	// URL of the broker; default amqp://guest:guest@127.0.0.1:5672/.
	URL string `json:"url,omitempty"`
	// URLEnv names an environment variable holding the URL (with its credentials).
	URLEnv string `json:"urlEnv,omitempty"`
	// Exchange to publish to; "" is the default exchange (routing key = queue name).
	Exchange string `json:"exchange,omitempty"`
	// ExchangeType and Declare: declare a durable exchange of this type (default topic).
	ExchangeType string `json:"exchangeType,omitempty"`
	Declare      bool   `json:"declare,omitempty"`
	// RoutingKey is the routing key template; default "{type}".
	RoutingKey string `json:"routingKey,omitempty"`
	// Channels is how many channels publish at once; each stream keeps to one of them, so its
	// events stay in order. Default 4.
	Channels int `json:"channels,omitempty"`
	// Timeout bounds the wait for one batch's confirms; default 10s.
	Timeout transmit.Duration `json:"timeout,omitempty"`
	// MaxMessageBytes is the largest message body published: at most the broker's
	// max_message_size, whose breach closes the channel, so that the message would be retried
	// for ever. A larger event is rejected instead (after the retry limit, it goes to the
	// dead-letter queue). Default 134217728 (128 MiB, RabbitMQ 3.8 to 3.13's default; RabbitMQ 4
	// defaults to 16 MiB).
	MaxMessageBytes int `json:"maxMessageBytes,omitempty"`
	// Mode is set from the transmitter's mode by Factory.
	Mode transmit.Mode `json:"-"`
}

// Sink publishes to RabbitMQ. It redials after a connection failure on the next Send.
type Sink struct {
	o Options

	conn *amqp091.Connection
	chs  []*channel
}

// channel is one publishing channel in confirm mode.
type channel struct {
	ch *amqp091.Channel
	// returns receives the messages the broker returned. The connection's reader puts a return
	// into it before it handles the confirm of the same message, so once a batch is confirmed
	// every return of the batch is in the channel. It holds a whole batch, so that the reader
	// never blocks on it.
	returns chan amqp091.Return
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

// Open connects to the broker.
func Open(_ context.Context, o Options) (*Sink, error) {
	if o.URLEnv != "" {
		o.URL = getenv(o.URLEnv)
		if o.URL == "" {
			return nil, strata.Errorf(strata.Invalid, "amqp open", "environment variable %s holds no URL", o.URLEnv)
		}
	}
	if o.URL == "" {
		o.URL = "amqp://guest:guest@127.0.0.1:5672/"
	}
	if o.RoutingKey == "" {
		o.RoutingKey = "{type}"
	}
	if o.ExchangeType == "" {
		o.ExchangeType = "topic"
	}
	if o.Timeout <= 0 {
		o.Timeout = transmit.Duration(10 * time.Second)
	}
	if o.Channels <= 0 {
		o.Channels = 4
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 128 << 20
	}
	s := &Sink{o: o}
	if err := s.dial(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Sink) dial() error {
	const op = "amqp connect"
	conn, err := amqp091.DialConfig(s.o.URL, amqp091.Config{Dial: amqp091.DefaultDial(5 * time.Second), Properties: amqp091.Table{"connection_name": "strata-transmit"}})
	if err != nil {
		return transmit.Unavailable(op, err)
	}
	var chs []*channel
	for i := 0; i < s.o.Channels && err == nil; i++ {
		var ch *amqp091.Channel
		ch, err = conn.Channel()
		if err == nil {
			err = ch.Confirm(false)
		}
		if err == nil && i == 0 && s.o.Declare && s.o.Exchange != "" {
			err = ch.ExchangeDeclare(s.o.Exchange, s.o.ExchangeType, true, false, false, false, nil)
		}
		if err == nil {
			chs = append(chs, &channel{ch: ch, returns: ch.NotifyReturn(make(chan amqp091.Return, transmit.MaxBatchSize+16))})
		}
	}
	if err != nil {
		conn.Close()
		return transmit.Unavailable(op, err)
	}
	s.conn, s.chs = conn, chs
	return nil
}

func (s *Sink) drop() {
	if s.conn != nil {
		s.conn.Close()
	}
	s.conn, s.chs = nil, nil
}

func (s *Sink) broken() bool {
	if s.conn == nil || s.conn.IsClosed() {
		return true
	}
	for _, c := range s.chs {
		if c.ch.IsClosed() {
			return true
		}
	}
	return false
}

// Send implements transmit.Sink. The batch is split over the channels by stream; each channel
// publishes its share in order and waits for the confirms.
func (s *Sink) Send(ctx context.Context, batch []*transmit.Message) error {
	const op = "amqp publish"
	if s.broken() {
		s.drop()
		if err := s.dial(); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(s.o.Timeout))
	defer cancel()
	shares := make([][]int, len(s.chs))
	for i, m := range batch {
		k := int(fnv32(m.Event.Stream) % uint32(len(s.chs)))
		shares[k] = append(shares[k], i)
	}
	errs := make([]error, len(batch))
	fatal := make([]error, len(s.chs))
	var wg sync.WaitGroup
	for k, share := range shares {
		if len(share) == 0 {
			continue
		}
		wg.Go(func() { fatal[k] = s.publish(ctx, s.chs[k], batch, share, errs) })
	}
	wg.Wait()
	for _, err := range fatal {
		if err != nil {
			s.drop()
			return transmit.Unavailable(op, err)
		}
	}
	var be *transmit.BatchError
	for i, err := range errs {
		if err != nil {
			be = be.Fail(i, err)
		}
	}
	return be.Err()
}

// publish sends the messages share (indexes into batch) on c and waits for their confirms,
// setting errs for refused ones. It returns an error when the channel failed.
func (s *Sink) publish(ctx context.Context, c *channel, batch []*transmit.Message, share []int, errs []error) error {
	const op = "amqp publish"
	c.drainReturns()
	confirms := make([]*amqp091.DeferredConfirmation, len(share))
	for n, i := range share {
		m := batch[i]
		body, ct := m.Body(s.o.Mode)
		if len(body) > s.o.MaxMessageBytes {
			errs[i] = transmit.Reject(fmt.Errorf("a message of %d bytes, more than maxMessageBytes %d (the broker's max_message_size would close the channel)", len(body), s.o.MaxMessageBytes))
			continue
		}
		p := amqp091.Publishing{
			ContentType: ct, DeliveryMode: amqp091.Persistent, MessageId: m.ID(), Type: m.Event.Type,
			Timestamp: m.Event.RecordedAt, AppId: "strata", Body: body,
		}
		if s.o.Mode == transmit.Binary {
			p.Headers = amqp091.Table{}
			for _, h := range m.Headers("cloudEvents:") {
				p.Headers[h.Name] = h.Value
			}
		}
		dc, err := c.ch.PublishWithDeferredConfirmWithContext(ctx, s.o.Exchange, transmit.Expand(s.o.RoutingKey, m, nil), true, false, p)
		if err != nil {
			return err
		}
		confirms[n] = dc
	}
	for n, dc := range confirms {
		if dc == nil {
			continue // refused above
		}
		ok, err := dc.WaitContext(ctx)
		if err != nil {
			return err
		}
		if !ok {
			errs[share[n]] = transmit.Unavailable(op, errors.New("the broker did not confirm the message (nack or closed channel)"))
		}
	}
	returned := c.drainReturns()
	for _, i := range share {
		if why, ok := returned[batch[i].ID()]; ok {
			errs[i] = transmit.Reject(errors.New("returned by the broker: " + why + " (no queue is bound for its routing key)"))
		}
	}
	return nil
}

// fnv32 hashes a stream name to pick its channel.
func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// drainReturns takes every return waiting in the channel: message-id → the broker's reason.
func (c *channel) drainReturns() map[string]string {
	var out map[string]string
	for {
		select {
		case r, ok := <-c.returns:
			if !ok {
				return out
			}
			if out == nil {
				out = map[string]string{}
			}
			out[r.MessageId] = r.ReplyText
		default:
			return out
		}
	}
}

// Close closes the connection.
func (s *Sink) Close() error {
	if s.conn != nil {
		return s.conn.Close()
	}
	return nil
}
