// Package proccache remembers the processes of this host, keyed by pid and
// start time so that a reused pid is never mistaken for its predecessor:
// name, executable and parent of each, and the container each cgroup
// belongs to. The eBPF input fills it from exec events and reads it to
// give events their parent's name and executable and their container id;
// a process that started before trawl is read from /proc the first time
// it is asked for.
//
// The table has a fixed capacity, allocated up front, and evicts its
// oldest entry when full. Lookups, inserts and removals do not allocate;
// reading /proc and resolving a new cgroup do. A Cache is safe for
// concurrent use.
package proccache

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Sizes of the names kept; longer executables are cut.
const (
	CommLen = 16
	ExeLen  = 256
)

// Info is what the cache knows of a process. Comm and Exe are
// zero-padded; CommN and ExeN are their lengths.
type Info struct {
	PID, PPID   uint32
	Start       int64 // kernel start time (CLOCK_MONOTONIC ns)
	ParentStart int64 // the parent's, or 0 when unknown
	CommN       uint8
	ExeN        uint16
	Comm        [CommLen]byte
	Exe         [ExeLen]byte
}

// Name returns the process name.
func (i *Info) Name() []byte { return i.Comm[:i.CommN] }

// Executable returns the path of the executable.
func (i *Info) Executable() []byte { return i.Exe[:i.ExeN] }

// slot is one table entry; known is false for a negative entry (a pid
// and start that /proc could not tell about). prev and next link the slots
// in use from the oldest to the newest, and the free slots into a list.
type slot struct {
	Info
	known      bool
	prev, next int32 // slot indexes, or none
}

// none ends the slot lists.
const none = -1

// Options configure a Cache.
type Options struct {
	// Capacity is the number of processes kept (default 32768).
	Capacity int
	// ProcDir is the proc file system (default /proc).
	ProcDir string
	// CgroupRoot is the cgroup v2 mount (default: found in
	// /proc/self/mountinfo). Without one, no container ids are found.
	CgroupRoot string
	// ClockTicks is the kernel's USER_HZ, the unit of start times in
	// /proc/PID/stat (default 100).
	ClockTicks int64
	// Suspended returns how long the machine has been suspended since boot
	// (CLOCK_BOOTTIME minus CLOCK_MONOTONIC): /proc counts start times in
	// boot time, the kernel's task start times do not. Nil reads the
	// clocks.
	Suspended func() int64
}

// Cache is a table of processes and of cgroup containers.
//
// The table is a fixed array of slots and an open-addressing index from
// pid to slot (linear probing, at most half full, deletions shift entries
// back so no tombstones build up). A Go map did the same job at 1.7 times
// the cost per exec and exit (BenchmarkExecExit), and its lookups alone
// were about 5% of the eBPF input's CPU in an exec storm, where every
// process inserts and then deletes a pid. Freed slots are reused first,
// newest first, so that the short-lived processes that make up most execs
// keep reusing slots still in the CPU's cache.
type Cache struct {
	opts Options

	mu     sync.Mutex
	slots  []slot
	index  []indexEntry // len is a power of two, at least 2 × capacity
	shift  uint8        // 32 - log2(len(index))
	oldest int32        // slot lists: in use, oldest to newest...
	newest int32
	free   int32 // ... and free

	cgMu       sync.Mutex
	containers map[uint64][]byte // cgroup id → container id (nil: none)
}

// indexEntry maps a pid to its slot; slot is the slot's index + 1, and 0
// marks an empty entry.
type indexEntry struct {
	pid  uint32
	slot int32
}

// New returns an empty cache.
func New(opts Options) *Cache {
	if opts.Capacity <= 0 {
		opts.Capacity = 32768
	}
	if opts.ProcDir == "" {
		opts.ProcDir = "/proc"
	}
	if opts.CgroupRoot == "" {
		opts.CgroupRoot = cgroup2Mount(opts.ProcDir)
	}
	if opts.ClockTicks <= 0 {
		opts.ClockTicks = 100
	}
	if opts.Suspended == nil {
		opts.Suspended = suspended
	}
	bits := uint8(1)
	for 1<<bits < 2*opts.Capacity {
		bits++
	}
	c := &Cache{
		opts:       opts,
		slots:      make([]slot, opts.Capacity),
		index:      make([]indexEntry, 1<<bits),
		shift:      32 - bits,
		oldest:     none,
		newest:     none,
		containers: map[uint64][]byte{},
	}
	// Every slot starts free; the list runs from slot 0 up.
	for i := range c.slots {
		c.slots[i].next = int32(i + 1)
	}
	c.slots[len(c.slots)-1].next = none
	return c
}

