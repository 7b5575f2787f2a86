// Package kafka is the transmitter adapter for Apache Kafka, on franz-go's idempotent producer
// (acks from all in-sync replicas, so that the producer's own retries never duplicate or
// reorder a partition). The record key is the stream by default, so every event of a stream
// lands on one partition in log order; the event ID travels as the header ce_id.
//
// Options (the "options" object of a transmitter of type "kafka"):
//
//	{"brokers": ["127.0.0.1:9092"], "topic": "strata-events", "key": "{stream}"}
//
// In binary mode every CloudEvents attribute is a header ce_NAME and the value is the payload.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/transmit"
)

// Options configure the adapter.
type Options struct {
	// Brokers are the seed brokers; default 127.0.0.1:9092.
	Brokers []string `json:"brokers,omitempty"`
	// Topic is the topic template; default "strata-events". An event whose topic Kafka cannot
	// take (see validTopic) is rejected: after the retry limit it goes to the dead-letter queue.
	Topic string `json:"topic,omitempty"`
	// Key is the record key template; default "{stream}" (per-stream order).
	Key string `json:"key,omitempty"`
	// Timeout bounds the delivery of one batch; default 30s.
	Timeout transmit.Duration `json:"timeout,omitempty"`
	// MaxMessageBytes bounds the record batches sent to a partition, and so the largest event:
	// at most the broker's (or topic's) max.message.bytes, which refuses a larger batch whole;
	// default 1000012, within the broker's default.
	MaxMessageBytes int32 `json:"maxMessageBytes,omitempty"`
	// Mode is set from the transmitter's mode by Factory.
	Mode transmit.Mode `json:"-"`
}

// Sink produces to Kafka.
type Sink struct {
	o  Options
	cl *kgo.Client
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

// Open makes the producer; it connects on first use and reconnects as needed.
func Open(_ context.Context, o Options, extra ...kgo.Opt) (*Sink, error) {
	const op = "kafka open"
	if len(o.Brokers) == 0 {
		o.Brokers = []string{"127.0.0.1:9092"}
	}
	if o.Topic == "" {
		o.Topic = "strata-events"
	}
	if o.Key == "" {
		o.Key = "{stream}"
	}
	if o.Timeout <= 0 {
		o.Timeout = transmit.Duration(30 * time.Second)
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 1000012 // franz-go's default, under the broker's default 1048588
	}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(o.Brokers...),
		kgo.RequiredAcks(kgo.AllISRAcks()), // required by the idempotent producer (the default)
		kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(time.Duration(o.Timeout)),
		// Many small records of a partition go out in one batch: a batch larger than the
		// broker's max.message.bytes would be refused whole, each of its records as too large.
		kgo.ProducerBatchMaxBytes(o.MaxMessageBytes),
		kgo.MaxBufferedRecords(2 * transmit.MaxBatchSize),
	}, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, strata.Errorf(strata.Invalid, op, "%w", err)
	}
	return &Sink{o: o, cl: cl}, nil
}

// Send implements transmit.Sink.
func (s *Sink) Send(ctx context.Context, batch []*transmit.Message) error {
	const op = "kafka produce"
	errs := make([]error, len(batch))
	var wg sync.WaitGroup
	wg.Add(len(batch))
	for i, m := range batch {
		topic := transmit.Expand(s.o.Topic, m, nil)
		if err := validTopic(topic); err != nil {
			errs[i] = transmit.Reject(err)
			wg.Done()
			continue
		}
		body, ct := m.Body(s.o.Mode)
		r := &kgo.Record{
			Topic: topic, Key: []byte(transmit.Expand(s.o.Key, m, nil)), Value: body,
			Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte(ct)}},
		}
		if s.o.Mode == transmit.Binary {
			for _, h := range m.Headers("ce_") {
				r.Headers = append(r.Headers, kgo.RecordHeader{Key: h.Name, Value: []byte(h.Value)})
			}
		} else {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: "ce_id", Value: []byte(m.ID())})
		}
		s.cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			errs[i] = err
			wg.Done()
		})
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	// The client fails records after RecordDeliveryTimeout, but only between produce requests;
	// against a broker that keeps dropping the connection that can take long. Give up on the
	// batch after its timeout and a grace period, and drop what is still buffered, so that the
	// transmitter retries (at least once: the retried copies may follow late originals).
	timer := time.NewTimer(time.Duration(s.o.Timeout) + 2*time.Second)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = s.cl.AbortBufferedRecords(actx)
		cancel()
		return transmit.Unavailable(op, errors.New("no acknowledgement from Kafka in time"))
	case <-ctx.Done():
		return transmit.Unavailable(op, ctx.Err())
	}
	var be *transmit.BatchError
	for i, err := range errs {
		if err == nil {
			continue
		}
		switch {
		case transmit.IsRejection(err): // refused before it was produced
			be = be.Fail(i, err)
		case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.InvalidRecord), errors.Is(err, kerr.CorruptMessage),
			errors.Is(err, kerr.RecordListTooLarge), errors.Is(err, kerr.InvalidTopicException):
			be = be.Fail(i, transmit.Reject(err))
		default:
			be = be.Fail(i, transmit.Unavailable(op, err))
		}
	}
	return be.Err()
}

// maxTopicLen is the longest topic name Kafka takes.
const maxTopicLen = 249

// validTopic checks a topic name as Kafka does (1 to 249 of the characters a-z, A-Z, 0-9, '.',
// '_' and '-', and not "." or ".."): a name expanded from an event that breaks these can never
// be produced to, so the event is rejected at once rather than retried until it times out.
func validTopic(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > maxTopicLen {
		return fmt.Errorf("invalid topic name %q: Kafka takes 1 to %d characters, not \".\" or \"..\"", name, maxTopicLen)
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("invalid topic name %q: Kafka takes only a-z, A-Z, 0-9, '.', '_' and '-'", name)
		}
	}
	return nil
}

// Close flushes nothing (Send waits for every record) and closes the client.
func (s *Sink) Close() error {
	s.cl.Close()
	return nil
}
