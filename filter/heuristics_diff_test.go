package filter

import (
	"net/netip"
	"strings"
	"testing"
)

// referenceContainsBrand is containsBrand before issue 17, splitting the
// host into labels and words.
func referenceContainsBrand(host, brand string) bool {
	for _, l := range strings.Split(host, ".") {
		if l == brand {
			return true
		}
		for _, w := range strings.Split(l, "-") {
			if w == brand {
				return true
			}
		}
	}
	return false
}

func checkBrandAndIP(t *testing.T, host, brand string) {
	t.Helper()
	if got, want := containsBrand(host, brand), referenceContainsBrand(host, brand); got != want {
		t.Errorf("containsBrand(%q, %q) = %v, splitting says %v", host, brand, got, want)
	}
	if _, err := netip.ParseAddr(host); err == nil && !mayBeIP(host) {
		t.Errorf("mayBeIP(%q) = false for an address", host)
	}
}

func TestContainsBrandAndMayBeIP(t *testing.T) {
	for _, c := range [][2]string{
		{"paypal.example.net", "paypal"}, {"secure-paypal-login.com", "paypal"}, {"paypal", "paypal"},
		{"paypa.l.com", "paypal"}, {"", ""}, {".", ""}, {"a..b", ""}, {"-", ""}, {"x-", ""}, {"a.b-", "b"},
		{"192.168.0.1", "1"}, {"::1", ""}, {"fe80::1%eth0", ""}, {"1.2.3", ""}, {"0x7f.1", ""},
	} {
		checkBrandAndIP(t, c[0], c[1])
	}
}

func FuzzContainsBrandAndMayBeIP(f *testing.F) {
	f.Add("secure-paypal-login.com", "paypal")
	f.Add("10.0.0.1", "")
	f.Add("fe80::1%eth0", "x")
	f.Fuzz(checkBrandAndIP)
}
