package httpapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/httpapi"
	"github.com/strata-events/strata/internal/testenv"
	"github.com/strata-events/strata/ledger"
)

// chromium returns the path of the Chromium binary; it skips the test when there is none,
// or fails it under CI=true (.ci/run installs Debian's chromium package).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("STRATA_TEST_CHROMIUM"), "chromium", "chromium-browser"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if testenv.InCI() {
		t.Fatal("chromium is not installed (CI=true, so this fails): apt-get install -y chromium")
	}
	t.Skip("chromium is not installed, skipping (apt-get install -y chromium, or set STRATA_TEST_CHROMIUM)")
	return ""
}

// tamperProofs serves the API but flips a byte of a hash in the proof of one event, as a
// compromised server or a man in the middle would.
func tamperProofs(h http.Handler, eventID string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/events/"+eventID+"/proof" {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		var p httpapi.ProofResponse
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &p) != nil {
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
			return
		}
		p.Proof[0][0] ^= 0x01 // a byte of a sibling hash: the leaf still is the event shown
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(p)
	})
}

// tamperShown makes h answer GET path with old replaced by new: a server that shows an event
// other than the one it proves.
func tamperShown(h http.Handler, path, old, new string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		w.Header().Set("Content-Type", rec.Header().Get("Content-Type"))
		w.WriteHeader(rec.Code)
		w.Write(bytes.ReplaceAll(rec.Body.Bytes(), []byte(old), []byte(new)))
	})
}

// badgeColor returns the mean colour of a PNG screenshot.
func badgeColor(t *testing.T, shot []byte) (r, g, b float64) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	bd := img.Bounds()
	n := 0.0
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			r, g, b = r+float64(cr>>8), g+float64(cg>>8), b+float64(cb>>8)
			n++
		}
	}
	if n == 0 {
		t.Fatal("empty screenshot")
	}
	return r / n, g / n, b / n
}

