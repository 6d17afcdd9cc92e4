// Package audit turns the Linux kernel's audit records into trawl events and
// drives the kernel's audit subsystem over netlink.
//
// The pure parts need no privileges and allocate nothing per record in
// steady state:
//
//   - [ParseHeader] and [Fields] read one record's text
//     ("audit(1700000000.123:456): arch=c000003e syscall=59 ...") in place;
//   - [Reassembler] groups records by audit serial into [Message]s, ended by
//     the kernel's EOE record or by a timeout;
//   - [Normalizer] fills an [event.Audit] from a Message: ECS action,
//     process, user (names from a cached /etc/passwd and /etc/group), file
//     path, connect destination, rule key and the raw records;
//   - [ParseRules] reads a rules file in auditctl syntax.
//
// The Linux-only parts need CAP_AUDIT_CONTROL (and CAP_AUDIT_READ for
// multicast): [Control] reads and changes the kernel's audit state (status,
// rules) and puts back what it changed, and [Conn] is the netlink socket
// events are read from, as the audit daemon (unicast) or as a listener
// beside one (multicast).
//
// Why not go-libaudit's Reassembler, auparse and aucoalesce (what
// auditbeat uses): they build maps of strings per record and a
// lock-protected event list. On the events captured in testdata
// (BenchmarkPipeline) they cost about 365 allocations and 60 times the
// CPU per event of this package, which allocates nothing. go-libaudit is
// used where it is good and off the hot path: its rule package builds the
// kernel's binary rule format, its syscall and record-type tables name
// things, and its AuditClient carries the control requests.
package audit
