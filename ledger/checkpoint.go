package ledger

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"

	"github.com/strata-events/strata"
)

// Checkpoint is the body of a C2SP tlog-checkpoint: the log's origin, the tree size and its root.
type Checkpoint struct {
	// Origin names the log, e.g. "ca.example/strata"; it is also the name of the log's key.
	Origin string
	Size   uint64
	Root   Hash
	// Extensions are optional extra lines, opaque to strata.
	Extensions []string
}

// Marshal returns the checkpoint's note text: origin, size and base64 root, one per line, then
// the extension lines.
func (c Checkpoint) Marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root[:]))
	for _, e := range c.Extensions {
		b.WriteString(e)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// ParseCheckpoint parses a checkpoint's note text (without signatures). Every error is Invalid.
func ParseCheckpoint(text []byte) (Checkpoint, error) {
	const op = "parse checkpoint"
	s := string(text)
	if !strings.HasSuffix(s, "\n") {
		return Checkpoint{}, strata.Errorf(strata.Invalid, op, "the checkpoint text does not end with a newline")
	}
	lines := strings.Split(s[:len(s)-1], "\n")
	if len(lines) < 3 {
		return Checkpoint{}, strata.Errorf(strata.Invalid, op, "a checkpoint has at least 3 lines, this one %d", len(lines))
	}
	for i, l := range lines {
		if l == "" {
			return Checkpoint{}, strata.Errorf(strata.Invalid, op, "line %d is empty", i+1)
		}
	}
	c := Checkpoint{Origin: lines[0]}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || (lines[1] != "0" && lines[1][0] == '0') || lines[1][0] == '+' {
		return Checkpoint{}, strata.Errorf(strata.Invalid, op, "tree size %q is not a decimal number without leading zeros", lines[1])
	}
	c.Size = size
	root, err := decodeBase64(lines[2])
	if err != nil || len(root) != hsize {
		return Checkpoint{}, strata.Errorf(strata.Invalid, op, "root hash %q is not %d bytes of base64", lines[2], hsize)
	}
	c.Root = Hash(root)
	if len(lines) > 3 {
		c.Extensions = lines[3:]
	}
	return c, nil
}

// SignCheckpoint returns c as a note signed by signer, whose name must be c's origin (a valid
// key name). Each extension must be one non-empty line of UTF-8 without control characters.
func SignCheckpoint(c Checkpoint, signer note.Signer) ([]byte, error) {
	const op = "sign checkpoint"
	if signer.Name() != c.Origin {
		return nil, strata.Errorf(strata.Invalid, op, "key %q cannot sign checkpoints of the log %q (the key's name must be the origin)", signer.Name(), c.Origin)
	}
	if !validKeyName(c.Origin) {
		return nil, strata.Errorf(strata.Invalid, op, "origin %q is not a key name a signed note can carry", c.Origin)
	}
	for i, e := range c.Extensions {
		// An empty line would end the text a verifier reads, a line break make two lines, and
		// note.Open refuses a note with another control character or invalid UTF-8.
		if e == "" || !utf8.ValidString(e) || strings.IndexFunc(e, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
			return nil, strata.Errorf(strata.Invalid, op, "extension %d (%q) is not one non-empty line of text", i+1, e)
		}
	}
	msg, err := note.Sign(&note.Note{Text: string(c.Marshal())}, signer)
	if err != nil {
		return nil, strata.Errorf(strata.Invalid, op, "%w", err)
	}
	return msg, nil
}

// Policy says whom a verifier trusts: the log's key and the witnesses that must have cosigned.
type Policy struct {
	// Log verifies the log's signature; its name is the log's origin.
	Log note.Verifier
	// Witnesses verify cosignatures (see [NewWitnessVerifier]).
	Witnesses []note.Verifier
	// Quorum is how many of Witnesses must have cosigned; 0 means none.
	Quorum int
}

// NewPolicy returns the policy that trusts the log key vkey (note verifier key format) and
// requires cosignatures from quorum of the witness keys.
func NewPolicy(vkey string, witnesses []string, quorum int) (Policy, error) {
	const op = "key"
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return Policy{}, strata.Errorf(strata.Invalid, op, "log verifier key: %w", err)
	}
	p := Policy{Log: v, Quorum: quorum}
	for _, w := range witnesses {
		wv, err := NewWitnessVerifier(strings.TrimSpace(w))
		if err != nil {
			return Policy{}, err
		}
		// A quorum counts witnesses by name: two keys under one name would let one witness
		// count twice.
		for _, o := range p.Witnesses {
			if o.Name() == wv.Name() {
				return Policy{}, strata.Errorf(strata.Invalid, op, "two witness keys named %q: a quorum counts each witness once, by one key", wv.Name())
			}
		}
		p.Witnesses = append(p.Witnesses, wv)
	}
	if quorum < 0 || quorum > len(p.Witnesses) {
		return Policy{}, strata.Errorf(strata.Invalid, op, "witness quorum %d with %d witness keys", quorum, len(p.Witnesses))
	}
	return p, nil
}

