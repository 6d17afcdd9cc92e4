package audit

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/elastic/go-libaudit/v2/rule"
)

// Rules is a parsed rules file: the control settings its lines set and the
// rules it adds, in order. Settings the file does not mention are nil and
// left as the kernel has them.
type Rules struct {
	// DeleteAll is set by -D: rules already loaded are removed before
	// these are added (and put back at stop).
	DeleteAll bool
	// BacklogLimit (-b), RateLimit (-r), Failure (-f), Enabled (-e) and
	// BacklogWaitTime (--backlog_wait_time) are the status settings.
	BacklogLimit    *uint32
	RateLimit       *uint32
	Failure         *uint32
	Enabled         *uint32
	BacklogWaitTime *uint32
	Rules           []Rule
}

// Rule is one -a, -A or -w line built into the kernel's binary format.
type Rule struct {
	Line int    // 1-based line in the file
	Text string // the line as written
	Wire []byte // struct audit_rule_data, as AUDIT_ADD_RULE takes it
}

// Failure modes (-f).
const (
	FailureSilent = 0
	FailurePrintk = 1
	FailurePanic  = 2
)

// auditFilterPrepend is AUDIT_FILTER_PREPEND: OR-ed into a rule's flags
// it asks the kernel to put the rule first in its list (-A).
const auditFilterPrepend = 0x10

// ParseRulesFile reads a rules file in auditctl syntax; see [ParseRules].
func ParseRulesFile(path string) (*Rules, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read audit rules: %w", err)
	}
	defer f.Close()
	rs, err := ParseRules(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rs, nil
}

// ParseRules reads rules in the syntax of auditctl(8) and audit.rules(7),
// one command per line, '#' starting a comment:
//
//	-D                                       delete the rules already loaded
//	-b 8192                                  backlog limit
//	-f 1                                     failure mode (0 silent, 1 printk, 2 panic)
//	-r 0                                     rate limit (messages per second, 0 = none)
//	-e 1                                     enable auditing
//	--backlog_wait_time 0                    how long a task may wait for queue room
//	-a always,exit -F arch=b64 -S execve -k exec
//	-A exit,always ...                       the same, first in the list
//	-w /etc/sudoers -p wa -k identity        watch a file or directory
//
// The syscall rules, field names and values are those go-libaudit's rule
// package builds (-F, -C, -S, -k as in auditctl). Commands that cannot be
// undone when trawl stops (-e 2, --loginuid-immutable) and commands that
// are not rules (-l, -s, -d, -W) are errors, as is anything unknown; an
// error names its line. -i and -c (ignore errors, continue) are accepted:
// trawl always goes on past a rule the kernel refuses and reports it.
func ParseRules(r io.Reader) (*Rules, error) {
	rs := &Rules{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = strings.TrimSpace(text[:i])
		}
		if text == "" {
			continue
		}
		if err := rs.parseLine(line, text); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cannot read audit rules: %w", err)
	}
	return rs, nil
}

func (rs *Rules) parseLine(line int, text string) error {
	args, err := splitArgs(text)
	if err != nil {
		return err
	}
	switch args[0] {
	case "-D":
		if len(args) != 1 {
			return fmt.Errorf("cannot parse %q: -D takes no arguments here (deleting by key is not supported)", text)
		}
		rs.DeleteAll = true
		return nil
	case "-b", "-r", "-f", "-e", "--backlog_wait_time":
		if len(args) != 2 {
			return fmt.Errorf("cannot parse %q: %s takes one number", text, args[0])
		}
		v, err := strconv.ParseUint(args[1], 10, 32)
		if err != nil {
			return fmt.Errorf("cannot parse %q: %s takes one number: %w", text, args[0], err)
		}
		n := uint32(v)
		switch args[0] {
		case "-b":
			rs.BacklogLimit = &n
		case "-r":
			rs.RateLimit = &n
		case "-f":
			if n > FailurePanic {
				return fmt.Errorf("cannot parse %q: failure mode is 0, 1 or 2", text)
			}
			rs.Failure = &n
		case "-e":
			if n == 2 {
				return fmt.Errorf("%q would make the audit configuration immutable until reboot, so trawl could not restore it at stop; refused", text)
			}
			if n > 1 {
				return fmt.Errorf("cannot parse %q: -e is 0 or 1", text)
			}
			rs.Enabled = &n
		case "--backlog_wait_time":
			// The kernel refuses more than 10 times its default (60s in
			// jiffies); that bound depends on HZ, so it is left to it.
			rs.BacklogWaitTime = &n
		}
		return nil
	case "-i", "-c":
		if len(args) != 1 {
			return fmt.Errorf("cannot parse %q: %s takes no arguments", text, args[0])
		}
		return nil
	case "--loginuid-immutable":
		return fmt.Errorf("%q cannot be undone until reboot, so trawl could not restore it at stop; refused", text)
	case "-l", "-s", "-d", "-W", "-t", "-m", "-R", "--reset-lost", "--signal":
		return fmt.Errorf("%q is an auditctl command, not a rule; not supported in a rules file", text)
	}
	r, prepend, err := buildRule(args)
	if err != nil {
		return fmt.Errorf("cannot parse rule %q: %w", text, err)
	}
	wire, err := rule.Build(r)
	if err != nil {
		return fmt.Errorf("cannot build rule %q: %w", text, err)
	}
	if prepend {
		flags := binary.NativeEndian.Uint32(wire[0:4])
		binary.NativeEndian.PutUint32(wire[0:4], flags|auditFilterPrepend)
	}
	rs.Rules = append(rs.Rules, Rule{Line: line, Text: text, Wire: wire})
	return nil
}

