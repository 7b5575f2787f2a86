package pki

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/codec"
	"github.com/strata-events/strata/inmem"
	"github.com/strata-events/strata/mysql"
	"github.com/strata-events/strata/postgres"
	"github.com/strata-events/strata/projection"
	"github.com/strata-events/strata/sqlite"
)

// StatusProjectionName is the stable name of the certificate status projection.
const StatusProjectionName = "certificate_status"

// StatusChangedType is the type of the events the status projection emits when a
// certificate's status changes, to stream StatusStream(serial).
const StatusChangedType = "CertificateStatusChanged"

// StatusStream is the stream of a certificate's CertificateStatusChanged events.
func StatusStream(serial string) string { return "certificate_status-" + serial }

// CertificateStatusChanged is emitted by the status projection (never during a rebuild).
type CertificateStatusChanged struct {
	Serial string `json:"serial"`
	Status Status `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// CertStatus is one row of the certificate_status read model.
type CertStatus struct {
	Serial       string
	Status       Status
	Reason       string
	InvalidSince time.Time // zero unless revoked
	ValidTo      time.Time
	ApprovedBy   []string
	ChangedAt    time.Time // RecordedAt of the event that set the status
}

// OCSPStatus is the answer of an OCSP-style lookup (RFC 6960 CertStatus).
type OCSPStatus string

// The OCSP answers. A suspended certificate is "revoked" with reason certificateHold, as RFC
// 5280 has it.
const (
	OCSPGood    OCSPStatus = "good"
	OCSPRevoked OCSPStatus = "revoked"
	OCSPUnknown OCSPStatus = "unknown"
)

// OCSPResponse answers a lookup by serial.
type OCSPResponse struct {
	Serial         string
	Status         OCSPStatus
	RevocationTime time.Time
	Reason         string
	// ProducedFrom is the projection version that answered.
	ProducedFrom int
}

// CRLEntry is one revoked certificate of the CRL.
type CRLEntry struct {
	Serial         string
	RevocationTime time.Time
	Reason         string
}

// StatusView is the certificate_status projection over one store: the projection to run with
// projection.NewWorker, and the readers (Lookup, CRL) answered from its read model. The read
// model is a table certificate_status_vN in the store's database (SQLite, PostgreSQL in the
// store's schema, MySQL), written in the batch's transaction, so each event changes it exactly
// once; on the in-memory store it is a map.
type StatusView struct {
	store   strata.Store
	ps      strata.ProjectionStore
	reg     *codec.Registry
	dialect string // sqlite, postgres, mysql, inmem
	schema  string // PostgreSQL: quoted schema and "."

	mu  sync.Mutex
	mem map[int]map[string]CertStatus // inmem: version → serial → row
}

// NewStatusView returns the certificate status view on store, decoding events with reg (nil
// means NewRegistry()).
func NewStatusView(store strata.Store, reg *codec.Registry) (*StatusView, error) {
	const op = "pki status"
	ps, ok := store.(strata.ProjectionStore)
	if !ok {
		return nil, strata.Errorf(strata.Invalid, op, "%T does not implement strata.ProjectionStore", store)
	}
	if reg == nil {
		var err error
		if reg, err = NewRegistry(); err != nil {
			return nil, err
		}
	}
	v := &StatusView{store: store, ps: ps, reg: reg, mem: map[int]map[string]CertStatus{}}
	switch s := store.(type) {
	case *sqlite.Store:
		v.dialect = "sqlite"
	case *mysql.Store:
		v.dialect = "mysql"
	case *postgres.Store:
		v.dialect, v.schema = "postgres", pgx.Identifier{s.Schema()}.Sanitize()+"."
	case *inmem.Store:
		v.dialect = "inmem"
	default:
		return nil, strata.Errorf(strata.Invalid, op, "no read model for a store of type %T", store)
	}
	return v, nil
}

func (v *StatusView) table(version int) string {
	return v.schema + "certificate_status_v" + strconv.Itoa(version)
}

// Projection returns version of the certificate_status projection. Versions keep separate
// tables, so that a new one is built beside the one readers use (blue-green).
func (v *StatusView) Projection(version int) projection.Projection {
	if version < 1 {
		version = 1
	}
	h := func(ctx context.Context, c *projection.Context, e strata.Event) error {
		return v.apply(ctx, version, c, e)
	}
	return projection.Projection{
		Name:    StatusProjectionName,
		Version: version,
		Filter:  strata.Filter{StreamPrefix: "certificate-"},
		Handlers: map[string]projection.Handler{
			"CertificateIssued": h, "CertificateRenewed": h, "CertificateSuspended": h,
			"CertificateReinstated": h, "CertificateRevoked": h,
		},
		Setup: func(ctx context.Context, tx any) error { return v.setup(ctx, version, tx) },
		Clear: func(ctx context.Context, tx any, _ strata.ProjectionKey) error { return v.clear(ctx, version, tx) },
		Drop:  func(ctx context.Context, tx any) error { return v.drop(ctx, version, tx) },
	}
}

// exec runs a statement with ? placeholders in tx.
func (v *StatusView) exec(ctx context.Context, tx any, q string, args ...any) error {
	switch tx := tx.(type) {
	case *sql.Tx:
		_, err := tx.ExecContext(ctx, q, args...)
		return err
	case pgx.Tx:
		_, err := tx.Exec(ctx, dollars(q), args...)
		return err
	}
	return fmt.Errorf("pki status: unexpected transaction %T", tx)
}

func dollars(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (v *StatusView) setup(ctx context.Context, version int, tx any) error {
	if v.dialect == "inmem" {
		return nil
	}
	return v.exec(ctx, tx, "CREATE TABLE IF NOT EXISTS "+v.table(version)+` (
		serial        VARCHAR(190) NOT NULL PRIMARY KEY,
		status        VARCHAR(32)  NOT NULL,
		reason        VARCHAR(255) NOT NULL,
		invalid_since BIGINT       NOT NULL,
		valid_to      BIGINT       NOT NULL,
		approved_by   TEXT         NOT NULL,
		changed_at    BIGINT       NOT NULL)`)
}

func (v *StatusView) clear(ctx context.Context, version int, tx any) error {
	if v.dialect == "inmem" {
		v.mu.Lock()
		defer v.mu.Unlock()
		delete(v.mem, version)
		return nil
	}
	return v.exec(ctx, tx, "DELETE FROM "+v.table(version))
}

func (v *StatusView) drop(ctx context.Context, version int, tx any) error {
	if v.dialect == "inmem" {
		return v.clear(ctx, version, tx)
	}
	return v.exec(ctx, tx, "DROP TABLE IF EXISTS "+v.table(version))
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// apply folds one certificate event into the read model and emits CertificateStatusChanged
// when the status changed.
func (v *StatusView) apply(ctx context.Context, version int, c *projection.Context, e strata.Event) error {
	m, err := v.reg.DecodeOne(ctx, e)
	if err != nil {
		return err
	}
	var set []string
	var args []any
	var serial string
	changed := Status("")
	reason := ""
	switch ev := m.Value.(type) {
	case CertificateIssued:
		serial = ev.Serial
		if v.dialect == "inmem" {
			v.put(version, CertStatus{Serial: serial, Status: StatusActive, ValidTo: ev.ValidTo, ChangedAt: e.RecordedAt})
		} else {
			if err := v.exec(ctx, c.Tx, "DELETE FROM "+v.table(version)+" WHERE serial = ?", serial); err != nil {
				return err
			}
			if err := v.exec(ctx, c.Tx, "INSERT INTO "+v.table(version)+" (serial, status, reason, invalid_since, valid_to, approved_by, changed_at) VALUES (?, ?, '', 0, ?, '[]', ?)",
				serial, string(StatusActive), micros(ev.ValidTo), micros(e.RecordedAt)); err != nil {
				return err
			}
		}
		changed = StatusActive
	case CertificateRenewed:
		serial = ev.Serial
		set, args = []string{"valid_to = ?"}, []any{micros(ev.ValidTo)}
	case CertificateSuspended:
		serial, changed, reason = ev.Serial, StatusSuspended, ev.Reason
		set, args = []string{"status = ?", "reason = ?", "changed_at = ?"}, []any{string(StatusSuspended), ev.Reason, micros(e.RecordedAt)}
	case CertificateReinstated:
		serial, changed = ev.Serial, StatusActive
		set, args = []string{"status = ?", "reason = ''", "changed_at = ?"}, []any{string(StatusActive), micros(e.RecordedAt)}
	case CertificateRevoked:
		serial, changed, reason = ev.Serial, StatusRevoked, ev.Reason
		approvers, _ := json.Marshal(slices.Sorted(slices.Values(ev.ApprovedBy)))
		if ev.ApprovedBy == nil {
			approvers = []byte("[]")
		}
		since := ev.InvalidSince
		if since.IsZero() {
			since = e.OccurredAt
		}
		set = []string{"status = ?", "reason = ?", "invalid_since = ?", "approved_by = ?", "changed_at = ?"}
		args = []any{string(StatusRevoked), ev.Reason, micros(since), string(approvers), micros(e.RecordedAt)}
	default:
		return nil
	}
	if serial == "" {
		return fmt.Errorf("pki status: %s at %s has no serial", e.Type, e.Position)
	}
	if set != nil {
		if v.dialect == "inmem" {
			v.update(version, serial, m.Value, e)
		} else if err := v.exec(ctx, c.Tx, "UPDATE "+v.table(version)+" SET "+strings.Join(set, ", ")+" WHERE serial = ?", append(args, serial)...); err != nil {
			return err
		}
	}
	if changed != "" {
		data, _ := json.Marshal(CertificateStatusChanged{Serial: serial, Status: changed, Reason: reason})
		c.Emit(StatusStream(serial), strata.EventData{Type: StatusChangedType, Data: data})
	}
	return nil
}

func (v *StatusView) put(version int, cs CertStatus) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.mem[version] == nil {
		v.mem[version] = map[string]CertStatus{}
	}
	v.mem[version][cs.Serial] = cs
}

func (v *StatusView) update(version int, serial string, val any, e strata.Event) {
	v.mu.Lock()
	defer v.mu.Unlock()
	cs, ok := v.mem[version][serial]
	if !ok {
		return
	}
	switch ev := val.(type) {
	case CertificateRenewed:
		cs.ValidTo = ev.ValidTo
	case CertificateSuspended:
		cs.Status, cs.Reason, cs.ChangedAt = StatusSuspended, ev.Reason, e.RecordedAt
	case CertificateReinstated:
		cs.Status, cs.Reason, cs.ChangedAt = StatusActive, "", e.RecordedAt
	case CertificateRevoked:
		cs.Status, cs.Reason, cs.InvalidSince, cs.ChangedAt = StatusRevoked, ev.Reason, ev.InvalidSince, e.RecordedAt
		if cs.InvalidSince.IsZero() {
			cs.InvalidSince = e.OccurredAt
		}
		cs.ApprovedBy = slices.Sorted(slices.Values(ev.ApprovedBy))
	}
	v.mem[version][serial] = cs
}

// version returns the version readers use: the active one, else 1.
func (v *StatusView) version(ctx context.Context) (int, error) {
	n, err := v.ps.ActiveProjection(ctx, StatusProjectionName)
	if err != nil {
		return 0, err
	}
	return max(n, 1), nil
}

// Statuses returns every row of the read model the readers use, by serial; serial, when not
// empty, selects one.
func (v *StatusView) Statuses(ctx context.Context, serial string) ([]CertStatus, int, error) {
	version, err := v.version(ctx)
	if err != nil {
		return nil, 0, err
	}
	var out []CertStatus
	err = v.ps.QueryProjection(ctx, func(tx any) error {
		if v.dialect == "inmem" {
			v.mu.Lock()
			defer v.mu.Unlock()
			for s, cs := range v.mem[version] {
				if serial == "" || s == serial {
					out = append(out, cs)
				}
			}
			slices.SortFunc(out, func(a, b CertStatus) int { return strings.Compare(a.Serial, b.Serial) })
			return nil
		}
		q := "SELECT serial, status, reason, invalid_since, valid_to, approved_by, changed_at FROM " + v.table(version)
		var args []any
		if serial != "" {
			q += " WHERE serial = ?"
			args = append(args, serial)
		}
		q += " ORDER BY serial"
		scan := func(sc func(...any) error) error {
			var cs CertStatus
			var status, approvers string
			var since, validTo, at int64
			if err := sc(&cs.Serial, &status, &cs.Reason, &since, &validTo, &approvers, &at); err != nil {
				return err
			}
			cs.Status = Status(status)
			if since != 0 {
				cs.InvalidSince = time.UnixMicro(since).UTC()
			}
			if validTo != 0 {
				cs.ValidTo = time.UnixMicro(validTo).UTC()
			}
			cs.ChangedAt = time.UnixMicro(at).UTC()
			if err := json.Unmarshal([]byte(approvers), &cs.ApprovedBy); err != nil {
				return err
			}
			out = append(out, cs)
			return nil
		}
		switch tx := tx.(type) {
		case *sql.Tx:
			rows, err := tx.QueryContext(ctx, q, args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				if err := scan(rows.Scan); err != nil {
					return err
				}
			}
			return rows.Err()
		case pgx.Tx:
			rows, err := tx.Query(ctx, dollars(q), args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				if err := scan(rows.Scan); err != nil {
					return err
				}
			}
			return rows.Err()
		}
		return fmt.Errorf("pki status: unexpected transaction %T", tx)
	})
	if err != nil {
		var se *strata.Error
		if !errors.As(err, &se) {
			err = strata.Errorf(strata.Unavailable, "pki status", "the certificate_status read model (version %d) cannot be read; is the projection running? %w", version, err)
		}
		return nil, 0, err
	}
	return out, version, nil
}

// Lookup answers an OCSP-style request for serial from the read model.
func (v *StatusView) Lookup(ctx context.Context, serial string) (OCSPResponse, error) {
	if serial == "" {
		return OCSPResponse{}, strata.Errorf(strata.Invalid, "ocsp lookup", "no serial")
	}
	rows, version, err := v.Statuses(ctx, serial)
	if err != nil {
		return OCSPResponse{}, err
	}
	r := OCSPResponse{Serial: serial, Status: OCSPUnknown, ProducedFrom: version}
	if len(rows) == 0 {
		return r, nil
	}
	cs := rows[0]
	switch cs.Status {
	case StatusActive:
		r.Status = OCSPGood
	case StatusRevoked:
		r.Status, r.RevocationTime, r.Reason = OCSPRevoked, cs.InvalidSince, cs.Reason
	case StatusSuspended:
		r.Status, r.RevocationTime, r.Reason = OCSPRevoked, cs.ChangedAt, "certificateHold"
	}
	return r, nil
}

// CRL lists the revoked and suspended (certificateHold) certificates, by serial.
func (v *StatusView) CRL(ctx context.Context) ([]CRLEntry, error) {
	rows, _, err := v.Statuses(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []CRLEntry
	for _, cs := range rows {
		switch cs.Status {
		case StatusRevoked:
			out = append(out, CRLEntry{Serial: cs.Serial, RevocationTime: cs.InvalidSince, Reason: cs.Reason})
		case StatusSuspended:
			out = append(out, CRLEntry{Serial: cs.Serial, RevocationTime: cs.ChangedAt, Reason: "certificateHold"})
		}
	}
	return out, nil
}