// OpenCheckpoint verifies a signed checkpoint against the policy and returns it with the names
// of the witnesses whose cosignatures verified. Every error is Invalid.
func OpenCheckpoint(msg []byte, p Policy) (Checkpoint, []string, error) {
	const op = "verify checkpoint"
	if p.Log == nil {
		return Checkpoint{}, nil, strata.Errorf(strata.Invalid, op, "no log key to verify with")
	}
	vs := append([]note.Verifier{p.Log}, p.Witnesses...)
	n, err := note.Open(msg, note.VerifierList(vs...))
	if err != nil {
		var unk *note.UnverifiedNoteError
		if errors.As(err, &unk) {
			return Checkpoint{}, nil, strata.Errorf(strata.Invalid, op, "the checkpoint has no valid signature by %q", p.Log.Name())
		}
		return Checkpoint{}, nil, strata.Errorf(strata.Invalid, op, "%w", err)
	}
	var logSigned bool
	var witnessed []string
	for _, s := range n.Sigs {
		if s.Name == p.Log.Name() && s.Hash == p.Log.KeyHash() {
			logSigned = true
			continue
		}
		if !slices.Contains(witnessed, s.Name) {
			witnessed = append(witnessed, s.Name)
		}
	}
	if !logSigned {
		return Checkpoint{}, nil, strata.Errorf(strata.Invalid, op, "the checkpoint is not signed by the log key %q", p.Log.Name())
	}
	c, err := ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return Checkpoint{}, nil, err
	}
	if c.Origin != p.Log.Name() {
		return Checkpoint{}, nil, strata.Errorf(strata.Invalid, op, "the checkpoint's origin %q is not the log key's name %q", c.Origin, p.Log.Name())
	}
	if len(witnessed) < p.Quorum {
		return Checkpoint{}, nil, strata.Errorf(strata.Invalid, op, "%d of the required %d witness cosignatures", len(witnessed), p.Quorum)
	}
	return c, witnessed, nil
}

// Key generation. The log's keys are note keys (Ed25519, algorithm byte 0x01). A witness's keys
// follow C2SP tlog-cosignature: algorithm byte 0x04, and the same text forms.

// GenerateKey returns a new log key pair named origin: the signer key (keep it secret) and the
// verifier key to publish, in the note formats.
func GenerateKey(rand io.Reader, origin string) (skey, vkey string, err error) {
	if !validKeyName(origin) {
		// note.GenerateKey takes control characters, which no note it signs can carry.
		return "", "", strata.Errorf(strata.Invalid, "generate key", "bad key name %q", origin)
	}
	skey, vkey, err = note.GenerateKey(rand, origin)
	if err != nil {
		return "", "", strata.Errorf(strata.Invalid, "generate key", "%w", err)
	}
	return skey, vkey, nil
}

// noteCheckpoint returns the checkpoint in the text of a signed note, whose signatures it
// does not check (OpenCheckpoint does).
func noteCheckpoint(note []byte) (Checkpoint, error) {
	text, _, found := bytes.Cut(note, []byte("\n\n"))
	if !found {
		return Checkpoint{}, strata.Errorf(strata.Invalid, "parse checkpoint", "not a signed note")
	}
	return ParseCheckpoint(note[:len(text)+1]) // the text with its last newline
}

