package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The tests check every response they get against docs/openapi.json: the path, method and
// status must be documented, and a JSON body must match the documented schema.

type openAPI struct {
	doc      map[string]any
	compiler *jsonschema.Compiler
	routes   []docRoute

	mu      sync.Mutex
	schemas map[string]*jsonschema.Schema
}

type docRoute struct {
	template string
	re       *regexp.Regexp
}

var (
	specOnce sync.Once
	spec     *openAPI
	specErr  error
)

func loadSpec() (*openAPI, error) {
	specOnce.Do(func() {
		b, err := os.ReadFile("../docs/openapi.json")
		if err != nil {
			specErr = err
			return
		}
		raw, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			specErr = err
			return
		}
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			specErr = err
			return
		}
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft2020)
		c.AssertFormat()
		if err := c.AddResource("openapi.json", raw); err != nil {
			specErr = err
			return
		}
		o := &openAPI{doc: doc, compiler: c, schemas: map[string]*jsonschema.Schema{}}
		for p := range doc["paths"].(map[string]any) {
			re := "^" + regexp.MustCompile(`\\\{[^}]+\\\}`).ReplaceAllString(regexp.QuoteMeta(p), `[^/]+`) + "$"
			o.routes = append(o.routes, docRoute{template: p, re: regexp.MustCompile(re)})
		}
		spec = o
	})
	return spec, specErr
}

// match returns the documented path template of a request path; exact templates win.
func (o *openAPI) match(path string) (string, bool) {
	best := ""
	for _, r := range o.routes {
		if r.re.MatchString(path) && (best == "" || !strings.Contains(r.template, "{")) {
			best = r.template
		}
	}
	return best, best != ""
}

func pointerEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func (o *openAPI) schema(loc string) (*jsonschema.Schema, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if s, ok := o.schemas[loc]; ok {
		return s, nil
	}
	s, err := o.compiler.Compile("openapi.json#" + loc)
	if err != nil {
		return nil, err
	}
	o.schemas[loc] = s
	return s, nil
}

func validateResponse(t testing.TB, method, rawPath string, r response) {
	t.Helper()
	o, err := loadSpec()
	if err != nil {
		t.Fatalf("docs/openapi.json: %v", err)
	}
	u, err := url.Parse(rawPath)
	if err != nil {
		return
	}
	tmpl, ok := o.match(u.EscapedPath())
	if !ok {
		if r.status == 404 {
			return // an unknown path: the typed 404 is checked by the test itself
		}
		t.Errorf("openapi: %s %s is not documented", method, u.Path)
		return
	}
	ops := o.doc["paths"].(map[string]any)[tmpl].(map[string]any)
	op, ok := ops[strings.ToLower(method)].(map[string]any)
	if !ok {
		if r.status == 404 || r.status == 405 {
			return
		}
		t.Errorf("openapi: %s %s is not documented", method, tmpl)
		return
	}
	status := fmt.Sprint(r.status)
	resps := op["responses"].(map[string]any)
	resp, ok := resps[status].(map[string]any)
	if !ok {
		t.Errorf("openapi: %s %s answered %d, which is not documented: %s", method, tmpl, r.status, r.body)
		return
	}
	loc := "/paths/" + pointerEscape(tmpl) + "/" + strings.ToLower(method) + "/responses/" + status
	if ref, ok := resp["$ref"].(string); ok {
		loc = strings.TrimPrefix(ref, "#")
		resp = o.doc["components"].(map[string]any)["responses"].(map[string]any)[strings.TrimPrefix(loc, "/components/responses/")].(map[string]any)
	}
	ct := strings.Split(r.header.Get("Content-Type"), ";")[0]
	content, _ := resp["content"].(map[string]any)
	if _, ok := content[ct]; !ok {
		t.Errorf("openapi: %s %s %d has content type %q, documented %v", method, tmpl, r.status, ct, keys(content))
		return
	}
	if ct != "application/json" {
		return
	}
	sch, err := o.schema(loc + "/content/application~1json/schema")
	if err != nil {
		t.Fatalf("openapi: compile the schema of %s %s %d: %v", method, tmpl, r.status, err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.body))
	if err != nil {
		t.Errorf("openapi: %s %s %d: the body is not JSON: %v", method, tmpl, r.status, err)
		return
	}
	if err := sch.Validate(inst); err != nil {
		t.Errorf("openapi: %s %s %d: the body does not match the documented schema: %v\n%s", method, tmpl, r.status, err, r.body)
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestOpenAPIDocumentsEveryRoute: every route the server registers is in docs/openapi.json
// and every documented path is served.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	o, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("server.go")
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{"GET /metrics": true, "GET /": true}
	for _, m := range regexp.MustCompile(`pattern: "([A-Z]+) ([^"]+)"`).FindAllStringSubmatch(string(src), -1) {
		served[m[1]+" "+m[2]] = true
	}
	documented := map[string]bool{}
	for p, ops := range o.doc["paths"].(map[string]any) {
		for m := range ops.(map[string]any) {
			if m != "parameters" {
				documented[strings.ToUpper(m)+" "+p] = true
			}
		}
	}
	for r := range served {
		if !documented[r] {
			t.Errorf("%s is served but not documented in docs/openapi.json", r)
		}
	}
	for r := range documented {
		if !served[r] {
			t.Errorf("%s is documented but not served", r)
		}
	}
	if v := o.doc["openapi"]; v != "3.1.0" {
		t.Errorf("openapi version %v, want 3.1.0", v)
	}
}

// failRecorder is a testing.TB that records failures instead of failing.
type failRecorder struct {
	testing.TB
	failed []string
}

func (f *failRecorder) Errorf(format string, args ...any) {
	f.failed = append(f.failed, fmt.Sprintf(format, args...))
}
func (f *failRecorder) Helper() {}

// TestOpenAPIValidatorRejects: the checker is not a no-op: bodies off the schema, undocumented
// statuses and content types fail.
func TestOpenAPIValidatorRejects(t *testing.T) {
	json := func(s string) response {
		return response{status: 200, header: map[string][]string{"Content-Type": {"application/json"}}, body: []byte(s)}
	}
	for name, c := range map[string]struct {
		method, path string
		r            response
	}{
		"wrong type":         {"GET", "/v1/streams", json(`{"streams":5}`)},
		"missing field":      {"GET", "/v1/streams/s", json(`{"name":"s"}`)},
		"extra field":        {"GET", "/v1/whoami", json(`{"key":"k","role":"reader","tenant":"t","x":1}`)},
		"bad uuid":           {"GET", "/v1/events", json(`{"events":[{"id":"nope","stream":"s","version":1,"position":"1","type":"T","schema":1,"data":{},"meta":{},"recordedAt":"2023-03-14T09:00:00Z","occurredAt":"2023-03-14T09:00:00Z"}]}`)},
		"undocumented code":  {"GET", "/v1/events", response{status: 418, header: map[string][]string{"Content-Type": {"application/json"}}, body: []byte(`{}`)}},
		"unknown error code": {"GET", "/v1/events", response{status: 400, header: map[string][]string{"Content-Type": {"application/json"}}, body: []byte(`{"error":{"code":"oops","message":"m"}}`)}},
	} {
		f := &failRecorder{TB: t}
		validateResponse(f, c.method, c.path, c.r)
		if len(f.failed) == 0 {
			t.Errorf("%s: accepted", name)
		}
	}
}
