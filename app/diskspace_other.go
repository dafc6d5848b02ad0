//go:build !linux

package app

import "errors"

// errStatfsUnsupported: this platform cannot tell the free space; the
// reserve is then not enforced.
var errStatfsUnsupported = errors.New("free space unknown on this platform")

func statfs(string) (free, total uint64, err error) { return 0, 0, errStatfsUnsupported }