// NewSigner parses a log signer key.
func NewSigner(skey string) (note.Signer, error) {
	s, err := note.NewSigner(strings.TrimSpace(skey))
	if err != nil {
		return nil, strata.Errorf(strata.Invalid, "key", "signer key: %w", err)
	}
	return s, nil
}

const algCosignatureV1 = 0x04

// GenerateWitnessKey returns a new witness key pair (C2SP tlog-cosignature, Ed25519).
func GenerateWitnessKey(rand io.Reader, name string) (skey, vkey string, err error) {
	if !validKeyName(name) {
		return "", "", strata.Errorf(strata.Invalid, "generate key", "bad key name %q", name)
	}
	pub, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return "", "", strata.Errorf(strata.Internal, "generate key", "%w", err)
	}
	h := cosigKeyHash(name, pub)
	skey = fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", name, h, base64.StdEncoding.EncodeToString(append([]byte{algCosignatureV1}, priv.Seed()...)))
	vkey = fmt.Sprintf("%s+%08x+%s", name, h, base64.StdEncoding.EncodeToString(append([]byte{algCosignatureV1}, pub...)))
	return skey, vkey, nil
}

// decodeBase64 decodes standard, padded base64 strictly, refusing also the "\r" and "\n" that
// the decoder would skip, so that one value has one text form.
func decodeBase64(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("line break in base64")
	}
	return base64.StdEncoding.Strict().DecodeString(s)
}

// validKeyName reports whether name can name a key in a signed note: note.Open refuses a whole
// note with a signature line whose name is not UTF-8 or holds a '+' or a (Unicode) space.
// Control characters are refused too.
func validKeyName(name string) bool {
	return name != "" && utf8.ValidString(name) && !strings.Contains(name, "+") &&
		strings.IndexFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f || unicode.IsSpace(r) || unicode.IsControl(r) }) < 0
}

// cosigKeyHash is the key ID of C2SP tlog-cosignature: SHA-256(name || 0x0A || 0x04 || key)[:4].
func cosigKeyHash(name string, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', algCosignatureV1})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

func parseKey(key string, private bool) (name string, hash uint32, alg byte, raw []byte, err error) {
	s := key
	if private {
		var ok bool
		if s, ok = strings.CutPrefix(s, "PRIVATE+KEY+"); !ok {
			return "", 0, 0, nil, fmt.Errorf("not a private key")
		}
	}
	parts := strings.SplitN(s, "+", 3)
	if len(parts) != 3 || !validKeyName(parts[0]) || len(parts[1]) != 8 {
		return "", 0, 0, nil, fmt.Errorf("malformed key")
	}
	h, err := strconv.ParseUint(parts[1], 16, 32)
	if err != nil {
		return "", 0, 0, nil, fmt.Errorf("malformed key hash")
	}
	b, err := decodeBase64(parts[2])
	if err != nil || len(b) != 1+ed25519.SeedSize {
		return "", 0, 0, nil, fmt.Errorf("malformed key data")
	}
	return parts[0], uint32(h), b[0], b[1:], nil
}

// witness is a cosigner or cosignature verifier (C2SP tlog-cosignature v1).
type witness struct {
	name string
	hash uint32
	pub  ed25519.PublicKey
	priv ed25519.PrivateKey
	now  func() time.Time
}

// NewWitnessVerifier parses a witness verifier key.
func NewWitnessVerifier(vkey string) (note.Verifier, error) {
	name, h, alg, raw, err := parseKey(vkey, false)
	if err == nil && alg != algCosignatureV1 {
		err = fmt.Errorf("algorithm %#x is not a cosignature key (0x04)", alg)
	}
	if err == nil && cosigKeyHash(name, raw) != h {
		err = fmt.Errorf("key hash does not match")
	}
	if err != nil {
		return nil, strata.Errorf(strata.Invalid, "key", "witness verifier key: %w", err)
	}
	return &witness{name: name, hash: h, pub: ed25519.PublicKey(raw)}, nil
}

// NewWitnessSigner parses a witness signer key. The cosignatures it makes carry the time now()
// returns (time.Now when nil).
func NewWitnessSigner(skey string, now func() time.Time) (note.Signer, error) {
	name, h, alg, raw, err := parseKey(skey, true)
	if err == nil && alg != algCosignatureV1 {
		err = fmt.Errorf("algorithm %#x is not a cosignature key (0x04)", alg)
	}
	if err != nil {
		return nil, strata.Errorf(strata.Invalid, "key", "witness signer key: %w", err)
	}
	priv := ed25519.NewKeyFromSeed(raw)
	pub := priv.Public().(ed25519.PublicKey)
	if cosigKeyHash(name, pub) != h {
		return nil, strata.Errorf(strata.Invalid, "key", "witness signer key: key hash does not match")
	}
	if now == nil {
		now = time.Now
	}
	return &witness{name: name, hash: h, pub: pub, priv: priv, now: now}, nil
}

func (w *witness) Name() string    { return w.name }
func (w *witness) KeyHash() uint32 { return w.hash }

// cosignedMessage is what a cosignature v1 signs: a header line, the time, the checkpoint body.
func cosignedMessage(ts uint64, text []byte) []byte {
	return append(fmt.Appendf(nil, "cosignature/v1\ntime %d\n", ts), text...)
}

// Sign returns the timestamp (8 bytes, big-endian Unix seconds) and the Ed25519 signature.
func (w *witness) Sign(msg []byte) ([]byte, error) {
	if w.priv == nil {
		return nil, errors.New("no private key")
	}
	ts := uint64(w.now().Unix())
	sig := ed25519.Sign(w.priv, cosignedMessage(ts, msg))
	return append(binary.BigEndian.AppendUint64(nil, ts), sig...), nil
}

func (w *witness) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	return ed25519.Verify(w.pub, cosignedMessage(binary.BigEndian.Uint64(sig[:8]), msg), sig[8:])
}

