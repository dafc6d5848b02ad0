package admintest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Do sends a request to srv with a bearer token (none if "") and a body
// (nil, a string, bytes, or a value sent as JSON), and returns the status
// and the body of the answer.
func Do(t testing.TB, srv *httptest.Server, method, path, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// DoJSON is Do that decodes a JSON answer into v (when not nil).
func DoJSON(t testing.TB, srv *httptest.Server, method, path, token string, body, v any) int {
	t.Helper()
	code, b := Do(t, srv, method, path, token, body)
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s %s: decoding %q: %v", method, path, b, err)
		}
	}
	return code
}

// Client sends requests to a front end's test server.
type Client struct {
	T   testing.TB
	Srv *httptest.Server
}

// Do is Do on the client's server.
func (c Client) Do(method, path, token string, body any) (int, []byte) {
	c.T.Helper()
	return Do(c.T, c.Srv, method, path, token, body)
}

// DoJSON is DoJSON on the client's server.
func (c Client) DoJSON(method, path, token string, body, v any) int {
	c.T.Helper()
	return DoJSON(c.T, c.Srv, method, path, token, body, v)
}
