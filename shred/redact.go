package shred

import (
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"time"
)

// Redact wraps a value for log/slog so that its fields tagged strata:"sensitive" are logged as
// Redacted and never in clear:
//
//	logger.Info("issued", "event", shred.Redact(issued))
func Redact(v any) slog.LogValuer { return redacting{v} }

type redacting struct{ v any }

// LogValue implements slog.LogValuer.
func (r redacting) LogValue() slog.Value { return redactValue(reflect.ValueOf(r.v), 0) }

func redactValue(v reflect.Value, depth int) slog.Value {
	for v.IsValid() && (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) {
		if v.IsNil() {
			return slog.AnyValue(nil)
		}
		v = v.Elem()
	}
	if !v.IsValid() {
		return slog.AnyValue(nil)
	}
	switch v.Kind() {
	case reflect.Slice, reflect.Array, reflect.Map, reflect.Struct:
		// Their elements may hold sensitive fields: logged as a redacted copy, and so is a
		// struct deeper than the groups below go.
		if (v.Kind() != reflect.Struct || depth > 8) && (hasTags(v.Type()) || hasInterface(v.Type())) {
			return slog.AnyValue(redactAny(v, depth+1))
		}
	}
	if v.Kind() != reflect.Struct || v.Type() == reflect.TypeFor[time.Time]() || depth > 8 {
		if v.CanInterface() {
			return slog.AnyValue(v.Interface())
		}
		return slog.StringValue(v.String())
	}
	t := v.Type()
	attrs := make([]slog.Attr, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if f.Tag.Get("strata") == "sensitive" {
			attrs = append(attrs, slog.String(name, Redacted))
			continue
		}
		attrs = append(attrs, slog.Attr{Key: name, Value: redactValue(v.Field(i), depth+1)})
	}
	return slog.GroupValue(attrs...)
}

// redactAny returns a copy of v for a log line, with its sensitive fields replaced by Redacted:
// structs as maps of their JSON names, slices and arrays as []any, maps as map[string]any.
// Values that encode themselves (a time.Time) are kept as they are.
func redactAny(v reflect.Value, depth int) any {
	for v.IsValid() && (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	if !v.IsValid() {
		return nil
	}
	tagged := hasTags(v.Type()) || hasInterface(v.Type())
	if depth > maxDepth && tagged {
		return Redacted // deeper than any payload goes: nothing of it is logged
	}
	if !tagged || encodesItself(v.Type()) && !hasTags(v.Type()) {
		if v.CanInterface() {
			return v.Interface()
		}
		return v.String()
	}
	switch v.Kind() {
	case reflect.Slice, reflect.Array:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = redactAny(v.Index(i), depth+1)
		}
		return out
	case reflect.Map:
		out := make(map[string]any, v.Len())
		for it := v.MapRange(); it.Next(); {
			out[fmt.Sprint(it.Key())] = redactAny(it.Value(), depth+1)
		}
		return out
	case reflect.Struct:
		t := v.Type()
		out := make(map[string]any, t.NumField())
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if f.Tag.Get("strata") == "sensitive" {
				out[name] = Redacted
				continue
			}
			out[name] = redactAny(v.Field(i), depth+1)
		}
		return out
	}
	return Redacted // a value that encodes itself and holds sensitive fields: nothing of it is logged
}
