package audit

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strings"
	"time"

	"github.com/elastic/go-libaudit/v2/auparse"

	"github.com/trawlsec/trawl/event"
)

// Normalizer turns reassembled [Message]s into trawl events following the
// Elastic Common Schema. It keeps a scratch buffer for hex-decoded values,
// so in steady state Fill does not allocate. A Normalizer is not safe for
// concurrent use.
type Normalizer struct {
	// Names resolves ids to names; nil leaves names empty.
	Names *Names

	scratch []byte
	args    []argRef
	now     func() time.Time
}

// argRef is one execve argument while the EXECVE records are read: a
// slice of the message for a quoted value, or a range of scratch.
type argRef struct {
	raw        []byte
	start, end int
	inScratch  bool
}

// NewNormalizer returns a Normalizer resolving names with names (nil for
// none).
func NewNormalizer(names *Names) *Normalizer {
	return &Normalizer{Names: names, now: time.Now}
}

// Fill sets ev to the event m describes: Kind, Flags, Time and the Audit
// payload (FlagTruncated when m is not complete). Other fields of ev are
// left alone (the caller sets RecvTime). ev's
// slices alias m.Raw and the Normalizer's scratch buffer, so ev is valid
// until m is reused or Fill is called again. ev.Audit.Args keeps its
// capacity from earlier events.
func (n *Normalizer) Fill(ev *event.Event, m *Message) {
	a := &ev.Audit
	args := a.Args[:0]
	clear(args[:cap(args)])
	*a = event.Audit{Args: args, UID: event.UnsetID, AUID: event.UnsetID, GID: event.UnsetID}
	ev.Kind = event.KindAudit
	ev.Time = m.Time
	a.Sequence = m.Serial
	a.Raw = m.Raw
	if len(m.Records) > 0 {
		a.RecordType = m.Records[0].Type
	}
	ev.Flags = 0
	if !m.Complete {
		ev.Flags = event.FlagTruncated
	}
	// Hex-decoded values are never longer than half their text, and the
	// joined path is at most the cwd plus the name, both taken from Raw:
	// with this much room scratch never moves while slices into it are
	// handed out.
	if need := 2*len(m.Raw) + 64; cap(n.scratch) < need {
		n.scratch = make([]byte, 0, need)
	}
	n.scratch = n.scratch[:0]
	n.args = n.args[:0]

	var (
		st         state
		f          Field
		pathName   []byte
		pathRank   = -1
		syscallRec = false
	)
	for i := range m.Records {
		r := &m.Records[i]
		it := NewFields(r.Body)
		switch r.Type {
		case TypeSyscall:
			syscallRec = true
			for it.Next(&f) {
				n.syscallField(a, &st, &f)
			}
		case TypeExecve:
			for it.Next(&f) {
				n.execveField(&f)
			}
		case TypeProctitle:
			for it.Next(&f) {
				if string(f.Key) == "proctitle" {
					a.Title = n.title(&f)
				}
			}
		case TypeCwd:
			for it.Next(&f) {
				if string(f.Key) == "cwd" {
					a.Cwd = n.untrusted(&f)
				}
			}
		case TypePath:
			var name []byte
			rank := 0
			for it.Next(&f) {
				switch string(f.Key) {
				case "name":
					name = n.untrusted(&f)
				case "nametype":
					rank = pathRankOf(f.Value)
				}
			}
			if name != nil && rank > pathRank {
				pathName, pathRank = name, rank
			}
		case TypeSockaddr:
			for it.Next(&f) {
				if string(f.Key) == "saddr" {
					st.saddr = f.Value
				}
			}
		default:
			// Records logged by user space or outside a syscall carry
			// their subject's ids themselves; the SYSCALL record, when
			// there is one, wins.
			n.otherFields(a, &it, &f)
		}
	}

	n.finishArgs(a)
	if pathName != nil {
		a.FilePath = n.joinPath(a.Cwd, pathName)
	}
	if syscallRec {
		a.Syscall = syscallName(st.arch, st.syscall)
		a.Action = syscallAction(st.arch, st.syscall)
		if a.Action == nil {
			a.Action = a.Syscall
		}
		if st.saddr != nil && isDestination(a.Action) {
			a.DstAddr = sockaddrIP(st.saddr)
		}
	}
	if a.Action == nil {
		a.Action = typeAction(a.RecordType)
	}
	if n.Names != nil {
		now := n.now()
		if a.UID != event.UnsetID {
			a.UserName = n.Names.User(a.UID, now)
		}
		if a.AUID != event.UnsetID {
			a.AuditUserName = n.Names.User(a.AUID, now)
		}
		if a.GID != event.UnsetID {
			a.GroupName = n.Names.Group(a.GID, now)
		}
	}
}

