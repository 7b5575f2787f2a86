package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/strata-events/strata"
)

func newAppendCmd(g *globals) *cobra.Command {
	var (
		expect   string
		id       string
		meta     []string
		occurred string
		schema   int
	)
	c := &cobra.Command{
		Use:   "append STREAM TYPE JSON",
		Short: "Append one event to a stream",
		Long: `Append one event to a stream and print where it went as one JSON line.

JSON is the payload; "-" reads it from standard input. Metadata keys tenant, principal, session,
correlation, causation, subsystem and category fill the well-known fields; other keys are kept as
extra metadata. Re-sending an event with the same --id and content is a no-op that prints the first
result with "replayed":true.`,
		Example: `  strata append certificate-7F3A CertificateIssued '{"serial":"7F3A"}' --expect no-stream \
    --meta principal=operator:jdoe --meta correlation=req-1001`,
		Args: argsExactly(3, "STREAM TYPE JSON"),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			const op = "append"
			exp, err := parseExpected(expect)
			if err != nil {
				return err
			}
			ev := strata.EventData{Type: args[1], Schema: schema}
			if ev.Data, err = readPayload(cmd.InOrStdin(), args[2]); err != nil {
				return err
			}
			if id != "" {
				if ev.ID, err = uuid.Parse(id); err != nil {
					return invalidf(op, "--id %q is not a UUID", id)
				}
			}
			if ev.Meta, err = parseMeta(op, meta); err != nil {
				return err
			}
			if occurred != "" {
				if ev.OccurredAt, err = time.Parse(time.RFC3339Nano, occurred); err != nil {
					return invalidf(op, "--occurred %q is not an RFC 3339 time such as 2023-03-14T09:00:00Z", occurred)
				}
				if ev.OccurredAt.IsZero() { // the store would read it as "not given": now
					return invalidf(op, "--occurred %q is the zero time, which means no time: leave --occurred out for the time of the append", occurred)
				}
			}
			if schema < 0 {
				return invalidf(op, "--schema must be 1 or more")
			}

			ctx := cmd.Context()
			st, _, err := g.open(ctx)
			if err != nil {
				return err
			}
			defer closeStore(st, &err)
			// Fields declared personal (strata schema set) are encrypted before they leave.
			p, _, err := g.protector(ctx, st)
			if err != nil {
				return err
			}
			if err := p.Protect(ctx, &ev); err != nil {
				return err
			}
			res, err := st.Append(ctx, args[0], exp, ev)
			if err != nil {
				return err
			}
			w := newLineWriter(cmd.OutOrStdout())
			if err := w.write(appendLine{Stream: res.Stream, FirstVersion: res.FirstVersion, LastVersion: res.LastVersion, Replayed: res.Replayed}); err != nil {
				return err
			}
			return w.flush()
		},
	}
	f := c.Flags()
	f.StringVar(&expect, "expect", "any", "expected stream version: any, no-stream, exists or a version number N")
	f.StringVar(&id, "id", "", "event ID (UUID); makes the append idempotent (default: a new UUIDv7)")
	f.StringArrayVar(&meta, "meta", nil, "metadata key=value (repeatable)")
	f.StringVar(&occurred, "occurred", "", "domain time of the event, RFC 3339 (default: when it is recorded)")
	f.IntVar(&schema, "schema", 1, "payload schema version")
	return c
}

// parseExpected reads --expect.
func parseExpected(s string) (strata.ExpectedVersion, error) {
	switch strings.ToLower(s) {
	case "any":
		return strata.Any, nil
	case "no-stream", "nostream", "none":
		return strata.NoStream, nil
	case "exists", "stream-exists":
		return strata.StreamExists, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return strata.ExpectedVersion{}, invalidf("append", "--expect %q: want any, no-stream, exists or a version number (0 or more)", s)
	}
	return strata.Exact(n), nil
}

// readPayload returns the JSON argument, or standard input for "-", after checking it is JSON.
func readPayload(stdin io.Reader, arg string) (json.RawMessage, error) {
	data := []byte(arg)
	if arg == "-" {
		b, err := io.ReadAll(io.LimitReader(stdin, strata.MaxDataLen+1))
		if err != nil {
			return nil, fmt.Errorf("read payload from standard input: %w", err)
		}
		if len(b) > strata.MaxDataLen { // cut at the limit: it would read as broken JSON
			return nil, invalidf("append", "the payload on standard input is larger than %d bytes, the most an event holds", strata.MaxDataLen)
		}
		data = b
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, invalidf("append", "the payload is not valid JSON: %v (at byte %d)", err, se.Offset)
		}
		return nil, invalidf("append", "the payload is not valid JSON: %v", err)
	}
	return data, nil
}

// parseMeta reads the --meta key=value pairs of the command op into Metadata.
func parseMeta(op string, pairs []string) (strata.Metadata, error) {
	var m strata.Metadata
	seen := make(map[string]bool, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return strata.Metadata{}, invalidf(op, "--meta %q: want key=value", p)
		}
		if seen[k] {
			return strata.Metadata{}, invalidf(op, "--meta %q: key %q given twice", p, k)
		}
		seen[k] = true
		m.Set(k, v)
	}
	return m, nil
}