// buildRule turns the arguments of an -a, -A or -w line into a go-libaudit
// rule. (go-libaudit's rule/flags package does this too, but it needs a
// shell-quoting module this build does not carry.)
func buildRule(args []string) (r rule.Rule, prepend bool, err error) {
	var (
		sys       rule.SyscallRule
		watch     rule.FileWatchRule
		isSyscall bool
		isWatch   bool
		keys      []string
	)
	for i := 0; i < len(args); i++ {
		flag := args[i]
		val := ""
		switch flag {
		case "-a", "-A", "-F", "-C", "-S", "-k", "-w", "-p":
			if i+1 >= len(args) {
				return nil, false, fmt.Errorf("%s needs a value", flag)
			}
			i++
			val = args[i]
		default:
			return nil, false, fmt.Errorf("unknown option %q", flag)
		}
		switch flag {
		case "-a", "-A":
			if isSyscall {
				return nil, false, errors.New("more than one -a/-A")
			}
			isSyscall, prepend = true, flag == "-A"
			if sys.List, sys.Action, err = listAction(val); err != nil {
				return nil, false, err
			}
		case "-F":
			f, err := parseFilter(val, rule.ValueFilterType)
			if err != nil {
				return nil, false, err
			}
			sys.Filters = append(sys.Filters, f)
		case "-C":
			f, err := parseFilter(val, rule.InterFieldFilterType)
			if err != nil {
				return nil, false, err
			}
			sys.Filters = append(sys.Filters, f)
		case "-S":
			for _, s := range strings.Split(val, ",") {
				if s = strings.TrimSpace(s); s != "" {
					sys.Syscalls = append(sys.Syscalls, s)
				}
			}
		case "-k":
			keys = append(keys, val)
		case "-w":
			if isWatch {
				return nil, false, errors.New("more than one -w")
			}
			isWatch = true
			watch.Path = val
		case "-p":
			for _, c := range val {
				switch c {
				case 'r':
					watch.Permissions = append(watch.Permissions, rule.ReadAccessType)
				case 'w':
					watch.Permissions = append(watch.Permissions, rule.WriteAccessType)
				case 'x':
					watch.Permissions = append(watch.Permissions, rule.ExecuteAccessType)
				case 'a':
					watch.Permissions = append(watch.Permissions, rule.AttributeChangeAccessType)
				default:
					return nil, false, fmt.Errorf("invalid permission %q in -p %s (want r, w, x, a)", c, val)
				}
			}
		}
	}
	switch {
	case isSyscall && isWatch:
		return nil, false, errors.New("-w cannot be combined with -a/-A")
	case isWatch:
		if len(sys.Filters) > 0 || len(sys.Syscalls) > 0 {
			return nil, false, errors.New("-F, -C and -S need -a or -A")
		}
		watch.Type = rule.FileWatchRuleType
		watch.Keys = keys
		return &watch, false, nil
	case isSyscall:
		if len(watch.Permissions) > 0 {
			return nil, false, errors.New("-p needs -w")
		}
		sys.Type = rule.AppendSyscallRuleType
		if prepend {
			sys.Type = rule.PrependSyscallRuleType
		}
		sys.Keys = keys
		return &sys, prepend, nil
	}
	return nil, false, errors.New("a rule needs -a, -A or -w")
}

func listAction(v string) (list, action string, err error) {
	parts := strings.Split(v, ",")
	if len(parts) != 2 {
		return "", "", fmt.Errorf("want list,action (e.g. always,exit), got %q", v)
	}
	for _, p := range parts {
		switch p = strings.TrimSpace(p); p {
		case "task", "exit", "user", "exclude":
			list = p
		case "always", "never":
			action = p
		default:
			return "", "", fmt.Errorf("invalid list or action %q", p)
		}
	}
	if list == "" || action == "" {
		return "", "", fmt.Errorf("want one list and one action, got %q", v)
	}
	return list, action, nil
}

// Comparison operators, longest first so "<=" is not read as "<".
var operators = []string{"<=", ">=", "&=", "!=", "=", "<", ">", "&"}

func parseFilter(v string, typ rule.FilterType) (rule.FilterSpec, error) {
	for i := 0; i < len(v); i++ {
		for _, op := range operators {
			if !strings.HasPrefix(v[i:], op) {
				continue
			}
			lhs, rhs := strings.TrimSpace(v[:i]), strings.TrimSpace(v[i+len(op):])
			if lhs == "" || rhs == "" {
				return rule.FilterSpec{}, fmt.Errorf("invalid filter %q", v)
			}
			if typ == rule.InterFieldFilterType && op != "=" && op != "!=" {
				return rule.FilterSpec{}, fmt.Errorf("invalid comparison %q: -C takes = or !=", v)
			}
			return rule.FilterSpec{Type: typ, LHS: lhs, Comparator: op, RHS: rhs}, nil
		}
	}
	return rule.FilterSpec{}, fmt.Errorf("invalid filter %q: no operator", v)
}

// splitArgs splits a line on blanks; double or single quotes group words
// (auditctl itself does not quote, but paths with spaces need it).
func splitArgs(s string) ([]string, error) {
	var (
		args  []string
		cur   bytes.Buffer
		quote byte
		inArg bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '"' || c == '\'':
			quote, inArg = c, true
		case c == ' ' || c == '\t':
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteByte(c)
			inArg = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("cannot parse %q: unterminated quote", s)
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args, nil
}

// DefaultRules is trawl's default rule set for security investigations
// (process execution, outbound connections, kernel modules, identity and
// sudoers files, SSH keys, time changes, mounts, ptrace), commented.
// configs/audit.rules is the same file, kept identical by a test.
//
//go:embed default.rules
var DefaultRules []byte
