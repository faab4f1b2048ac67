//go:build !linux

package importer

// lowPriority is a no-op where threads have no priority of their own.
func lowPriority() {}
