package console_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/outguard/outguard/admin/api"
	"github.com/outguard/outguard/admin/console"
	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/quarantine"
	bolt "go.etcd.io/bbolt"
)

// The console and the API are two front ends over one operations layer,
// which holds the tokens, backends and audit trail; mount the console at
// "/" beside the API.
func ExampleNew() {
	dir, _ := os.MkdirTemp("", "outguard-console-example")
	defer os.RemoveAll(dir)
	db, _ := bolt.Open(filepath.Join(dir, "outguard.db"), 0o600, nil)
	defer db.Close()
	ids, _ := identity.Open(db, identity.Options{FlushInterval: -1})
	defer ids.Close()
	store, _ := quarantine.New(db, quarantine.Options{})
	defer store.Stop()

	o, err := ops.New(ops.Options{Locks: ids, Store: store, DB: db})
	if err != nil {
		panic(err)
	}
	jsonAPI, err := api.New(api.Options{Ops: o})
	if err != nil {
		panic(err)
	}
	c, err := console.New(console.Options{Ops: o})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	jsonAPI.Mount(mux)
	mux.Handle("/", c)

	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/log", nil))
	fmt.Println(w.Code, w.Header().Get("Location"))
	// Output: 303 /login?next=%2Flog
}
