package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/httpapi"
)

// TestGracefulShutdownKeepsAcknowledgedAppends: writers append as fast as they can while the
// server shuts down; every append that was acknowledged (201) is in the store afterwards.
func TestGracefulShutdownKeepsAcknowledgedAppends(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			st := b.open(t)
			api, err := httpapi.New(httpapi.Config{Store: st, Logger: discardLogger()})
			if err != nil {
				t.Fatal(err)
			}
			key, rec, _ := httpapi.NewKey(strata.RoleWriter, "acme", "")
			if _, err := st.(strata.APIKeyStore).CreateAPIKey(context.Background(), rec); err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: api.Handler()}
			srv.RegisterOnShutdown(api.Close)
			go srv.Serve(ln)
			url := "http://" + ln.Addr().String()

			var mu sync.Mutex
			var acked []uuid.UUID
			var started atomic.Int64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
			for w := range 8 {
				wg.Go(func() {
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						id := uuid.Must(uuid.NewV7())
						body, _ := json.Marshal(appendBody(nil, map[string]any{"id": id, "type": "Tick", "data": map[string]any{"w": w, "i": i}}))
						req, _ := http.NewRequest("POST", fmt.Sprintf("%s/v1/streams/w-%d/events", url, w), bytes.NewReader(body))
						req.Header.Set("Content-Type", "application/json")
						req.Header.Set("Authorization", "Bearer "+key)
						started.Add(1)
						resp, err := client.Do(req)
						if err != nil {
							continue // refused or cut: not acknowledged
						}
						resp.Body.Close()
						if resp.StatusCode == http.StatusCreated {
							mu.Lock()
							acked = append(acked, id)
							mu.Unlock()
						}
					}
				})
			}
			for started.Load() < 200 {
				sleepBriefly()
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Fatalf("shutdown: %v", err)
			}
			close(stop)
			wg.Wait()
			stored := map[uuid.UUID]bool{}
			for ev, err := range st.ReadAll(context.Background(), strata.ReadAllOptions{}) {
				if err != nil {
					t.Fatal(err)
				}
				stored[ev.ID] = true
			}
			for _, id := range acked {
				if !stored[id] {
					t.Fatalf("acknowledged append %s is not in the store", id)
				}
			}
			if len(acked) == 0 {
				t.Fatal("no append was acknowledged")
			}
			t.Logf("%d acknowledged appends, all stored (%d in the store)", len(acked), len(stored))
		})
	}
}
