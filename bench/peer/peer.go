// Package peer starts the syslog peers trawl is tested and measured
// against, rsyslog and syslog-ng (with its load generator loggen), from
// their Debian builds, each with a private configuration and work
// directory, and reads their CPU time and peak memory from /proc. The
// same /proc reading serves the harnesses for any process they measure
// ([ReadStat], [ProcStats]): trawl, the flow collectors and their process
// groups.
//
// rsyslog is an installed package (scripts/deps.sh). syslog-ng conflicts
// with it as a package, so scripts/syslog-ng.sh unpacks it into
// build/syslog-ng and writes build/syslog-ng/env, which [FindSyslogNG]
// reads. Debian's policy-rc.d keeps apt from starting either daemon;
// whoever starts one here stops it ([Proc.Stop]).
package peer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Proc is a process started with [Start]. Its methods are safe for
// concurrent use.
type Proc struct {
	Cmd *exec.Cmd
	// Log is the file that holds the process's standard output and error.
	Log string

	exited  chan struct{}
	waitErr error
}

// Start starts cmd with its output in logPath. The process gets SIGKILL
// when the calling thread's process dies (Pdeathsig), so a crashed test or
// harness leaves no peer running.
func Start(cmd *exec.Cmd, logPath string) (*Proc, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("cannot create log of %s: %w", filepath.Base(cmd.Path), err)
	}
	cmd.Stdout, cmd.Stderr = lf, lf
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("cannot start %s: %w", filepath.Base(cmd.Path), err)
	}
	p := &Proc{Cmd: cmd, Log: logPath, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		lf.Close()
		close(p.exited)
	}()
	return p, nil
}

// Pid returns the process id.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Exited is closed once the process has exited.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Stop sends sig and waits up to timeout for the process to exit, then
// kills it. It returns the exit error, or an error saying it had to kill.
func (p *Proc) Stop(sig os.Signal, timeout time.Duration) error {
	select {
	case <-p.exited:
		return p.waitErr
	default:
	}
	p.Cmd.Process.Signal(sig)
	select {
	case <-p.exited:
		return p.waitErr
	case <-time.After(timeout):
		p.Cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("%s did not stop within %v of %v; killed", filepath.Base(p.Cmd.Path), timeout, sig)
	}
}

// Kill kills the process and waits for it.
func (p *Proc) Kill() {
	p.Cmd.Process.Kill()
	<-p.exited
}

