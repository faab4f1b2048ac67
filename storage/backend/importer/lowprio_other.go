//go:build !linux

package importer

import "time"

// lowPriority is a no-op where threads have no priority of their own.
func lowPriority() {}

// threadCPU is unknown there.
func threadCPU() time.Duration { return 0 }