// state holds what Fill needs across records before it can decide.
type state struct {
	arch, syscall uint64
	hasArch       bool
	saddr         []byte
}

func (n *Normalizer) syscallField(a *event.Audit, st *state, f *Field) {
	switch string(f.Key) {
	case "arch":
		st.arch, st.hasArch = ParseHexUint(f.Value)
	case "syscall":
		st.syscall, _ = ParseUint(f.Value)
	case "success":
		a.Result = result(f.Value)
	case "pid":
		a.PID = parseID32(f.Value, 0)
	case "ppid":
		a.PPID = parseID32(f.Value, 0)
	case "uid":
		a.UID = parseID32(f.Value, event.UnsetID)
	case "auid":
		a.AUID = parseID32(f.Value, event.UnsetID)
	case "gid":
		a.GID = parseID32(f.Value, event.UnsetID)
	case "comm":
		a.Comm = n.untrusted(f)
	case "exe":
		a.Exe = n.untrusted(f)
	case "key":
		a.Key = firstKey(n.untrusted(f))
	}
}

// otherFields reads the subject of a record that is not part of a syscall
// (user-space messages, LOGIN, CONFIG_CHANGE, ANOM_*). The msg='...' of
// user-space records holds fields of its own (exe, res, ...), read in the
// same pass.
//
// The key= of a CONFIG_CHANGE names the rule being changed, not one that
// matched, so it is not taken as the event's key.
func (n *Normalizer) otherFields(a *event.Audit, it *Fields, f *Field) {
	for it.Next(f) {
		if f.Quote != Nested {
			n.otherField(a, f)
			continue
		}
		// One level only: msg='...' holds no further nesting. (A loop
		// rather than recursion keeps the iterator on the stack.)
		inner := NewFields(f.Value)
		for inner.Next(f) {
			n.otherField(a, f)
		}
	}
}

func (n *Normalizer) otherField(a *event.Audit, f *Field) {
	switch string(f.Key) {
	case "pid":
		if a.PID == 0 {
			a.PID = parseID32(f.Value, 0)
		}
	case "uid":
		if a.UID == event.UnsetID {
			a.UID = parseID32(f.Value, event.UnsetID)
		}
	case "auid":
		if a.AUID == event.UnsetID {
			a.AUID = parseID32(f.Value, event.UnsetID)
		}
	case "res", "success":
		if a.Result == nil {
			a.Result = result(f.Value)
		}
	case "exe":
		if a.Exe == nil {
			a.Exe = n.untrusted(f)
		}
	case "comm":
		if a.Comm == nil {
			a.Comm = n.untrusted(f)
		}
	}
}

// execveField reads argc=, aN=, aN_len= and aN[i]= of EXECVE records. An
// argument longer than the kernel's record limit comes in chunks
// aN[0], aN[1], ... possibly spread over several EXECVE records; chunks
// are decoded one after the other into scratch, so they join up.
func (n *Normalizer) execveField(f *Field) {
	k := f.Key
	if len(k) < 2 || k[0] != 'a' || k[1] < '0' || k[1] > '9' {
		return // argc, or not an argument
	}
	idx, end, ok := parseUintAt(k, 1)
	if !ok || idx >= event.MaxArgs {
		return
	}
	switch {
	case end == len(k): // aN=value
		n.setArg(int(idx))
		ref := &n.args[idx]
		if f.Quote == Quoted {
			ref.raw = f.Value
			return
		}
		ref.start = len(n.scratch)
		if s, ok := AppendHex(n.scratch, f.Value); ok {
			n.scratch = s
			ref.inScratch = true
		}
		ref.end = len(n.scratch)
	case k[end] == '[': // aN[i]=chunk
		n.setArg(int(idx))
		ref := &n.args[idx]
		if !ref.inScratch {
			ref.inScratch = true
			ref.start = len(n.scratch)
		}
		if ref.end != len(n.scratch) && ref.end > ref.start {
			// Another value was decoded between two chunks of this
			// argument (never from a well-formed event): start over here.
			ref.start = len(n.scratch)
		}
		if f.Quote == Quoted {
			n.scratch = append(n.scratch, f.Value...)
		} else if s, ok := AppendHex(n.scratch, f.Value); ok {
			n.scratch = s
		}
		ref.end = len(n.scratch)
	}
}