// Tail returns the last n lines of the process's log.
func (p *Proc) Tail(n int) string {
	b, _ := os.ReadFile(p.Log)
	l := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// Stats returns the process's user+system CPU seconds and its peak
// resident memory (VmHWM) in KiB; zeros once it has exited.
func (p *Proc) Stats() (cpu float64, peakRSSKiB uint64) { return ProcStats(p.Pid()) }

// WaitTCP waits until addr accepts TCP connections, the process exits, or
// timeout passes.
func (p *Proc) WaitTCP(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before listening on %s: %v\n%s", filepath.Base(p.Cmd.Path), addr, p.waitErr, p.Tail(10))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not listen on %s within %v\n%s", filepath.Base(p.Cmd.Path), addr, timeout, p.Tail(10))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitUDP waits until something holds the UDP port of addr (a plain bind
// then fails), the process exits, or timeout passes.
func (p *Proc) WaitUDP(addr string, timeout time.Duration) error {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return fmt.Errorf("cannot parse UDP address %q: %w", addr, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.ListenUDP("udp", ua)
		if err != nil {
			return nil
		}
		c.Close()
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before listening on udp %s: %v\n%s", filepath.Base(p.Cmd.Path), addr, p.waitErr, p.Tail(10))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not listen on udp %s within %v\n%s", filepath.Base(p.Cmd.Path), addr, timeout, p.Tail(10))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ErrMissing is wrapped by the errors of [Rsyslogd], [RsyslogModule] and
// [FindSyslogNG] when a peer is not installed: tests skip on it.
var ErrMissing = errors.New("peer not installed (run scripts/deps.sh)")

// Rsyslogd returns the path of rsyslogd.
func Rsyslogd() (string, error) {
	for _, p := range []string{"/usr/sbin/rsyslogd", "/sbin/rsyslogd"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("rsyslogd"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("cannot find rsyslogd (Debian package rsyslog): %w", ErrMissing)
}

// RsyslogModule reports an error unless rsyslog module name (such as
// "omrelp", package rsyslog-relp) is installed.
func RsyslogModule(name string) error {
	m, _ := filepath.Glob("/usr/lib/*/rsyslog/" + name + ".so")
	if len(m) == 0 {
		return fmt.Errorf("cannot find rsyslog module %s: %w", name, ErrMissing)
	}
	return nil
}

// StartRsyslog validates conf (rsyslogd -N1) and runs rsyslogd in the
// foreground with it, its pid file and log in dir. conf should set
// global(workDirectory=...) to a private directory (queue files), and load
// no input that takes a system resource (imuxsock, imklog).
func StartRsyslog(dir, conf string) (*Proc, error) {
	bin, err := Rsyslogd()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	if out, err := exec.Command(bin, "-N1", "-f", path).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("rsyslogd refuses %s: %v\n%s", path, err, out)
	}
	// -n: foreground; -i: our own pid file (the default is
	// /run/rsyslogd.pid, which a system rsyslog would hold).
	return Start(exec.Command(bin, "-n", "-f", path, "-i", filepath.Join(dir, "rsyslogd.pid")), filepath.Join(dir, "rsyslogd.log"))
}

// SyslogNG is syslog-ng unpacked by scripts/syslog-ng.sh.
type SyslogNG struct {
	Daemon     string // syslog-ng
	Loggen     string // loggen
	ModulePath string
	// Env is the environment both need (LD_LIBRARY_PATH, SYSLOGNG_PREFIX)
	// added to this process's.
	Env []string
}

// FindSyslogNG reads build/syslog-ng/env under the repository root.
func FindSyslogNG(repoRoot string) (*SyslogNG, error) {
	path := filepath.Join(repoRoot, "build", "syslog-ng", "env")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s (run scripts/syslog-ng.sh fetch): %w", path, errors.Join(err, ErrMissing))
	}
	s := &SyslogNG{Env: os.Environ()}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch k {
		case "SYSLOG_NG":
			s.Daemon = v
		case "LOGGEN":
			s.Loggen = v
		case "MODULE_PATH":
			s.ModulePath = v
		case "LD_LIBRARY_PATH", "SYSLOGNG_PREFIX":
			s.Env = append(s.Env, k+"="+v)
		}
	}
	for _, f := range []string{s.Daemon, s.Loggen} {
		if _, err := os.Stat(f); f == "" || err != nil {
			return nil, fmt.Errorf("%s names no syslog-ng or loggen binary that exists (run scripts/syslog-ng.sh fetch): %w", path, ErrMissing)
		}
	}
	return s, nil
}

// LoggenCmd returns a loggen command with args.
func (s *SyslogNG) LoggenCmd(ctx context.Context, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, s.Loggen, args...)
	c.Env = s.Env
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return c
}

// Start runs syslog-ng in the foreground with conf, its state files and
// log in dir.
func (s *SyslogNG) Start(dir, conf string) (*Proc, error) {
	path := filepath.Join(dir, "syslog-ng.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	base := []string{"--module-path=" + s.ModulePath, "-f", path}
	chk := exec.Command(s.Daemon, append(base, "--syntax-only")...)
	chk.Env = s.Env
	if out, err := chk.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("syslog-ng refuses %s: %v\n%s", path, err, out)
	}
	cmd := exec.Command(s.Daemon, append(base, "-F", "--no-caps",
		"--persist-file="+filepath.Join(dir, "syslog-ng.persist"),
		"--pidfile="+filepath.Join(dir, "syslog-ng.pid"),
		"--control="+filepath.Join(dir, "syslog-ng.ctl"))...)
	cmd.Env = s.Env
	return Start(cmd, filepath.Join(dir, "syslog-ng.log"))
}

// Version returns the first line of syslog-ng --version.
func (s *SyslogNG) Version() string {
	c := exec.Command(s.Daemon, "--version")
	c.Env = s.Env
	out, _ := c.Output()
	l, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(l)
}

// RsyslogVersion returns rsyslogd's version line.
func RsyslogVersion() string {
	bin, err := Rsyslogd()
	if err != nil {
		return ""
	}
	out, _ := exec.Command(bin, "-v").Output()
	l, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSuffix(strings.TrimSpace(l), " compiled with:")
}

// LoggenResult is what loggen says it sent.
type LoggenResult struct {
	Count uint64  // messages sent
	Rate  float64 // average msgs/s
}

var loggenTotal = regexp.MustCompile(`average rate = ([0-9.]+) msg/sec, count=(\d+)`)

// ParseLoggen reads loggen's final "average rate = R msg/sec, count=N"
// line from its output.
func ParseLoggen(out []byte) (LoggenResult, error) {
	m := loggenTotal.FindAllSubmatch(out, -1)
	if len(m) == 0 {
		return LoggenResult{}, fmt.Errorf("cannot find loggen's summary line in %q", lastBytes(out, 400))
	}
	last := m[len(m)-1]
	rate, _ := strconv.ParseFloat(string(last[1]), 64)
	n, _ := strconv.ParseUint(string(last[2]), 10, 64)
	return LoggenResult{Count: n, Rate: rate}, nil
}

func lastBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// RepoRoot returns the directory holding the go.mod of module
// github.com/trawlsec/trawl, searching up from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte("module github.com/trawlsec/trawl\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the trawl repository root above the working directory")
		}
		dir = parent
	}
}

// FreePort returns a port that was free on 127.0.0.1 for network "udp" or
// "tcp" a moment ago, for a collector under test to bind.
func FreePort(network string) (int, error) {
	if network == "udp" {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
