package shred

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/bits"
	"slices"
)

// errBadJSON is returned by the walker for input that is not one well-formed JSON value.
var errBadJSON = errors.New("malformed JSON")

// maxDepth bounds the nesting the walker follows; deeper documents are refused, not recursed
// into.
const maxDepth = 256

// pathString joins the keys of a value's path with ".", the form of declared paths; a value
// inside an array has "[]" for the array's element.
func pathString(keys [][]byte) string { return string(appendPath(nil, keys)) }

// appendPath appends the keys of a path joined with "." to dst.
func appendPath(dst []byte, keys [][]byte) []byte {
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, '.')
		}
		dst = append(dst, k...)
	}
	return dst
}

// walkMode says what a walker does at the values it meets.
type walkMode uint8

const (
	// walkGeneric calls the pick and fn functions of rewrite.
	walkGeneric walkMode = iota
	// walkSeal encrypts the values the plan marks sensitive (see fields.seal).
	walkSeal
	// walkOpen decrypts, or redacts, every envelope (see fields.open).
	walkOpen
)

// walker is a single-pass JSON scanner. It checks the syntax of one whole document, tracks the
// path of keys to each value, and splices replacements for the values it picks into a copy of
// the document, copying the bytes between them in runs rather than token by token. White space
// between tokens is dropped from the copy (as json.Compact does); a document with nothing to
// replace and no such space is returned as it is, without a copy.
//
// The path is passed down as a slice of a stack array, never stored in the walker, so that the
// fast paths (walkSeal and walkOpen) allocate only the output.
type walker struct {
	data []byte
	i    int
	out  []byte // nil until the first replacement
	last int    // data[last:] is not yet copied to out
	// space is set when white space between tokens was skipped since last.
	space bool

	mode walkMode
	// walkGeneric
	pick func([][]byte, []byte) bool
	fn   func([][]byte, []byte) ([]byte, error)
	// walkSeal and walkOpen; held by value, as a pointer to it would escape with the walker's
	// content
	f fields
	// outCap is the capacity to allocate out with at the first replacement.
	outCap int

	// cand (walkOpen with f.direct) is 1 + the index of the direct field that the top-level
	// member being walked may set, or 0; deferred is set by openDirect when it did, for the
	// container to leave the member out.
	cand     int
	deferred bool
}

// rewrite copies the JSON document data, replacing values: for each value below the top for
// which pick returns true, the value's raw bytes are passed to fn and its result is written
// instead. pick and fn see the keys of the value's path (see pathString) and its raw bytes.
// Values not picked are copied byte for byte; white space between tokens is dropped. fn must
// return one well-formed JSON value. rewrite checks the syntax of the whole document as it goes,
// so that malformed input is refused rather than copied. The result may be data itself.
func rewrite(data []byte, pick func(keys [][]byte, raw []byte) bool, fn func(keys [][]byte, raw []byte) ([]byte, error)) ([]byte, error) {
	w := walker{data: data, mode: walkGeneric, pick: pick, fn: fn, outCap: len(data) + len(data)/2}
	return w.run()
}

// run walks the whole document and returns the copy.
func (w *walker) run() ([]byte, error) {
	var keys [16][]byte
	w.skipSpace()
	if err := w.value(0, keys[:0]); err != nil {
		return nil, err
	}
	w.skipSpace()
	if w.i != len(w.data) {
		return nil, errBadJSON
	}
	if w.out == nil && !w.space {
		return w.data, nil
	}
	w.flush(len(w.data), len(w.data))
	return w.out, nil
}

func (w *walker) skipSpace() {
	start := w.i
	for w.i < len(w.data) {
		switch w.data[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			w.space = w.space || w.i > start
			return
		}
	}
	w.space = w.space || w.i > start
}

// flush copies data[last:to] to out (compacted when it holds white space between tokens) and
// moves last to next. to and next lie between tokens.
func (w *walker) flush(to, next int) {
	if w.out == nil {
		w.out = make([]byte, 0, max(w.outCap, len(w.data)))
	}
	if w.space {
		w.out = appendCompact(w.out, w.data[w.last:to])
	} else {
		w.out = append(w.out, w.data[w.last:to]...)
	}
	w.last, w.space = next, false
}

// appendCompact appends seg to dst without the white space outside strings; seg starts and
// ends outside a string.
func appendCompact(dst, seg []byte) []byte {
	inString := false
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if inString {
			dst = append(dst, c)
			switch c {
			case '\\':
				if i+1 < len(seg) {
					i++
					dst = append(dst, seg[i])
				}
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '"':
			inString = true
		}
		dst = append(dst, c)
	}
	return dst
}

