package testenv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
)

// Defaults of the broker variables.
const (
	// DefaultNATS is the local NATS server with JetStream that STRATA_TEST_NATS defaults to.
	DefaultNATS = "nats://127.0.0.1:4222"
	// DefaultRabbitMQ is the local RabbitMQ that STRATA_TEST_RABBITMQ defaults to.
	DefaultRabbitMQ = "amqp://guest:guest@127.0.0.1:5672/"
	// DefaultRedis is the local Redis that STRATA_TEST_REDIS defaults to (host:port).
	DefaultRedis = "127.0.0.1:6379"
)

// NATS returns the URL of the test NATS server (STRATA_TEST_NATS, default DefaultNATS) once it
// greets with INFO, skipping the test, or failing it in CI, when it does not.
func NATS(t testing.TB) string {
	t.Helper()
	return Service(t, "STRATA_TEST_NATS", DefaultNATS, func(ctx context.Context, dsn string) error {
		return greet(ctx, hostPort(dsn, "4222"), nil, func(r *bufio.Reader) error {
			line, err := r.ReadString('\n')
			if err != nil {
				return err
			}
			if !strings.HasPrefix(line, "INFO ") {
				return fmt.Errorf("not a NATS server: %q", line)
			}
			if !strings.Contains(line, `"jetstream":true`) {
				return errors.New("the NATS server runs without JetStream (start it with -js)")
			}
			return nil
		})
	})
}

// RabbitMQ returns the AMQP URL of the test RabbitMQ (STRATA_TEST_RABBITMQ, default
// DefaultRabbitMQ) once it answers the AMQP 0-9-1 protocol header, skipping the test, or failing
// it in CI, when it does not.
func RabbitMQ(t testing.TB) string {
	t.Helper()
	return Service(t, "STRATA_TEST_RABBITMQ", DefaultRabbitMQ, func(ctx context.Context, dsn string) error {
		return greet(ctx, hostPort(dsn, "5672"), []byte("AMQP\x00\x00\x09\x01"), func(r *bufio.Reader) error {
			b := make([]byte, 1)
			if _, err := io.ReadFull(r, b); err != nil {
				return err
			}
			if b[0] != 1 { // a method frame: Connection.Start
				return fmt.Errorf("not an AMQP 0-9-1 broker (first byte %#x)", b[0])
			}
			return nil
		})
	})
}

// Redis returns host:port of the test Redis (STRATA_TEST_REDIS, default DefaultRedis) once it
// answers PING, skipping the test, or failing it in CI, when it does not.
func Redis(t testing.TB) string {
	t.Helper()
	return Service(t, "STRATA_TEST_REDIS", DefaultRedis, func(ctx context.Context, dsn string) error {
		return greet(ctx, hostPort(dsn, "6379"), []byte("PING\r\n"), func(r *bufio.Reader) error {
			line, err := r.ReadString('\n')
			if err != nil {
				return err
			}
			if !bytes.HasPrefix([]byte(line), []byte("+PONG")) {
				return fmt.Errorf("not a Redis server: %q", line)
			}
			return nil
		})
	})
}

// hostPort returns the host:port of a URL or of a bare host:port.
func hostPort(dsn, port string) string {
	if u, err := url.Parse(dsn); err == nil && u.Host != "" {
		if u.Port() == "" {
			return net.JoinHostPort(u.Hostname(), port)
		}
		return u.Host
	}
	return dsn
}

func greet(ctx context.Context, addr string, hello []byte, check func(*bufio.Reader) error) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if hello != nil {
		if _, err := c.Write(hello); err != nil {
			return err
		}
	}
	return check(bufio.NewReader(c))
}