// setArg makes sure n.args has index i.
func (n *Normalizer) setArg(i int) {
	for len(n.args) <= i {
		n.args = append(n.args, argRef{})
	}
}

func (n *Normalizer) finishArgs(a *event.Audit) {
	for i := range n.args {
		r := &n.args[i]
		v := r.raw
		if r.inScratch {
			v = n.scratch[r.start:r.end:r.end]
		}
		if v == nil {
			v = []byte{}
		}
		a.Args = append(a.Args, v)
		*r = argRef{}
	}
}

// untrusted returns a value written with audit_log_untrustedstring: a
// quoted one as a slice of the message, a hex one decoded into scratch.
// "(null)", "?" and bad hex give nil.
func (n *Normalizer) untrusted(f *Field) []byte {
	if f.Quote == Quoted {
		return f.Value
	}
	start := len(n.scratch)
	s, ok := AppendHex(n.scratch, f.Value)
	if !ok {
		return nil
	}
	n.scratch = s
	return s[start:len(s):len(s)]
}

// title decodes PROCTITLE: the command line with NUL between arguments,
// shown with spaces as ps does.
func (n *Normalizer) title(f *Field) []byte {
	t := n.untrusted(f)
	t = bytes.TrimRight(t, "\x00")
	for i, c := range t {
		if c == 0 {
			t[i] = ' '
		}
	}
	return t
}

// joinPath returns name, or cwd/name when name is relative and cwd known.
func (n *Normalizer) joinPath(cwd, name []byte) []byte {
	if len(name) == 0 || name[0] == '/' || len(cwd) == 0 {
		return name
	}
	name = bytes.TrimPrefix(name, []byte("./"))
	start := len(n.scratch)
	n.scratch = append(n.scratch, cwd...)
	if cwd[len(cwd)-1] != '/' {
		n.scratch = append(n.scratch, '/')
	}
	n.scratch = append(n.scratch, name...)
	return n.scratch[start:len(n.scratch):len(n.scratch)]
}

// pathRankOf orders PATH records for file.path: the object a syscall
// created, deleted or used beats its parent directory.
func pathRankOf(nametype []byte) int {
	switch string(nametype) {
	case "CREATE", "DELETE":
		return 3
	case "NORMAL":
		return 2
	case "PARENT":
		return 0
	}
	return 1
}

func parseID32(v []byte, unset uint32) uint32 {
	id, ok := ParseUint(v)
	if !ok || id > 1<<32-1 {
		return unset
	}
	return uint32(id)
}

var (
	resultSuccess = []byte("success")
	resultFail    = []byte("fail")
)

func result(v []byte) []byte {
	switch string(v) {
	case "yes", "success", "1":
		return resultSuccess
	case "no", "failed", "fail", "0":
		return resultFail
	}
	return nil
}

// firstKey returns the first of the keys a rule carries: several -k
// options are joined by the kernel with \x01 (AUDIT_KEY_SEPARATOR).
func firstKey(k []byte) []byte {
	if i := bytes.IndexByte(k, 0x01); i >= 0 {
		return k[:i]
	}
	return k
}

// sockaddrIP decodes a SOCKADDR saddr (hex of struct sockaddr, family in
// host order, port and address in network order) into an IP and port.
// Unix and other families give the zero AddrPort.
func sockaddrIP(hexText []byte) netip.AddrPort {
	var buf [28]byte
	if len(hexText) < 16 {
		return netip.AddrPort{}
	}
	h := hexText[:min(len(hexText), 2*len(buf))]
	b, ok := AppendHex(buf[:0], h[:len(h)&^1])
	if !ok || len(b) < 8 {
		return netip.AddrPort{}
	}
	family := binary.NativeEndian.Uint16(b[0:2])
	port := binary.BigEndian.Uint16(b[2:4])
	switch family {
	case 2: // AF_INET
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), port)
	case 10: // AF_INET6
		if len(b) < 24 {
			return netip.AddrPort{}
		}
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])).Unmap(), port)
	}
	return netip.AddrPort{}
}

