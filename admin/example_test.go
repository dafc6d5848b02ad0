package admin_test

import (
	"fmt"

	"github.com/outguard/outguard/admin"
)

// Durations in queries and lock requests take Go's forms plus days and
// weeks.
func ExampleParseDuration() {
	for _, s := range []string{"90m", "7d", "2w", "soon"} {
		d, err := admin.ParseDuration(s)
		fmt.Println(s, d, err)
	}
	// Output:
	// 90m 1h30m0s <nil>
	// 7d 168h0m0s <nil>
	// 2w 336h0m0s <nil>
	// soon 0s invalid duration "soon": use forms like "90s", "10m", "2h", "30d"
}

func ExamplePrincipal_Allows() {
	scoped := admin.Principal{Name: "support", Domain: "out.example.net"}
	all := admin.Principal{Name: "ops"}
	fmt.Println(scoped.Allows("OUT.example.net"), scoped.Allows("other.example.org"), all.Allows("other.example.org"))
	// Output: true false true
}
