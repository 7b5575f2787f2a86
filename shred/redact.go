package shred

import (
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