// Actions are ECS event.action values: what the subject did, as a short
// hyphenated verb phrase. The syscall table maps names from go-libaudit's
// syscall tables; a syscall without an entry uses its own name.
var (
	actionExecuted  = []byte("executed")
	actionConnected = []byte("connected-to")
	actionSentTo    = []byte("sent-to")
)

var syscallActions = map[string][]byte{
	"execve": actionExecuted, "execveat": actionExecuted,
	"connect": actionConnected,
	"sendto":  actionSentTo, "sendmsg": actionSentTo, "sendmmsg": actionSentTo,
	"bind":   []byte("bound-socket"),
	"accept": []byte("accepted-connection-from"), "accept4": []byte("accepted-connection-from"),
	"listen": []byte("listened-for-connections"),
	"socket": []byte("created-socket"),
	"open":   []byte("opened-file"), "openat": []byte("opened-file"), "openat2": []byte("opened-file"),
	"creat": []byte("opened-file"), "open_by_handle_at": []byte("opened-file"),
	"truncate": []byte("wrote-to-file"), "ftruncate": []byte("wrote-to-file"),
	"chmod": []byte("changed-file-permissions"), "fchmod": []byte("changed-file-permissions"),
	"fchmodat": []byte("changed-file-permissions"), "fchmodat2": []byte("changed-file-permissions"),
	"chown": []byte("changed-file-ownership"), "fchown": []byte("changed-file-ownership"),
	"lchown": []byte("changed-file-ownership"), "fchownat": []byte("changed-file-ownership"),
	"setxattr": []byte("changed-file-attributes"), "lsetxattr": []byte("changed-file-attributes"),
	"fsetxattr": []byte("changed-file-attributes"), "removexattr": []byte("changed-file-attributes"),
	"lremovexattr": []byte("changed-file-attributes"), "fremovexattr": []byte("changed-file-attributes"),
	"setxattrat": []byte("changed-file-attributes"), "removexattrat": []byte("changed-file-attributes"),
	"utime": []byte("changed-file-timestamps"), "utimes": []byte("changed-file-timestamps"),
	"utimensat": []byte("changed-file-timestamps"), "futimesat": []byte("changed-file-timestamps"),
	"unlink": []byte("deleted"), "unlinkat": []byte("deleted"), "rmdir": []byte("deleted"),
	"rename": []byte("renamed"), "renameat": []byte("renamed"), "renameat2": []byte("renamed"),
	"link": []byte("linked"), "linkat": []byte("linked"), "symlink": []byte("linked"), "symlinkat": []byte("linked"),
	"mkdir": []byte("created-directory"), "mkdirat": []byte("created-directory"),
	"mknod": []byte("created-special-file"), "mknodat": []byte("created-special-file"),
	"init_module": []byte("loaded-kernel-module"), "finit_module": []byte("loaded-kernel-module"),
	"delete_module": []byte("unloaded-kernel-module"),
	"kexec_load":    []byte("loaded-kernel"), "kexec_file_load": []byte("loaded-kernel"),
	"mount": []byte("mounted"), "fsmount": []byte("mounted"), "move_mount": []byte("mounted"),
	"mount_setattr": []byte("mounted"),
	"umount":        []byte("unmounted"), "umount2": []byte("unmounted"),
	"ptrace":            []byte("traced-process"),
	"process_vm_readv":  []byte("accessed-process-memory"),
	"process_vm_writev": []byte("accessed-process-memory"),
	"settimeofday":      []byte("changed-system-time"), "clock_settime": []byte("changed-system-time"),
	"adjtimex": []byte("changed-system-time"), "clock_adjtime": []byte("changed-system-time"),
	"stime":       []byte("changed-system-time"),
	"sethostname": []byte("changed-hostname"), "setdomainname": []byte("changed-hostname"),
	"setuid": []byte("changed-identity"), "setreuid": []byte("changed-identity"),
	"setresuid": []byte("changed-identity"), "setfsuid": []byte("changed-identity"),
	"setgid": []byte("changed-identity"), "setregid": []byte("changed-identity"),
	"setresgid": []byte("changed-identity"), "setfsgid": []byte("changed-identity"),
	"setgroups": []byte("changed-identity"),
	"capset":    []byte("changed-capabilities"),
	"kill":      []byte("sent-signal"), "tkill": []byte("sent-signal"), "tgkill": []byte("sent-signal"),
	"reboot": []byte("rebooted"),
	"swapon": []byte("changed-swap"), "swapoff": []byte("changed-swap"),
	"bpf":          []byte("used-bpf"),
	"memfd_create": []byte("created-memory-file"),
	"chroot":       []byte("changed-root-directory"), "pivot_root": []byte("changed-root-directory"),
	"setns": []byte("changed-namespace"), "unshare": []byte("changed-namespace"),
	"clone": []byte("created-process"), "clone3": []byte("created-process"),
	"fork": []byte("created-process"), "vfork": []byte("created-process"),
	"chdir": []byte("changed-directory"), "fchdir": []byte("changed-directory"),
	"iopl": []byte("changed-io-privilege"), "ioperm": []byte("changed-io-privilege"),
}