// Cosign adds a witness's cosignature to a signed checkpoint, after checking the log's
// signature with logKey. A cosignature the witness made before is replaced, so that cosigning
// again does not pile up lines (a note of more than 100 signatures does not open). A real
// witness also checks that the checkpoint is consistent with the last one it cosigned; see
// [VerifyConsistency].
func Cosign(msg []byte, logKey note.Verifier, w note.Signer) ([]byte, error) {
	const op = "cosign checkpoint"
	if !validKeyName(w.Name()) {
		return nil, strata.Errorf(strata.Invalid, op, "witness key name %q cannot name a signature line of a note", w.Name())
	}
	n, err := note.Open(msg, note.VerifierList(logKey))
	if err != nil {
		return nil, strata.Errorf(strata.Invalid, op, "%w", err)
	}
	if _, err := ParseCheckpoint([]byte(n.Text)); err != nil {
		return nil, err
	}
	sig, err := w.Sign([]byte(n.Text))
	if err != nil {
		return nil, strata.Errorf(strata.Invalid, op, "%w", err)
	}
	// note.Open checked the form: the text, a blank line, then signature lines.
	out := append([]byte(n.Text), '\n')
	for line := range strings.Lines(string(msg[len(n.Text)+1:])) {
		if name, hash, ok := sigLineKey(line); !ok || name != w.Name() || hash != w.KeyHash() {
			out = append(out, line...)
		}
	}
	return fmt.Appendf(out, "— %s %s\n", w.Name(), base64.StdEncoding.EncodeToString(append(binary.BigEndian.AppendUint32(nil, w.KeyHash()), sig...))), nil
}

// sigLineKey returns the key name and hash of a note's signature line.
func sigLineKey(line string) (name string, hash uint32, ok bool) {
	rest, ok := strings.CutPrefix(line, "— ")
	if !ok {
		return "", 0, false
	}
	name, b64, _ := strings.Cut(strings.TrimSuffix(rest, "\n"), " ")
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(b) < 4 {
		return "", 0, false
	}
	return name, binary.BigEndian.Uint32(b), true
}