// Exec records that pid (started at start, child of ppid started at
// pstart) now runs exe under the name comm.
func (c *Cache) Exec(pid, ppid uint32, start, pstart int64, comm, exe []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.slotFor(pid)
	s.PID, s.PPID, s.Start, s.ParentStart = pid, ppid, start, pstart
	s.CommN = uint8(copy(s.Comm[:], comm))
	s.ExeN = uint16(copy(s.Exe[:], exe))
	s.known = true
}

// Exit forgets pid if the cache holds it with this start time.
func (c *Cache) Exit(pid uint32, start int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if at, ok := c.find(pid); ok {
		i := c.index[at].slot - 1
		if c.slots[i].Start == start {
			c.unindex(at)
			c.release(i)
		}
	}
}

// Lookup copies what is known of the process pid started at start into
// dst and reports whether anything is. A process the cache never saw is
// read from /proc when it still runs there with that start time; start 0
// accepts whatever runs as pid.
func (c *Cache) Lookup(pid uint32, start int64, dst *Info) bool {
	if pid == 0 {
		return false
	}
	c.mu.Lock()
	if at, ok := c.find(pid); ok {
		s := &c.slots[c.index[at].slot-1]
		if start == 0 || s.Start == start {
			*dst = s.Info
			known := s.known
			c.mu.Unlock()
			return known
		}
	}
	c.mu.Unlock()
	// Slow path, once per process: outside the lock.
	var s slot
	s.known = c.readProc(pid, start, &s.Info)
	if start == 0 && !s.known {
		return false // nothing to key a negative entry on
	}
	c.mu.Lock()
	t := c.slotFor(pid)
	t.Info, t.known = s.Info, s.known
	t.PID = pid
	if t.Start == 0 {
		t.Start = start
	}
	c.mu.Unlock()
	*dst = s.Info
	return s.known
}

// slotFor returns pid's slot, taking a new one (a free one, or else the
// oldest entry's) if pid has none; a new slot is zero apart from its
// links. c.mu is held.
func (c *Cache) slotFor(pid uint32) *slot {
	at, ok := c.find(pid)
	if ok {
		return &c.slots[c.index[at].slot-1]
	}
	i := c.free
	if i == none {
		// Full: evict the oldest. Its index entry may sit before at in
		// the probe sequence, and removing it may shift entries back.
		i = c.oldest
		if old, ok := c.find(c.slots[i].PID); ok && c.index[old].slot-1 == i {
			c.unindex(old)
		}
		c.release(i)
		at, _ = c.find(pid)
	}
	s := &c.slots[i]
	c.free = s.next
	*s = slot{prev: c.newest, next: none}
	if c.newest != none {
		c.slots[c.newest].next = i
	} else {
		c.oldest = i
	}
	c.newest = i
	c.index[at] = indexEntry{pid: pid, slot: i + 1}
	return s
}

// release unlinks slot i from the slots in use and frees it. Its index
// entry must be gone already. c.mu is held.
func (c *Cache) release(i int32) {
	s := &c.slots[i]
	if s.prev != none {
		c.slots[s.prev].next = s.next
	} else {
		c.oldest = s.next
	}
	if s.next != none {
		c.slots[s.next].prev = s.prev
	} else {
		c.newest = s.prev
	}
	s.known, s.PID = false, 0
	s.prev, s.next = none, c.free
	c.free = i
}

// home is where pid's index entry would be without collisions
// (Fibonacci hashing: pids are mostly consecutive numbers).
func (c *Cache) home(pid uint32) int {
	return int((pid * 0x9e3779b1) >> c.shift)
}

// find returns the index position holding pid, or the empty position
// where it would go. c.mu is held.
func (c *Cache) find(pid uint32) (int, bool) {
	mask := len(c.index) - 1
	for at := c.home(pid); ; at = (at + 1) & mask {
		e := c.index[at]
		if e.slot == 0 {
			return at, false
		}
		if e.pid == pid {
			return at, true
		}
	}
}

// unindex empties index position at, moving back the entries after it
// that would otherwise no longer be found from their home position.
// c.mu is held.
func (c *Cache) unindex(at int) {
	mask := len(c.index) - 1
	hole := at
	for j := (at + 1) & mask; c.index[j].slot != 0; j = (j + 1) & mask {
		// The entry at j stays unless the hole lies between its home and
		// j (cyclically): then a lookup would stop at the hole first.
		h := c.home(c.index[j].pid)
		if (j-h)&mask >= (j-hole)&mask {
			c.index[hole] = c.index[j]
			hole = j
		}
	}
	c.index[hole] = indexEntry{}
}

