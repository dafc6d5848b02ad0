package api

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkAPIRequest measures one authenticated request through the
// handler (token check cached after the first), by endpoint.
func BenchmarkAPIRequest(b *testing.B) {
	e := newEnv(b)
	for _, bc := range []struct{ name, path string }{
		{"locks", "/api/v1/locks"},
		{"search", "/api/v1/messages?status=quarantined&limit=50"},
		{"message", "/api/v1/messages/" + e.SpamOut},
		{"report", "/api/v1/reports?group_by=identity&since=1d"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", bc.path, nil)
			req.Header.Set("Authorization", "Bearer "+tokOut)
			for b.Loop() {
				rec := httptest.NewRecorder()
				e.api.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("got %d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
