//go:build linux

package audit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	libaudit "github.com/elastic/go-libaudit/v2"
)

// Control carries command and control requests to the kernel's audit
// subsystem (status, settings, rules) on a socket of its own, so replies
// never mix with the records a [Conn] reads. It needs CAP_AUDIT_CONTROL.
// Control is safe for concurrent use.
type Control struct {
	mu sync.Mutex
	cl *libaudit.AuditClient
}

// OpenControl opens a control socket. An error wraps [ErrUnsupported] when
// the kernel has no audit support (or none in this network namespace) and
// [ErrPermission] when the process lacks CAP_AUDIT_CONTROL; both are found
// out by asking for the status once.
func OpenControl() (*Control, error) {
	cl, err := libaudit.NewAuditClient(nil)
	if err != nil {
		if errors.Is(err, syscall.EPROTONOSUPPORT) || errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EINVAL) {
			return nil, fmt.Errorf("cannot open audit control socket: %w: %w", ErrUnsupported, err)
		}
		return nil, fmt.Errorf("cannot open audit control socket: %w", err)
	}
	c := &Control{cl: cl}
	if _, err := c.Status(); err != nil {
		cl.Close()
		return nil, err
	}
	return c, nil
}

// Close closes the control socket.
func (c *Control) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cl.Close()
}

// Status asks the kernel for its audit status.
func (c *Control) Status() (Status, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, err := c.cl.GetStatus()
	if err != nil {
		return Status{}, classify("cannot get audit status", err)
	}
	return Status{
		Enabled: st.Enabled, Failure: st.Failure, PID: st.PID, RateLimit: st.RateLimit,
		BacklogLimit: st.BacklogLimit, Lost: st.Lost, Backlog: st.Backlog, Features: st.FeatureBitmap,
		BacklogWaitTime: st.BacklogWaitTime, BacklogWaitTimeActual: st.BacklogWaitTimeActual,
	}, nil
}