// readProc fills info from /proc/PID and reports whether the process
// there is the one that started at start (any, when start is 0).
func (c *Cache) readProc(pid uint32, start int64, info *Info) bool {
	dir := filepath.Join(c.opts.ProcDir, strconv.FormatUint(uint64(pid), 10))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return false
	}
	ppid, ticks, err := parseStat(stat)
	if err != nil {
		return false
	}
	procStart := ticks * (1e9 / c.opts.ClockTicks)
	if start != 0 {
		// /proc counts boot time, the kernel's start_time does not: allow
		// for time spent suspended, and for the tick's rounding.
		tick := int64(1e9 / c.opts.ClockTicks)
		if procStart < start-tick || procStart > start+c.opts.Suspended()+tick {
			return false
		}
	}
	info.PID, info.PPID, info.Start = pid, ppid, start
	if start == 0 {
		info.Start = procStart
	}
	if comm, err := os.ReadFile(filepath.Join(dir, "comm")); err == nil {
		info.CommN = uint8(copy(info.Comm[:], bytes.TrimSuffix(comm, []byte("\n"))))
	}
	if exe, err := os.Readlink(filepath.Join(dir, "exe")); err == nil {
		info.ExeN = uint16(copy(info.Exe[:], exe))
	}
	return true
}

// parseStat reads the parent pid and the start time (clock ticks since
// boot) from /proc/PID/stat. The command name, in parentheses, may hold
// spaces and parentheses itself, so fields are counted after the last ')'.
func parseStat(stat []byte) (ppid uint32, start int64, err error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("cannot parse /proc stat %q", stat)
	}
	f := strings.Fields(string(stat[i+1:]))
	// After the name: state (3), ppid (4), ..., starttime (22).
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("cannot parse /proc stat %q: too few fields", stat)
	}
	p, err := strconv.ParseUint(f[1], 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("cannot parse the ppid in /proc stat %q: %w", stat, err)
	}
	s, err := strconv.ParseInt(f[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("cannot parse the start time in /proc stat %q: %w", stat, err)
	}
	return uint32(p), s, nil
}

// Container returns the id of the container whose cgroup has id cgroupID,
// or nil when it is not a container's. pids are processes known to be in
// that cgroup (or near it), tried first; otherwise the cgroup tree is
// searched once. The answer is cached per cgroup and the returned slice
// must not be modified.
func (c *Cache) Container(cgroupID uint64, pids ...uint32) []byte {
	if cgroupID == 0 || c.opts.CgroupRoot == "" {
		return nil
	}
	c.cgMu.Lock()
	id, ok := c.containers[cgroupID]
	c.cgMu.Unlock()
	if ok {
		return id
	}
	path := c.cgroupPath(cgroupID, pids)
	id = ContainerID(path)
	c.cgMu.Lock()
	c.containers[cgroupID] = id
	c.cgMu.Unlock()
	return id
}

// cgroupPath finds the cgroup v2 directory whose inode is id: from the
// cgroup of one of pids, or by walking the tree.
func (c *Cache) cgroupPath(id uint64, pids []uint32) string {
	for _, pid := range pids {
		b, err := os.ReadFile(filepath.Join(c.opts.ProcDir, strconv.FormatUint(uint64(pid), 10), "cgroup"))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if rel, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
				p := filepath.Join(c.opts.CgroupRoot, rel)
				if inode(p) == id {
					return p
				}
			}
		}
	}
	found := ""
	const maxDirs = 100000 // bound the search on hosts with huge trees
	n := 0
	errFound := errors.New("found")
	filepath.WalkDir(c.opts.CgroupRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if n++; n > maxDirs {
			return filepath.SkipAll
		}
		if inode(p) == id {
			found = p
			return errFound
		}
		return nil
	})
	return found
}

// ContainerID extracts a container id from a cgroup path: the last run of
// exactly 64 hexadecimal digits in its last components, as Docker
// (docker-<id>.scope, /docker/<id>), containerd (cri-containerd-<id>.scope),
// CRI-O (crio-<id>.scope) and Podman (libpod-<id>.scope) name them. It
// returns nil when there is none.
func ContainerID(path string) []byte {
	for path != "" && path != "/" && path != "." {
		base := filepath.Base(path)
		for i := len(base); i >= 64; {
			j := i
			for j > 0 && isHex(base[j-1]) {
				j--
			}
			if i-j == 64 {
				return []byte(base[j:i])
			}
			i = j - 1
		}
		path = filepath.Dir(path)
	}
	return nil
}

func isHex(b byte) bool {
	return '0' <= b && b <= '9' || 'a' <= b && b <= 'f'
}

// cgroup2Mount finds the cgroup v2 mount point in mountinfo, or "".
func cgroup2Mount(procDir string) string {
	b, err := os.ReadFile(filepath.Join(procDir, "self", "mountinfo"))
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		// id parent major:minor root mountpoint options ... - fstype ...
		f := strings.Fields(sc.Text())
		for i, x := range f {
			if x == "-" && i+1 < len(f) && f[i+1] == "cgroup2" && len(f) > 4 {
				return f[4]
			}
		}
	}
	return ""
}