// TestExplorerInChromium drives the embedded explorer in headless Chromium: it lists the
// tenant's streams, shows a stream's timeline with actors and times, folds the state at a time
// chosen on the slider with each event's diff, and checks inclusion proofs with WebCrypto
// against the signed checkpoint (signature included): a genuine proof shows a green VERIFIED
// badge, a tampered one a red FAILED badge, and so does a genuine proof of an event that the
// page shows otherwise, all checked in screenshots.
func TestExplorerInChromium(t *testing.T) {
	bin := chromium(t)
	st := openSQLite(t)
	api, err := httpapi.New(httpapi.Config{Store: st, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	key, rec, _ := httpapi.NewKey(strata.RoleAuditor, "acme", "")
	ctx := context.Background()
	if _, err := st.(strata.APIKeyStore).CreateAPIKey(ctx, rec); err != nil {
		t.Fatal(err)
	}
	acme := strata.Metadata{Tenant: "acme", Principal: "ca-operator"}
	evs := []strata.EventData{
		{Type: "CertificateIssued", Data: []byte(`{"serial":"7F3A","status":"valid","subjectDN":"CN=Alice"}`), Meta: acme},
		{Type: "CertificateRenewed", Data: []byte(`{"validTo":"2025-03-14"}`), Meta: acme},
		{Type: "CertificateRevoked", Data: []byte(`{"status":"revoked","reason":"keyCompromise"}`), Meta: strata.Metadata{Tenant: "acme", Principal: "committee:security"}},
	}
	for _, e := range evs {
		if _, err := st.Append(ctx, "certificate-7F3A", strata.Any, e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Append(ctx, "certificate-FOREIGN", strata.Any, strata.EventData{Type: "X", Meta: strata.Metadata{Tenant: "umbrella"}}); err != nil {
		t.Fatal(err)
	}
	skey, vkey, err := ledger.GenerateKey(rand.Reader, "test.example/log")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := ledger.NewSigner(skey)
	sealer, _ := ledger.NewSealer(st, ledger.WithSigner(signer))
	if _, _, err := sealer.SealOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := sealer.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	var stored []strata.Event
	for e, err := range st.ReadStream(ctx, "certificate-7F3A", strata.ReadStreamOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, e)
	}
	srv := httptest.NewServer(tamperProofs(tamperShown(api.Handler(), "/v1/streams/certificate-7F3A/events", `"keyCompromise"`, `"superseded"`), stored[1].ID.String()))
	defer srv.Close()

	actx, cancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	bctx, cancel = context.WithTimeout(bctx, 2*time.Minute)
	defer cancel()

	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("browser: %s: %v", what, err)
		}
	}
	text := func(id string) string {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Text(chromedp.ID(id)))
		must("text of #"+id, err)
		return v
	}
	setSlider := func(v string) {
		t.Helper()
		_, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`(() => { const s = document.getElementById("slider"); s.value = "`+v+`"; s.dispatchEvent(new Event("input")); return true })()`))
		must("slider", err)
		// The state is asked of the server: wait for the answer for this event's version.
		n, _ := strconv.Atoi(v)
		must("state at the slider", chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS(`#state[data-version="`+strconv.Itoa(n+1)+`"]`))))
	}
	must("load the explorer", chromedp.Do(bctx, chromedp.Navigate(srv.URL+"/")))
	must("log in", chromedp.Do(bctx,
		chromedp.WaitVisible(chromedp.ID("apikey")),
		chromedp.SendKeys(chromedp.ID("apikey"), key),
		chromedp.SendKeys(chromedp.ID("logkey"), vkey),
		chromedp.Click(chromedp.CSS(`#login button`)),
	))
	must("list streams", chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS(`#streams li`))))
	whoami, streams := text("whoami"), text("streams")
	must("open the stream", chromedp.Do(bctx,
		chromedp.Click(chromedp.CSS(`#streams li[data-stream="certificate-7F3A"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#timeline tbody tr[data-index="2"]`)),
	))
	nRows, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll("#timeline tbody tr").length`))
	must("count rows", err)
	rows := text("timeline")
	setSlider("0")
	state0 := text("state")
	setSlider("2")
	state2 := text("state")
	if !strings.Contains(whoami, "auditor of acme") {
		t.Errorf("whoami shows %q", whoami)
	}
	if strings.Contains(streams, "FOREIGN") || !strings.Contains(streams, "certificate-7F3A") {
		t.Errorf("stream list %q", streams)
	}
	if nRows != 3 || !strings.Contains(rows, "ca-operator") || !strings.Contains(rows, "committee:security") || !strings.Contains(rows, "UTC") {
		t.Errorf("timeline (%d rows): %q", nRows, rows)
	}
	if !strings.Contains(rows, `~ status: "valid" → "revoked"`) || !strings.Contains(rows, `+ validTo: "2025-03-14"`) {
		t.Errorf("timeline diffs: %q", rows)
	}
	if !strings.Contains(state0, `"valid"`) || strings.Contains(state0, "validTo") || strings.Contains(state0, "revoked") {
		t.Errorf("state at version 1: %q", state0)
	}
	if !strings.Contains(state2, `"revoked"`) || !strings.Contains(state2, "validTo") {
		t.Errorf("state at version 3: %q", state2)
	}

	check := func(row int, want, colour string) {
		t.Helper()
		// A click through JavaScript: chromedp's synthetic mouse click waits for the node to
		// stop moving, which the re-rendered badge box makes slow.
		_, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`(() => { document.getElementById("proof-badge").className = "badge pending"; document.querySelector('#timeline tbody tr[data-index="`+itoa(row)+`"] button.verify').click(); return true })()`))
		must("click verify", err)
		must("wait for the badge", chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS(`#proof-badge.ok, #proof-badge.fail, #proof-badge.unsigned`))))
		text, detail := text("proof-badge"), text("proof-detail")
		shot, err := chromedp.Run(bctx, chromedp.Screenshot(chromedp.ID("proof-badge")))
		must("screenshot the badge", err)
		page, err := chromedp.Run(bctx, chromedp.FullScreenshot(90))
		must("screenshot the page", err)
		os.WriteFile(filepath.Join(t.TempDir(), "explorer.jpg"), page, 0o644)
		if text != want {
			t.Errorf("row %d: badge %q, want %q (%s)", row, text, want, detail)
		}
		r, g, b := badgeColor(t, shot)
		got := map[string]bool{
			"green": g > r+40 && g > b+20,
			"red":   r > g+60 && r > b+40,
			"amber": r > b+60 && g > b+40 && r > g,
		}
		if !got[colour] {
			t.Errorf("row %d: badge colour rgb(%.0f,%.0f,%.0f), want %s", row, r, g, b, colour)
		}
		t.Logf("row %d: %s, badge rgb(%.0f,%.0f,%.0f): %s", row, text, r, g, b, strings.ReplaceAll(detail, "\n", "; "))
	}
	check(0, "VERIFIED", "green")
	check(1, "FAILED", "red") // the tampered proof
	check(2, "FAILED", "red") // a genuine proof of an event shown otherwise
	// Without the log's public key a proof matches only what this server says: not green.
	_, err = chromedp.Run(bctx, chromedp.Evaluate[bool](`(() => { state.logKey = ""; return true })()`))
	must("forget the log key", err)
	check(0, "UNSIGNED", "amber")
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
