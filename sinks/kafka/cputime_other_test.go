//go:build !unix

package kafka_test

import "time"

// processCPUTime returns false: CPU time is only read on Unix systems.
func processCPUTime() (time.Duration, bool) { return 0, false }
