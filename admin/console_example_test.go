package admin_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/outguard/outguard/admin"
	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/quarantine"
	bolt "go.etcd.io/bbolt"
)

// The console shares the API's tokens, backends and audit trail; mount
// it at "/" beside the API.
func ExampleNewConsole() {
	dir, _ := os.MkdirTemp("", "outguard-console-example")
	defer os.RemoveAll(dir)
	db, _ := bolt.Open(filepath.Join(dir, "outguard.db"), 0o600, nil)
	defer db.Close()
	ids, _ := identity.Open(db, identity.Options{FlushInterval: -1})
	defer ids.Close()
	store, _ := quarantine.New(db, quarantine.Options{})
	defer store.Stop()

	api, err := admin.NewAPI(admin.APIOptions{Locks: ids, Store: store, DB: db})
	if err != nil {
		panic(err)
	}
	console, err := admin.NewConsole(admin.ConsoleOptions{API: api})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle(admin.APIPrefix, api)
	mux.Handle("/", console)

	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/log", nil))
	fmt.Println(w.Code, w.Header().Get("Location"))
	// Output: 303 /login?next=%2Flog
}
