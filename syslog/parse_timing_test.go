package syslog

import (
	"testing"

	v3rfc3164 "github.com/influxdata/go-syslog/v3/rfc3164"
	v3rfc5424 "github.com/influxdata/go-syslog/v3/rfc5424"
	v4rfc3164 "github.com/leodido/go-syslog/v4/rfc3164"
	v4rfc5424 "github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/trawlsec/trawl/event"
)

// benchMessages are realistic messages of about 256 bytes that every
// benchmarked parser accepts in strict mode.
var benchMessages = map[string][]string{
	"rfc5424": {
		`<165>1 2024-01-15T11:59:01.719Z mx480-re0.example.net mgd 3046 UI_DBASE_LOGOUT_EVENT [junos@2636.1.1.1.2.18 username="regress"] User 'regress' exiting configuration mode after committing changes to interfaces ge-0/0/1 and ge-0/0/2 on the primary routing engine`,
		`<38>1 2024-01-15T11:59:01.123456+00:00 web1.example.com sshd 2271 - [meta sequenceId="42" sysUpTime="37"][origin ip="10.0.0.5"] Accepted publickey for deploy from 10.0.0.5 port 51000 ssh2: RSA SHA256:4vB1bT3qVq9kR0o0Zk3Rj1pQ0Yk5lT3m0VfJ7xk0m2A`,
		`<134>1 2024-01-15T11:59:01.123456+00:00 pfsense.home.arpa filterlog 12345 - - 5,,,1000000103,igb0,match,block,in,4,0x0,,64,0,0,DF,6,tcp,60,198.51.100.7,10.0.0.1,51234,22,0,S,1234567890,,64240,,mss;sackOK;TS;nop;wscale,extra,fields,to,fill`,
		`<131>1 2024-01-15T12:59:01.958752+01:00 app-7f9c4d.example.com payments 15560 TXN_FAIL [timeQuality tzKnown="1" isSynced="1"][txn@32473 id="a81f2c" amount="12.50" currency="EUR"] card declined by issuer, retry scheduled`,
	},
	"rfc3164": {
		`<38>Jan 15 11:59:01 web1 sshd[2271]: Accepted publickey for deploy from 10.0.0.5 port 51000 ssh2: RSA SHA256:4vB1bT3qVq9kR0o0Zk3Rj1pQ0Yk5lT3m0VfJ7xk0m2A, session opened for user deploy by (uid=0) after key exchange curve25519-sha256 completed`,
		`<22>Jan 15 11:59:03 mx1 postfix/qmgr[1200]: 4F3A21C0A2: from=<alice@example.com>, size=20480, nrcpt=3 (queue active), relay=mx.example.org[203.0.113.25]:25, delay=0.42, delays=0.1/0.01/0.2/0.11, dsn=2.0.0, status=sent (250 2.0.0 OK)`,
		`<4>Jan 15 11:59:01 web1 kernel: [123456.789012] [UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=198.51.100.4 DST=10.0.0.5 LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID=54321 DF PROTO=TCP SPT=51234 DPT=23 WINDOW=29200 RES=0x00 SYN URGP=0`,
		`<85>Jan 15 11:59:01 web1 sudo: alice : TTY=pts/0 ; PWD=/home/alice/projects/trawl ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx.service haproxy.service postfix.service --no-block --quiet`,
	},
}

func avgLen(msgs [][]byte) int64 {
	n := 0
	for _, m := range msgs {
		n += len(m)
	}
	return int64(n / len(msgs))
}

// BenchmarkParse measures one core parsing one message per op, cycling
// through benchMessages. go-syslog runs its strict parsers (best effort
// off; every message here is valid), v3 as influxdata/go-syslog v3.0.0 and
// v4 as leodido/go-syslog v4.6.0; their RFC 3164 parsers get
// WithYear(CurrentYear{}), the cheapest year strategy that dates a message
// at all. Their Parse also takes a mutex and allocates the message.
func BenchmarkParse(b *testing.B) {
	for _, format := range []string{"rfc5424", "rfc3164"} {
		var msgs [][]byte
		for _, m := range benchMessages[format] {
			msgs = append(msgs, []byte(m))
		}
		b.Run(format+"/trawl", func(b *testing.B) {
			p := NewParser(Options{})
			var ev event.Event
			recv := mustTime(defaultRecv)
			benchLoop(b, msgs, func(m []byte) bool { return p.Parse(&ev, m, srcPlain, recv) })
		})
		b.Run(format+"/gosyslog", func(b *testing.B) {
			parse := v3rfc5424.NewParser().Parse
			if format == "rfc3164" {
				parse = v3rfc3164.NewParser(v3rfc3164.WithYear(v3rfc3164.CurrentYear{})).Parse
			}
			benchLoop(b, msgs, func(m []byte) bool { _, err := parse(m); return err == nil })
		})
		b.Run(format+"/gosyslogv4", func(b *testing.B) {
			parse := v4rfc5424.NewParser().Parse
			if format == "rfc3164" {
				parse = v4rfc3164.NewParser(v4rfc3164.WithYear(v4rfc3164.CurrentYear{})).Parse
			}
			benchLoop(b, msgs, func(m []byte) bool { _, err := parse(m); return err == nil })
		})
	}
}

func benchLoop(b *testing.B, msgs [][]byte, parse func([]byte) bool) {
	b.SetBytes(avgLen(msgs))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if !parse(msgs[i]) {
			b.Fatalf("cannot parse %q", msgs[i])
		}
		if i++; i == len(msgs) {
			i = 0
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
