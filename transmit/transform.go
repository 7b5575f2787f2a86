package transmit

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/shred"
)

// Transform changes an event on its way out, before it is encoded: the hook through which
// sensitive fields leave encrypted, redacted or (for a consumer explicitly granted it)
// decrypted. It may replace e.Data (never modify its bytes in place: they may be shared). An
// error is the destination's problem with this event: it counts toward the retry limit.
//
// A *shred.Protector's Reveal method is a Transform that decrypts for a granted consumer.
type Transform func(ctx context.Context, e *strata.Event) error

// Payload says what a transmitter does with the sensitive fields of events.
type Payload string

// The payload policies.
const (
	// PayloadStored sends the data as stored: sensitive fields stay encrypted (their envelopes
	// travel; only a holder of the subject's key can read them). The default.
	PayloadStored Payload = "stored"
	// PayloadRedacted replaces every encrypted field by its redaction marker, so that not even
	// ciphertext of personal data reaches the destination.
	PayloadRedacted Payload = "redacted"
	// PayloadRevealed decrypts sensitive fields: only for a consumer granted personal data. It
	// needs a reveal Transform from the program (WithReveal), e.g. a shred.Protector's Reveal.
	PayloadRevealed Payload = "revealed"
)

// envelopePrefix starts every encrypted field (see docs/DATA-PROTECTION.md): a JSON string
// "strata:enc:v1:KIND:...", KIND s for strings and j for other values.
const envelopePrefix = "strata:enc:v1:"

// RedactEncrypted is the Transform of PayloadRedacted: it replaces each encrypted string field
// by shred.Redacted and each encrypted non-string field by null, the values a reader sees after
// erasure. Data without envelopes is passed through untouched, byte for byte.
func RedactEncrypted(_ context.Context, e *strata.Event) error {
	if !bytes.Contains(e.Data, []byte(envelopePrefix)) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(e.Data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return strata.Errorf(strata.Invalid, "redact", "event %s: data is not JSON: %w", e.ID, err)
	}
	out, err := json.Marshal(redactValue(v, 0))
	if err != nil {
		return strata.Errorf(strata.Internal, "redact", "event %s: %w", e.ID, err)
	}
	e.Data = out
	return nil
}

func redactValue(v any, depth int) any {
	if depth > 256 {
		return v
	}
	switch x := v.(type) {
	case string:
		if rest, ok := strings.CutPrefix(x, envelopePrefix); ok {
			if strings.HasPrefix(rest, "s:") {
				return shred.Redacted
			}
			return nil
		}
	case map[string]any:
		for k, c := range x {
			x[k] = redactValue(c, depth+1)
		}
	case []any:
		for i, c := range x {
			x[i] = redactValue(c, depth+1)
		}
	}
	return v
}
