//go:build unix

package filter

import "syscall"

// processCPU returns the CPU time (user and system) the process has used,
// in nanoseconds: on a busy machine it measures a benchmark's own work,
// where wall-clock time also counts the time other processes held the
// cores.
func processCPU() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
