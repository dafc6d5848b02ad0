package ops_test

import (
	"fmt"

	"github.com/outguard/outguard/admin/ops"
)

func ExamplePrincipal_Allows() {
	scoped := ops.Principal{Name: "support", Domain: "out.example.net"}
	all := ops.Principal{Name: "ops"}
	fmt.Println(scoped.Allows("OUT.example.net"), scoped.Allows("other.example.org"), all.Allows("other.example.org"))
	// Output: true false true
}