// isDestination reports whether a syscall's SOCKADDR is the peer it
// reached out to (destination.*); bind's and accept's are not.
func isDestination(action []byte) bool {
	return bytes.Equal(action, actionConnected) || bytes.Equal(action, actionSentTo)
}

// archTable holds, per syscall number, its name and action.
type archTable struct {
	names   [][]byte
	actions [][]byte
}

// archTables maps AUDIT_ARCH_* values to their syscall tables, built once
// from go-libaudit's tables so lookups do not allocate.
var archTables = func() map[uint64]*archTable {
	m := map[uint64]*archTable{}
	for arch, archName := range auparse.AuditArchNames {
		calls, ok := auparse.AuditSyscalls[archName]
		if !ok {
			continue
		}
		maxNum := 0
		for num := range calls {
			maxNum = max(maxNum, num)
		}
		t := &archTable{names: make([][]byte, maxNum+1), actions: make([][]byte, maxNum+1)}
		for num, name := range calls {
			if num < 0 {
				continue
			}
			t.names[num] = []byte(name)
			t.actions[num] = syscallActions[name]
		}
		m[uint64(arch)] = t
	}
	return m
}()

func syscallName(arch, num uint64) []byte {
	if t := archTables[arch]; t != nil && num < uint64(len(t.names)) {
		return t.names[num]
	}
	return nil
}

func syscallAction(arch, num uint64) []byte {
	if t := archTables[arch]; t != nil && num < uint64(len(t.actions)) {
		return t.actions[num]
	}
	return nil
}

// typeActions names what records of a type say happened when there is no
// syscall; others get their lower-cased type name.
var typeActions = map[uint16][]byte{
	1006: []byte("changed-login-id"),
	1100: []byte("authenticated"),
	1101: []byte("was-authorized"),
	1103: []byte("acquired-credentials"),
	1104: []byte("disposed-credentials"),
	1105: []byte("started-session"),
	1106: []byte("ended-session"),
	1108: []byte("changed-password"),
	1110: []byte("refreshed-credentials"),
	1112: []byte("logged-in"),
	1113: []byte("logged-out"),
	1114: []byte("added-user"),
	1115: []byte("deleted-user"),
	1116: []byte("added-group"),
	1117: []byte("deleted-group"),
	1123: []byte("ran-command"),
	1127: []byte("booted"),
	1128: []byte("shut-down"),
	1130: []byte("started-service"),
	1131: []byte("stopped-service"),
	1200: []byte("started-audit-daemon"),
	1201: []byte("stopped-audit-daemon"),
	1305: []byte("changed-audit-configuration"),
	1325: []byte("changed-firewall"),
	1330: []byte("loaded-kernel-module"),
	1400: []byte("violated-selinux-policy"),
	1700: []byte("changed-promiscuous-mode"),
	1701: []byte("crashed"),
}

// lowerTypeNames holds "syscall", "user-avc", ... for typeAction's
// fallback.
var lowerTypeNames = func() (t [TypeLastEvent - TypeFirstEvent + 1][]byte) {
	for i, n := range typeNames {
		if n != nil {
			t[i] = []byte(strings.ReplaceAll(strings.ToLower(string(n)), "_", "-"))
		}
	}
	return t
}()

func typeAction(typ uint16) []byte {
	if a, ok := typeActions[typ]; ok {
		return a
	}
	if typ >= TypeFirstEvent && typ <= TypeLastEvent {
		return lowerTypeNames[typ-TypeFirstEvent]
	}
	return nil
}