// value walks the value at w.i, whose path is keys.
func (w *walker) value(depth int, keys [][]byte) error {
	if depth > maxDepth || w.i >= len(w.data) {
		return errBadJSON
	}
	start := w.i
	c := w.data[start]
	if len(keys) > 0 {
		switch w.mode {
		case walkSeal:
			if kind, ok := w.f.plan.lookup(keys); ok {
				if err := w.skipValue(depth); err != nil {
					return err
				}
				if raw := w.data[start:w.i]; w.f.lookalikes && bytes.Contains(raw, envelopeToken) && holdsLookalike(raw) {
					return w.lookalike()
				}
				w.flush(start, w.i)
				return w.f.seal(w, keys, kind, w.data[start:w.i])
			}
		case walkGeneric:
			if c == '{' || c == '[' {
				if err := w.skipValue(depth); err != nil {
					return err
				}
				if raw := w.data[start:w.i]; w.pick(slices.Clone(keys), raw) {
					return w.replace(start, keys, raw)
				}
				w.i = start
			}
		}
	}
	switch c {
	case '{', '[':
		return w.container(depth, keys)
	case '"':
		if _, err := w.skipString(); err != nil {
			return err
		}
	default:
		if err := w.skipScalar(); err != nil {
			return err
		}
	}
	if len(keys) == 0 {
		return nil
	}
	raw := w.data[start:w.i]
	switch w.mode {
	case walkOpen:
		if isEnvelope(raw) {
			if w.cand > 0 && len(keys) == 1 {
				return w.openDirect(start, keys, raw)
			}
			w.flush(start, w.i)
			return w.f.open(w, keys, raw)
		}
	case walkSeal:
		if w.f.lookalikes && isEnvelope(raw) {
			return w.lookalike()
		}
	case walkGeneric:
		if w.pick(slices.Clone(keys), raw) {
			return w.replace(start, keys, raw)
		}
	}
	return nil
}

// lookalike returns the error of checkLookalikes for the document, which holds a value in clear
// that starts like an envelope: the walk, in document order, met the first one, which that
// error names.
func (w *walker) lookalike() error {
	if err := checkLookalikes(w.data); err != nil {
		return err
	}
	return ErrLookalike // not reached: the walk found one
}

// holdsLookalike reports whether the JSON value raw is, or holds, a string that starts like an
// envelope. The prefix found inside a string's text (after an escaped quote) or in an object's
// key is none: checkLookalikes lets those pass.
func holdsLookalike(raw []byte) bool {
	if raw[0] == '"' {
		return isEnvelope(raw)
	}
	return checkLookalikes(raw) != nil
}

// replace writes fn's replacement of the value data[start:w.i]. pick and fn get a copy of the
// path: the walker's own stays on the stack.
func (w *walker) replace(start int, keys [][]byte, raw []byte) error {
	rep, err := w.fn(slices.Clone(keys), raw)
	if err != nil {
		return err
	}
	w.flush(start, w.i)
	w.out = append(w.out, rep...)
	return nil
}

// container walks the object or array at w.i, whose path is keys, descending into its values.
func (w *walker) container(depth int, keys [][]byte) error {
	open := w.data[w.i]
	closer := byte('}')
	if open == '[' {
		closer = ']'
	}
	w.i++
	w.skipSpace()
	if w.i < len(w.data) && w.data[w.i] == closer {
		w.i++
		return nil
	}
	n := len(keys)
	// direct: the members of the top-level object may set fields of f.dst (see openDirect).
	// kept counts the members written to the copy; a member left out takes the comma before
	// it along, or the one after it (dropComma) when it would be the first.
	direct := w.mode == walkOpen && len(w.f.direct) > 0 && open == '{' && n == 0
	kept, commaAt, dropComma := 0, -1, false
	for {
		if open == '{' {
			keyStart := w.i
			escaped, err := w.skipString()
			if err != nil {
				return err
			}
			key := w.data[keyStart+1 : w.i-1]
			if escaped {
				if key, err = unquote(w.data[keyStart:w.i]); err != nil {
					return err
				}
			}
			w.skipSpace()
			if w.i >= len(w.data) || w.data[w.i] != ':' {
				return errBadJSON
			}
			w.i++
			keys = append(keys[:n], key)
			if direct {
				if w.cand = w.f.candidate(key) + 1; w.cand > 0 {
					from := keyStart
					if kept > 0 {
						from = commaAt
					}
					// What may be left out stays pending. (The white space before the
					// colon is then copied as it is: only json.Unmarshal reads this copy.)
					w.flush(from, from)
				}
			}
		} else {
			keys = append(keys[:n], arrayKey)
		}
		w.skipSpace()
		if err := w.value(depth+1, keys); err != nil {
			return err
		}
		if direct {
			if w.deferred {
				w.last, w.deferred, dropComma = w.i, false, kept == 0
			} else {
				kept++
			}
			w.cand = 0
		}
		w.skipSpace()
		if w.i >= len(w.data) {
			return errBadJSON
		}
		switch w.data[w.i] {
		case ',':
			if direct {
				commaAt = w.i
				if dropComma {
					w.flush(w.i, w.i+1)
					dropComma = false
				}
			}
			w.i++
			w.skipSpace()
		case closer:
			w.i++
			return nil
		default:
			return errBadJSON
		}
	}
}

// arrayKey stands for the element of an array in a path.
var arrayKey = []byte("[]")

