package feedback

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/outguard/outguard/config"
)

// reporter returns the allow-listed reporter that sent a report, or nil.
// client is the SMTP client (invalid for uploads, which match only
// reporters without networks); envFrom the envelope sender ("" for
// uploads); from the report's From address.
func (s *Settings) reporter(client netip.Addr, envFrom, from string) *config.Reporter {
	domains := []string{domainOf(envFrom), domainOf(from)}
	for i := range s.Reporters {
		r := &s.Reporters[i]
		if len(r.Networks) > 0 {
			if !client.IsValid() || !slices.ContainsFunc(r.Networks, func(p netip.Prefix) bool { return p.Contains(client.Unmap()) }) {
				continue
			}
		}
		if len(r.Domains) > 0 && !slices.ContainsFunc(domains, func(d string) bool { return d != "" && slices.Contains(r.Domains, d) }) {
			continue
		}
		return r
	}
	return nil
}

func domainOf(addr string) string {
	_, d, ok := strings.Cut(strings.Trim(addr, "<> "), "@")
	if !ok {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(d, "."))
}
