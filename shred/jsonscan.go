package shred

import (
	"bytes"
	"encoding/json"
	"errors"
)

// errBadJSON is returned by rewrite for input that is not one well-formed JSON value.
var errBadJSON = errors.New("malformed JSON")

// maxDepth bounds the nesting rewrite follows; deeper documents are refused, not recursed into.
const maxDepth = 256

// pathString joins the keys of a value's path with ".", the form of declared paths; a value
// inside an array has "[]" for the array's element.
func pathString(keys [][]byte) string { return string(bytes.Join(keys, []byte("."))) }

// rewrite copies the JSON document data, replacing values: for each value below the top for
// which pick returns true, the value's raw bytes are passed to fn and its result is written
// instead. pick and fn see the keys of the value's path (see pathString) and its raw bytes.
// Values not picked are copied byte for byte; white space between tokens is dropped. fn must
// return one well-formed JSON value. rewrite checks the syntax of the whole document as it goes,
// so that malformed input is refused rather than copied.
func rewrite(data []byte, pick func(keys [][]byte, raw []byte) bool, fn func(keys [][]byte, raw []byte) ([]byte, error)) ([]byte, error) {
	s := scanner{data: data, pick: pick, fn: fn, out: make([]byte, 0, len(data)+len(data)/2)}
	s.skipSpace()
	if err := s.value(0); err != nil {
		return nil, err
	}
	s.skipSpace()
	if s.i != len(s.data) {
		return nil, errBadJSON
	}
	return s.out, nil
}

type scanner struct {
	data []byte
	i    int
	keys [][]byte
	out  []byte
	pick func([][]byte, []byte) bool
	fn   func([][]byte, []byte) ([]byte, error)
}

func (s *scanner) skipSpace() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value copies (or replaces) the value at s.i to s.out.
func (s *scanner) value(depth int) error {
	if depth > maxDepth || s.i >= len(s.data) {
		return errBadJSON
	}
	c := s.data[s.i]
	if c == '{' || c == '[' {
		if len(s.keys) > 0 {
			start := s.i
			if err := s.skipValue(depth); err != nil {
				return err
			}
			if raw := s.data[start:s.i]; s.pick(s.keys, raw) {
				return s.replace(raw)
			}
			s.i = start
		}
		return s.container(depth)
	}
	start := s.i
	if err := s.skipValue(depth); err != nil {
		return err
	}
	raw := s.data[start:s.i]
	if len(s.keys) > 0 && s.pick(s.keys, raw) {
		return s.replace(raw)
	}
	s.out = append(s.out, raw...)
	return nil
}

func (s *scanner) replace(raw []byte) error {
	rep, err := s.fn(s.keys, raw)
	if err != nil {
		return err
	}
	s.out = append(s.out, rep...)
	return nil
}

// container copies the object or array at s.i, descending into its values.
func (s *scanner) container(depth int) error {
	open := s.data[s.i]
	closer := byte('}')
	if open == '[' {
		closer = ']'
	}
	s.out = append(s.out, open)
	s.i++
	s.skipSpace()
	if s.i < len(s.data) && s.data[s.i] == closer {
		s.i++
		s.out = append(s.out, closer)
		return nil
	}
	n := len(s.keys)
	defer func() { s.keys = s.keys[:n] }()
	for {
		if open == '{' {
			keyStart := s.i
			if err := s.skipString(); err != nil {
				return err
			}
			key, err := unquote(s.data[keyStart:s.i])
			if err != nil {
				return err
			}
			s.out = append(s.out, s.data[keyStart:s.i]...)
			s.skipSpace()
			if s.i >= len(s.data) || s.data[s.i] != ':' {
				return errBadJSON
			}
			s.i++
			s.out = append(s.out, ':')
			s.keys = append(s.keys[:n], key)
		} else {
			s.keys = append(s.keys[:n], arrayKey)
		}
		s.skipSpace()
		if err := s.value(depth + 1); err != nil {
			return err
		}
		s.skipSpace()
		if s.i >= len(s.data) {
			return errBadJSON
		}
		switch s.data[s.i] {
		case ',':
			s.i++
			s.out = append(s.out, ',')
			s.skipSpace()
		case closer:
			s.i++
			s.out = append(s.out, closer)
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

// skipValue moves s.i past one JSON value, checking its syntax.
func (s *scanner) skipValue(depth int) error {
	if depth > maxDepth || s.i >= len(s.data) {
		return errBadJSON
	}
	switch c := s.data[s.i]; c {
	case '"':
		return s.skipString()
	case '{', '[':
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		s.i++
		s.skipSpace()
		if s.i < len(s.data) && s.data[s.i] == closer {
			s.i++
			return nil
		}
		for {
			if c == '{' {
				if err := s.skipString(); err != nil {
					return err
				}
				s.skipSpace()
				if s.i >= len(s.data) || s.data[s.i] != ':' {
					return errBadJSON
				}
				s.i++
				s.skipSpace()
			}
			if err := s.skipValue(depth + 1); err != nil {
				return err
			}
			s.skipSpace()
			if s.i >= len(s.data) {
				return errBadJSON
			}
			if s.data[s.i] == closer {
				s.i++
				return nil
			}
			if s.data[s.i] != ',' {
				return errBadJSON
			}
			s.i++
			s.skipSpace()
		}
	default:
		start := s.i
		for s.i < len(s.data) {
			switch s.data[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return scalar(s.data[start:s.i])
			}
			s.i++
		}
		return scalar(s.data[start:s.i])
	}
}

// scalar checks a number, true, false or null token.
func scalar(tok []byte) error {
	switch string(tok) {
	case "true", "false", "null":
		return nil
	}
	if len(tok) == 0 || !json.Valid(tok) || tok[0] == '"' || tok[0] == '{' || tok[0] == '[' {
		return errBadJSON
	}
	return nil
}

// skipString moves s.i past one JSON string, checking its escapes and that it holds no control
// characters.
func (s *scanner) skipString() error {
	if s.i >= len(s.data) || s.data[s.i] != '"' {
		return errBadJSON
	}
	for j := s.i + 1; j < len(s.data); j++ {
		switch c := s.data[j]; {
		case c == '"':
			s.i = j + 1
			return nil
		case c < 0x20:
			return errBadJSON
		case c == '\\':
			if j+1 >= len(s.data) {
				return errBadJSON
			}
			switch s.data[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j++
			case 'u':
				if j+5 >= len(s.data) || !isHex4(s.data[j+2:j+6]) {
					return errBadJSON
				}
				j += 5
			default:
				return errBadJSON
			}
		}
	}
	return errBadJSON
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
