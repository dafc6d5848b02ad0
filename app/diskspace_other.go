//go:build !linux

package app

func statfs(string) (free, total uint64, err error) { return 0, 0, errStatfsUnsupported }
