package audit

import (
	"bytes"
	"slices"
)

// Status is the kernel's struct audit_status.
type Status struct {
	Enabled      uint32 // 0 off, 1 on, 2 on and locked until reboot
	Failure      uint32 // what the kernel does when it must drop: 0 silent, 1 printk, 2 panic
	PID          uint32 // the audit daemon, 0 for none
	RateLimit    uint32 // records per second, 0 = unlimited
	BacklogLimit uint32 // records the kernel queues for the daemon
	Lost         uint32 // records the kernel dropped since boot
	Backlog      uint32 // records queued now
	// Features is the kernel's AUDIT_FEATURE_BITMAP_* mask.
	Features uint32
	// BacklogWaitTime is how long (jiffies) a task waits for room in the
	// queue before its record is dropped; BacklogWaitTimeActual is how
	// long tasks have waited in total.
	BacklogWaitTime       uint32
	BacklogWaitTimeActual uint32
}

// SupportsBacklogWaitTime reports whether the kernel lets backlog_wait_time
// be set (AUDIT_FEATURE_BITMAP_BACKLOG_WAIT_TIME, Linux 3.14).
func (s Status) SupportsBacklogWaitTime() bool {
	return s.Features&featureBacklogWaitTime != 0
}

// featureBacklogWaitTime is AUDIT_FEATURE_BITMAP_BACKLOG_WAIT_TIME.
const featureBacklogWaitTime = 1 << 1

// State is the part of the kernel's audit configuration trawl may change:
// the status settings and the rule list, in kernel order.
type State struct {
	Status
	Rules [][]byte
}

// setting is one field of the status that Apply may change.
type setting uint8

const (
	setEnabled setting = iota
	setFailure
	setRateLimit
	setBacklogLimit
	setBacklogWaitTime
	settingCount
)

var settingNames = [settingCount]string{"enabled", "failure", "rate_limit", "backlog_limit", "backlog_wait_time"}

func (s setting) get(st *Status) uint32 {
	switch s {
	case setEnabled:
		return st.Enabled
	case setFailure:
		return st.Failure
	case setRateLimit:
		return st.RateLimit
	case setBacklogLimit:
		return st.BacklogLimit
	}
	return st.BacklogWaitTime
}

// ApplyOptions says which settings Apply changes beyond what the rules
// file sets.
type ApplyOptions struct {
	// Enable turns auditing on (enabled=1) unless the file says -e 0:
	// without it the kernel sends no records.
	Enable bool
	// ZeroBacklogWait sets backlog_wait_time to 0, where the kernel
	// supports it and the file does not set it: a task never waits for
	// room in the kernel's queue; its record is dropped and counted in
	// the kernel's lost counter instead.
	ZeroBacklogWait bool
}

// Session records what [Control.Apply] changed so [Control.Restore] can
// put it back.
type Session struct {
	// Before is the state found before anything was changed.
	Before State
	// Warnings are the rules the kernel refused (a watch on a path that
	// does not exist, a rule already loaded); the others were applied.
	Warnings []error

	changed    [settingCount]bool
	added      [][]byte
	deletedAll bool
}

// Added returns the rules Apply added, in binary form.
func (s *Session) Added() [][]byte { return s.added }

func equalRules(a, b [][]byte) bool {
	return slices.EqualFunc(a, b, func(x, y []byte) bool { return bytes.Equal(x, y) })
}
