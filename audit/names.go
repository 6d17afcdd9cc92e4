package audit

import (
	"bufio"
	"bytes"
	"os"
	"sync"
	"time"
)

// Names resolves user and group ids to names from passwd(5) and group(5)
// files, as ausearch -i does. The files are read once and again when their
// modification time or size changes, checked at most every CheckEvery;
// lookups between checks are a map read and do not allocate.
//
// Only the local files are read: NSS sources (LDAP, sssd) would need cgo
// and a blocking call per miss on the event path; ids they define stay
// numeric.
//
// Names is safe for concurrent use.
type Names struct {
	PasswdFile, GroupFile string
	// CheckEvery bounds how often the files are checked for changes
	// (default 10s).
	CheckEvery time.Duration

	mu      sync.RWMutex
	users   map[uint32][]byte
	groups  map[uint32][]byte
	checked time.Time
	pwStamp fileStamp
	grStamp fileStamp
}

type fileStamp struct {
	mod  time.Time
	size int64
	ok   bool
}

// NewNames returns a Names reading /etc/passwd and /etc/group.
func NewNames() *Names {
	return &Names{PasswdFile: "/etc/passwd", GroupFile: "/etc/group"}
}

// User returns the name of uid, or nil when it has none. The returned
// slice must not be modified; it stays valid after later reloads.
func (n *Names) User(uid uint32, now time.Time) []byte {
	n.maybeReload(now)
	n.mu.RLock()
	v := n.users[uid]
	n.mu.RUnlock()
	return v
}

// Group returns the name of gid, or nil when it has none; see [Names.User].
func (n *Names) Group(gid uint32, now time.Time) []byte {
	n.maybeReload(now)
	n.mu.RLock()
	v := n.groups[gid]
	n.mu.RUnlock()
	return v
}

func (n *Names) maybeReload(now time.Time) {
	every := n.CheckEvery
	if every <= 0 {
		every = 10 * time.Second
	}
	n.mu.RLock()
	fresh := n.users != nil && now.Sub(n.checked) < every && now.Sub(n.checked) >= 0
	n.mu.RUnlock()
	if fresh {
		return
	}
	n.reload(now)
}

func (n *Names) reload(now time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.checked = now
	if pw := stamp(n.PasswdFile); pw != n.pwStamp || n.users == nil {
		n.users, n.pwStamp = readIDFile(n.PasswdFile), pw
	}
	if gr := stamp(n.GroupFile); gr != n.grStamp || n.groups == nil {
		n.groups, n.grStamp = readIDFile(n.GroupFile), gr
	}
}

func stamp(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size(), ok: true}
}

// readIDFile reads "name:x:id:..." lines (passwd and group share the
// first three columns). The first name of an id wins, as getpwuid returns
// it. A missing or unreadable file gives an empty map: ids stay numeric.
func readIDFile(path string) map[uint32][]byte {
	m := map[uint32][]byte{}
	f, err := os.Open(path)
	if err != nil {
		return m
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		parseIDLine(sc.Bytes(), m)
	}
	return m
}

func parseIDLine(line []byte, m map[uint32][]byte) {
	if len(line) == 0 || line[0] == '#' || line[0] == '+' || line[0] == '-' {
		return // comments and NIS compat entries
	}
	name, rest, ok := bytes.Cut(line, []byte{':'})
	if !ok || len(name) == 0 {
		return
	}
	_, rest, ok = bytes.Cut(rest, []byte{':'})
	if !ok {
		return
	}
	idText, _, _ := bytes.Cut(rest, []byte{':'})
	id, ok := ParseUint(idText)
	if !ok || id >= 1<<32-1 {
		return
	}
	if _, dup := m[uint32(id)]; !dup {
		m[uint32(id)] = bytes.Clone(name)
	}
}
