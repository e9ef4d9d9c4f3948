//go:build !linux

package bench

import "time"

// cpuTime is not measured outside Linux.
func cpuTime() time.Duration { return 0 }

// machineBusy is not measured outside Linux.
func machineBusy() time.Duration { return 0 }