// classify wraps the errors that mean "cannot run here" in ErrPermission
// or ErrUnsupported. The kernel answers ECONNREFUSED outside the initial
// user namespace (containers), where audit is not available.
func classify(what string, err error) error {
	switch {
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		return fmt.Errorf("%s (needs CAP_AUDIT_CONTROL): %w: %w", what, ErrPermission, err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%s (audit is not available in this namespace): %w: %w", what, ErrUnsupported, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Rules returns the kernel's rule list in binary form, in order.
func (c *Control) Rules() ([][]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rules, err := c.cl.GetRules()
	if err != nil {
		return nil, classify("cannot list audit rules", err)
	}
	return rules, nil
}

// State reads the status and the rule list.
func (c *Control) State() (State, error) {
	st, err := c.Status()
	if err != nil {
		return State{}, err
	}
	rules, err := c.Rules()
	if err != nil {
		return State{}, err
	}
	return State{Status: st, Rules: rules}, nil
}

// errRuleExists is what go-libaudit's AddRule returns for EEXIST.
const errRuleExists = "rule exists"

// AddRule adds one rule (binary form) to the end of its list, or to the
// front when its flags ask for it (-A).
func (c *Control) AddRule(wire []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.cl.AddRule(wire); err != nil {
		if err.Error() == errRuleExists {
			return fmt.Errorf("cannot add audit rule: %w", os.ErrExist)
		}
		return classify("cannot add audit rule", err)
	}
	return nil
}

// DeleteRule deletes the rule equal to wire (the kernel compares fields,
// not bytes). go-libaudit does not report the kernel's answer, so callers
// check the list afterwards.
func (c *Control) DeleteRule(wire []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.cl.DeleteRule(wire); err != nil {
		return classify("cannot delete audit rule", err)
	}
	return nil
}

// Set changes one status setting and waits for the kernel's answer.
func (c *Control) set(s setting, v uint32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	switch s {
	case setEnabled:
		err = c.cl.SetEnabled(v != 0, libaudit.WaitForReply)
	case setFailure:
		err = c.cl.SetFailure(libaudit.FailureMode(v), libaudit.WaitForReply)
	case setRateLimit:
		err = c.cl.SetRateLimit(v, libaudit.WaitForReply)
	case setBacklogLimit:
		err = c.cl.SetBacklogLimit(v, libaudit.WaitForReply)
	case setBacklogWaitTime:
		err = c.cl.SetBacklogWaitTime(int32(v), libaudit.WaitForReply)
	}
	if err != nil {
		return classify(fmt.Sprintf("cannot set audit %s to %d", settingNames[s], v), err)
	}
	return nil
}

// ClearPID gives up the audit PID if this process holds it, and clears it
// if the holder is dead (the kernel checks the holder first and forgets a
// dead one). It waits for the kernel's answer.
func (c *Control) ClearPID() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var data [44]byte
	binary.NativeEndian.PutUint32(data[0:], statusMaskPID)
	seq, err := c.cl.Netlink.Send(syscall.NetlinkMessage{
		Header: syscall.NlMsghdr{Type: 1001, Flags: syscall.NLM_F_REQUEST | syscall.NLM_F_ACK}, // AUDIT_SET
		Data:   data[:],
	})
	if err != nil {
		return fmt.Errorf("cannot send audit PID reset: %w", err)
	}
	for tries := 0; tries < 40; tries++ {
		msgs, err := c.cl.Netlink.Receive(true, parseOne)
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
			time.Sleep(25 * time.Millisecond)
			continue
		}
		if err != nil {
			return fmt.Errorf("cannot read the answer to the audit PID reset: %w", err)
		}
		m := msgs[0]
		if m.Header.Seq != seq || m.Header.Type != syscall.NLMSG_ERROR {
			continue
		}
		if err := libaudit.ParseNetlinkError(m.Data); err != nil {
			return classify("cannot reset the audit PID", err)
		}
		return nil
	}
	return errors.New("cannot reset the audit PID: no answer from the kernel")
}

// parseOne reads one netlink message from a datagram, as go-libaudit does
// for audit sockets (whose header length is not to be trusted).
func parseOne(b []byte) ([]syscall.NetlinkMessage, error) {
	if len(b) < syscall.NLMSG_HDRLEN {
		return nil, syscall.EINVAL
	}
	var h syscall.NlMsghdr
	ne := binary.NativeEndian
	h.Len = ne.Uint32(b[0:])
	h.Type = ne.Uint16(b[4:])
	h.Flags = ne.Uint16(b[6:])
	h.Seq = ne.Uint32(b[8:])
	h.Pid = ne.Uint32(b[12:])
	return []syscall.NetlinkMessage{{Header: h, Data: b[syscall.NLMSG_HDRLEN:]}}, nil
}

// Apply loads rs: it deletes the loaded rules if rs says -D, adds rs's
// rules, and sets the status settings rs and opts ask for. It records the
// state before, for Restore. A rule the kernel refuses is a warning; a
// setting it refuses is an error, after which what was already changed
// is put back.
func (c *Control) Apply(rs *Rules, opts ApplyOptions) (*Session, error) {
	before, err := c.State()
	if err != nil {
		return nil, err
	}
	if before.Enabled == 2 {
		return nil, errors.New("the audit configuration is locked (enabled=2, auditctl -e 2) until reboot; trawl cannot load rules")
	}
	s := &Session{Before: before}
	fail := func(err error) (*Session, error) {
		return nil, errors.Join(err, c.Restore(s))
	}
	if rs.DeleteAll {
		s.deletedAll = true
		for _, r := range before.Rules {
			if err := c.DeleteRule(r); err != nil {
				return fail(err)
			}
		}
	}
	for _, r := range rs.Rules {
		if err := c.AddRule(r.Wire); err != nil {
			if errors.Is(err, ErrPermission) {
				return fail(err)
			}
			s.Warnings = append(s.Warnings, fmt.Errorf("rule at line %d (%s) not loaded: %w", r.Line, r.Text, err))
			continue
		}
		s.added = append(s.added, r.Wire)
	}

	want := [settingCount]*uint32{
		setFailure:      rs.Failure,
		setRateLimit:    rs.RateLimit,
		setBacklogLimit: rs.BacklogLimit,
	}
	one, zero := uint32(1), uint32(0)
	want[setEnabled] = rs.Enabled
	if want[setEnabled] == nil && opts.Enable {
		want[setEnabled] = &one
	}
	if rs.BacklogWaitTime != nil || (opts.ZeroBacklogWait && before.SupportsBacklogWaitTime()) {
		want[setBacklogWaitTime] = rs.BacklogWaitTime
		if want[setBacklogWaitTime] == nil {
			want[setBacklogWaitTime] = &zero
		}
	}
	// Enabling comes last, so records start once the rules are in place.
	for _, st := range []setting{setFailure, setRateLimit, setBacklogLimit, setBacklogWaitTime, setEnabled} {
		v := want[st]
		if v == nil || *v == st.get(&before.Status) {
			continue
		}
		s.changed[st] = true
		if err := c.set(st, *v); err != nil {
			return fail(err)
		}
	}
	return s, nil
}

// Restore puts back what s recorded: the enabled flag first (so no new
// records come while the rest is undone), then the rules (those added are
// deleted; those -D deleted are added back in their order; if the list
// still differs from the one found at Apply, it is rebuilt), then the other
// settings. It tries every step and returns every error.
func (c *Control) Restore(s *Session) error {
	var errs []error
	if s.changed[setEnabled] {
		errs = append(errs, c.set(setEnabled, s.Before.Enabled))
	}
	for i := len(s.added) - 1; i >= 0; i-- {
		errs = append(errs, c.DeleteRule(s.added[i]))
	}
	if s.deletedAll {
		for _, r := range s.Before.Rules {
			if err := c.AddRule(r); err != nil && !errors.Is(err, os.ErrExist) {
				errs = append(errs, err)
			}
		}
	}
	errs = append(errs, c.restoreRules(s.Before.Rules))
	for _, st := range []setting{setFailure, setRateLimit, setBacklogLimit, setBacklogWaitTime} {
		if s.changed[st] {
			errs = append(errs, c.set(st, st.get(&s.Before.Status)))
		}
	}
	return errors.Join(errs...)
}

// RestoreAll makes the kernel's audit state equal to before: every
// setting Apply may change and the rule list. It is for putting things
// back after a run that could not (a crash, a failed test); Restore undoes
// only what its Session changed.
func (c *Control) RestoreAll(before State) error {
	s := &Session{Before: before}
	for i := range s.changed {
		s.changed[i] = true
	}
	return c.Restore(s)
}

// restoreRules makes the kernel's list equal to want, rebuilding it when
// deleting and re-adding left it different (another program changed the
// rules meanwhile, or a rule came back in another place).
func (c *Control) restoreRules(want [][]byte) error {
	now, err := c.Rules()
	if err != nil {
		return err
	}
	if equalRules(now, want) {
		return nil
	}
	var errs []error
	for _, r := range now {
		errs = append(errs, c.DeleteRule(r))
	}
	for _, r := range want {
		errs = append(errs, c.AddRule(r))
	}
	if now, err = c.Rules(); err != nil {
		return errors.Join(append(errs, err)...)
	}
	if !equalRules(now, want) {
		errs = append(errs, fmt.Errorf("audit rules not restored: %d rules loaded, %d expected", len(now), len(want)))
	}
	return errors.Join(errs...)
}

// ProcessAlive reports whether pid names a live process: one that signal
// 0 reaches (or is refused for lack of permission) and that is not a
// zombie waiting to be reaped, which holds no sockets any more.
func ProcessAlive(pid uint32) bool {
	if pid == 0 {
		return false
	}
	if err := syscall.Kill(int(pid), 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // no procfs: trust the signal
	}
	// The state follows the parenthesised command name, which may itself
	// hold ") ".
	if i := bytes.LastIndex(stat, []byte(") ")); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z' && stat[i+2] != 'X'
	}
	return true
}