// unquote returns the text of a JSON string token, without copying unless it has escapes.
func unquote(tok []byte) ([]byte, error) {
	inner := tok[1 : len(tok)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner, nil
	}
	var s string
	if err := json.Unmarshal(tok, &s); err != nil {
		return nil, errBadJSON
	}
	return []byte(s), nil
}

// skipValue moves w.i past one JSON value, checking its syntax, without visiting what is inside.
func (w *walker) skipValue(depth int) error {
	if depth > maxDepth || w.i >= len(w.data) {
		return errBadJSON
	}
	switch c := w.data[w.i]; c {
	case '"':
		_, err := w.skipString()
		return err
	case '{', '[':
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		w.i++
		w.skipSpace()
		if w.i < len(w.data) && w.data[w.i] == closer {
			w.i++
			return nil
		}
		for {
			if c == '{' {
				if _, err := w.skipString(); err != nil {
					return err
				}
				w.skipSpace()
				if w.i >= len(w.data) || w.data[w.i] != ':' {
					return errBadJSON
				}
				w.i++
				w.skipSpace()
			}
			if err := w.skipValue(depth + 1); err != nil {
				return err
			}
			w.skipSpace()
			if w.i >= len(w.data) {
				return errBadJSON
			}
			if w.data[w.i] == closer {
				w.i++
				return nil
			}
			if w.data[w.i] != ',' {
				return errBadJSON
			}
			w.i++
			w.skipSpace()
		}
	default:
		return w.skipScalar()
	}
}

// skipScalar moves w.i past a number, true, false or null, checking it.
func (w *walker) skipScalar() error {
	start := w.i
	for w.i < len(w.data) {
		switch w.data[w.i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return scalar(w.data[start:w.i])
		}
		w.i++
	}
	return scalar(w.data[start:w.i])
}

// scalar checks a number, true, false or null token.
func scalar(tok []byte) error {
	switch string(tok) {
	case "true", "false", "null":
		return nil
	}
	if !isNumber(tok) {
		return errBadJSON
	}
	return nil
}

// isNumber reports whether tok is a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func isNumber(tok []byte) bool {
	i := 0
	if i < len(tok) && tok[i] == '-' {
		i++
	}
	switch {
	case i < len(tok) && tok[i] == '0':
		i++
	case i < len(tok) && '1' <= tok[i] && tok[i] <= '9':
		for i < len(tok) && isDigit(tok[i]) {
			i++
		}
	default:
		return false
	}
	if i < len(tok) && tok[i] == '.' {
		i++
		if i >= len(tok) || !isDigit(tok[i]) {
			return false
		}
		for i < len(tok) && isDigit(tok[i]) {
			i++
		}
	}
	if i < len(tok) && (tok[i] == 'e' || tok[i] == 'E') {
		i++
		if i < len(tok) && (tok[i] == '+' || tok[i] == '-') {
			i++
		}
		if i >= len(tok) || !isDigit(tok[i]) {
			return false
		}
		for i < len(tok) && isDigit(tok[i]) {
			i++
		}
	}
	return i == len(tok)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// skipString moves w.i past one JSON string, checking its escapes and that it holds no control
// characters, and reports whether it has escapes.
func (w *walker) skipString() (escaped bool, err error) {
	d := w.data
	if w.i >= len(d) || d[w.i] != '"' {
		return false, errBadJSON
	}
	j := w.i + 1
	for {
		j = plainRun(d, j)
		if j >= len(d) {
			return false, errBadJSON
		}
		switch c := d[j]; {
		case c == '"':
			w.i = j + 1
			return escaped, nil
		case c < 0x20:
			return false, errBadJSON
		default: // a backslash
			escaped = true
			if j+1 >= len(d) {
				return false, errBadJSON
			}
			switch d[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if j+5 >= len(d) || !isHex4(d[j+2:j+6]) {
					return false, errBadJSON
				}
				j += 6
			default:
				return false, errBadJSON
			}
		}
	}
}

// plainRun returns the index of the first byte from j on that a JSON string does not hold as it
// is (a quote, a backslash or a control character), or len(d). It tests eight bytes at a time:
// in each of the three masks the lowest flagged byte is exact (a borrow only runs upwards from
// a matching byte), so the lowest bit of their union is the first such byte.
func plainRun(d []byte, j int) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for ; j+8 <= len(d); j += 8 {
		x := binary.LittleEndian.Uint64(d[j:])
		quote, backslash := x^(ones*'"'), x^(ones*'\\')
		if m := ((quote-ones)&^quote | (backslash-ones)&^backslash | (x-ones*0x20)&^x) & highs; m != 0 {
			return j + bits.TrailingZeros64(m)>>3
		}
	}
	for j < len(d) && plainStringByte[d[j]] {
		j++
	}
	return j
}

// plainStringByte is true for the bytes a JSON string holds as they are: all but the quote,
// the backslash and the control characters.
var plainStringByte = func() (t [256]bool) {
	for c := range t {
		t[c] = c >= 0x20 && c != '"' && c != '\\'
	}
	return t
}()

func isHex4(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
