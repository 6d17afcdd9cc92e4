// Package syslog parses syslog messages into event.Event values and frames
// syslog TCP streams. It does no I/O: the collector's syslog input owns the
// sockets, hands each datagram (UDP) or each message cut by a [Splitter]
// (TCP, TLS) to [Parser.Parse], and copies the event into its ring slot.
//
// # Parsing
//
// [Parser.Parse] accepts RFC 5424 in full and RFC 3164 the way devices
// really send it (Linux daemons, Cisco IOS/NX-OS/ASA, Juniper, FortiGate,
// pfSense, Palo Alto, ...). It never fails and never allocates: the
// event.Syslog fields are slices of the message buffer. A message it cannot
// make sense of is kept whole with event.FlagParseError.
//
//	p := syslog.NewParser(syslog.Options{
//		Location: time.Local,                                // zone of 3164 stamps without one
//		Zones:    map[netip.Addr]*time.Location{rtr: berlin}, // per sender
//	})
//	ok := p.Parse(&ev, msg, from.Addr(), recvNs)            // ev aliases msg
//
// In short (docs/syslog.md has every rule and example):
//
//   - "<PRI>1 " starts RFC 5424: header fields are checked against the RFC's
//     lengths and character set, STRUCTURED-DATA is checked and kept as
//     received ([WalkStructuredData] and [AppendUnescaped] read it), a BOM
//     before MSG is dropped. A message that breaks the grammar falls back to
//     RFC 3164, which must then find a timestamp, or is a parse error.
//   - Everything else is RFC 3164: optional PRI (none means 13,
//     user.notice), optional Cisco counter/sequence/origin host, a timestamp
//     in one of several shapes (or none: the receive time is used), a
//     HOSTNAME unless the first word reads as a tag, and TAG[PID]: split
//     into AppName and ProcID. Cisco "%FAC-SEV-MNEMONIC:" becomes the
//     AppName "FAC-SEV-MNEMONIC".
//   - A year-less timestamp gets the year that puts it nearest the receive
//     time; a timestamp without an offset is in the sender's zone from
//     Options.Zones, else Options.Location, else UTC.
//
// # Framing
//
// A [Splitter] per TCP connection detects octet counting or
// non-transparent (LF, CRLF, NUL) framing from the first bytes, returns
// each message as a slice of the read buffer, and cuts messages longer than
// MaxMessage, skipping their rest, so a fixed buffer of
// [Splitter.BufferSize] bytes always suffices.
package syslog
