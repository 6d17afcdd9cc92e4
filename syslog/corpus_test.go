package syslog

import (
	"net/netip"
	"time"
	_ "time/tzdata" // zone tests must not depend on the machine's zoneinfo
)

// want is what Parse must produce for one message. time is ev.Time as RFC
// 3339 in UTC, or "recv" for the receive time.
type want struct {
	ok            bool
	time          string
	fac, sev, ver uint8
	host, app     string
	pid, msgid    string
	sd, msg       string
}

// corpusCase is one real-world message and its expected fields.
type corpusCase struct {
	name string
	recv string // receive time, RFC 3339; "" means defaultRecv
	src  string // sender; "" means 192.0.2.1 (no zone configured)
	in   string
	want want
}

const defaultRecv = "2024-01-15T12:00:00Z"

// Senders with a configured zone in corpusParser.
var (
	srcBerlin  = netip.MustParseAddr("192.0.2.20")
	srcNewYork = netip.MustParseAddr("192.0.2.21")
	srcPlain   = netip.MustParseAddr("192.0.2.1")
)

func mustZone(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

// corpusParser is the Parser the corpus is parsed with: UTC by default,
// Berlin and New York for two senders.
func corpusParser() *Parser {
	return NewParser(Options{Zones: map[netip.Addr]*time.Location{
		srcBerlin:  mustZone("Europe/Berlin"),
		srcNewYork: mustZone("America/New_York"),
	}})
}

// corpus holds messages as the named senders emit them (the logger lines
// were captured from util-linux 2.38.1 logger over UDP on this machine),
// plus the year-rollover and zone cases.
var corpus = []corpusCase{
	// Linux daemons.
	{name: "sshd", in: `<38>Jan 15 11:59:01 web1 sshd[2271]: Accepted publickey for root from 10.0.0.5 port 51000 ssh2: RSA SHA256:4vB1bT3qVq9kR0o0Zk3Rj1pQ0Yk5lT3m0VfJ7xk0m2A`,
		want: want{ok: true, time: "2024-01-15T11:59:01Z", fac: 4, sev: 6, host: "web1", app: "sshd", pid: "2271",
			msg: "Accepted publickey for root from 10.0.0.5 port 51000 ssh2: RSA SHA256:4vB1bT3qVq9kR0o0Zk3Rj1pQ0Yk5lT3m0VfJ7xk0m2A"}},
	{name: "sshd space-padded day", in: `<38>Jan  5 03:02:01 bastion sshd[812]: Failed password for invalid user admin from 203.0.113.7 port 40022 ssh2`,
		want: want{ok: true, time: "2024-01-05T03:02:01Z", fac: 4, sev: 6, host: "bastion", app: "sshd", pid: "812",
			msg: "Failed password for invalid user admin from 203.0.113.7 port 40022 ssh2"}},
	{name: "sudo", in: `<85>Jan 15 11:59:01 web1 sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx`,
		want: want{ok: true, time: "2024-01-15T11:59:01Z", fac: 10, sev: 5, host: "web1", app: "sudo",
			msg: "alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx"}},
	{name: "systemd", in: `<30>Jan 15 11:59:01 web1 systemd[1]: Started Session 42 of User alice.`,
		want: want{ok: true, time: "2024-01-15T11:59:01Z", fac: 3, sev: 6, host: "web1", app: "systemd", pid: "1",
			msg: "Started Session 42 of User alice."}},
	{name: "systemd-logind", in: `<38>Jan 15 11:59:01 web1 systemd-logind[634]: New session 42 of user alice.`,
		want: want{ok: true, time: "2024-01-15T11:59:01Z", fac: 4, sev: 6, host: "web1", app: "systemd-logind", pid: "634",
			msg: "New session 42 of user alice."}},
	{name: "kernel ufw", in: `<4>Jan 15 11:59:01 web1 kernel: [123456.789012] [UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=198.51.100.4 DST=10.0.0.5 LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID=54321 DF PROTO=TCP SPT=51234 DPT=23 WINDOW=29200 RES=0x00 SYN URGP=0`,
		want: want{ok: true, time: "2024-01-15T11:59:01Z", fac: 0, sev: 4, host: "web1", app: "kernel",
			msg: "[123456.789012] [UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=198.51.100.4 DST=10.0.0.5 LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID=54321 DF PROTO=TCP SPT=51234 DPT=23 WINDOW=29200 RES=0x00 SYN URGP=0"}},
	{name: "CRON", in: `<78>Jan 15 12:00:01 web1 CRON[12345]: (root) CMD (/usr/local/bin/backup.sh)`,
		want: want{ok: true, time: "2024-01-15T12:00:01Z", fac: 9, sev: 6, host: "web1", app: "CRON", pid: "12345",
			msg: "(root) CMD (/usr/local/bin/backup.sh)"}},
	{name: "postfix smtpd", in: `<22>Jan 15 11:59:02 mx1 postfix/smtpd[3312]: connect from mail-wm1-f45.google.com[209.85.128.45]`,
		want: want{ok: true, time: "2024-01-15T11:59:02Z", fac: 2, sev: 6, host: "mx1", app: "postfix/smtpd", pid: "3312",
			msg: "connect from mail-wm1-f45.google.com[209.85.128.45]"}},
	{name: "postfix qmgr", in: `<22>Jan 15 11:59:03 mx1 postfix/qmgr[1200]: 4F3A21C0A2: from=<alice@example.com>, size=2048, nrcpt=1 (queue active)`,
		want: want{ok: true, time: "2024-01-15T11:59:03Z", fac: 2, sev: 6, host: "mx1", app: "postfix/qmgr", pid: "1200",
			msg: "4F3A21C0A2: from=<alice@example.com>, size=2048, nrcpt=1 (queue active)"}},
	{name: "dev-log style no hostname", in: `<30>Jan 15 11:59:01 systemd[1]: Starting Daily apt upgrade and clean activities...`,
		want: want{ok: true, time: "2024-01-15T11:59:01Z", fac: 3, sev: 6, app: "systemd", pid: "1",
			msg: "Starting Daily apt upgrade and clean activities..."}},
	{name: "dockerd", in: `<30>Jan 15 11:59:01 node1 dockerd[900]: time="2024-01-15T11:59:01.123456789Z" level=info msg="Container started" container=3f2a`,
		want: want{ok: true, time: "2024-01-15T11:59:01Z", fac: 3, sev: 6, host: "node1", app: "dockerd", pid: "900",
			msg: `time="2024-01-15T11:59:01.123456789Z" level=info msg="Container started" container=3f2a`}},
	{name: "audisp", in: `<14>Jan 15 11:59:01 web1 audispd: node=web1 type=USER_LOGIN msg=audit(1705319941.123:456): pid=2271 uid=0 auid=1000 ses=42 msg='op=login id=1000 exe="/usr/sbin/sshd" hostname=10.0.0.5 addr=10.0.0.5 terminal=ssh res=success'`,
		want: want{ok: true, time: "2024-01-15T11:59:01Z", fac: 1, sev: 6, host: "web1", app: "audispd",
			msg: `node=web1 type=USER_LOGIN msg=audit(1705319941.123:456): pid=2271 uid=0 auid=1000 ses=42 msg='op=login id=1000 exe="/usr/sbin/sshd" hostname=10.0.0.5 addr=10.0.0.5 terminal=ssh res=success'`}},
	{name: "dnsmasq zero-padded day", in: `<29>Jan 05 11:59:01 ap1 dnsmasq-dhcp[777]: DHCPACK(br-lan) 10.0.0.50 00:11:22:33:44:55 phone`,
		want: want{ok: true, time: "2024-01-05T11:59:01Z", fac: 3, sev: 5, host: "ap1", app: "dnsmasq-dhcp", pid: "777",
			msg: "DHCPACK(br-lan) 10.0.0.50 00:11:22:33:44:55 phone"}},
	{name: "haproxy", in: `<134>Jan 15 11:59:01 lb1 haproxy[4242]: 10.0.0.5:51234 [15/Jan/2024:11:59:01.123] fe_https~ be_app/app1 0/0/1/12/13 200 1234 - - ---- 10/10/1/1/0 0/0 "GET /health HTTP/1.1"`,
		want: want{ok: true, time: "2024-01-15T11:59:01Z", fac: 16, sev: 6, host: "lb1", app: "haproxy", pid: "4242",
			msg: `10.0.0.5:51234 [15/Jan/2024:11:59:01.123] fe_https~ be_app/app1 0/0/1/12/13 200 1234 - - ---- 10/10/1/1/0 0/0 "GET /health HTTP/1.1"`}},
	{name: "nginx", in: `<190>Jan 15 11:59:01 web1 nginx: 10.0.0.5 - - [15/Jan/2024:11:59:01 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/8.5.0"`,
		want: want{ok: true, time: "2024-01-15T11:59:01Z", fac: 23, sev: 6, host: "web1", app: "nginx",
			msg: `10.0.0.5 - - [15/Jan/2024:11:59:01 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/8.5.0"`}},
	{name: "hostapd", in: `<14>Jan 15 11:59:01 UAP-AC-Pro hostapd: ath0: STA 00:11:22:33:44:55 IEEE 802.11: associated`,
		want: want{ok: true, time: "2024-01-15T11:59:01Z", fac: 1, sev: 6, host: "UAP-AC-Pro", app: "hostapd",
			msg: "ath0: STA 00:11:22:33:44:55 IEEE 802.11: associated"}},
	{name: "mikrotik topics", in: `<30>Jan 15 11:59:01 MikroTik system,info,account user admin logged in from 10.0.0.5 via ssh`,
		want: want{ok: true, time: "2024-01-15T11:59:01Z", fac: 3, sev: 6, host: "MikroTik",
			msg: "system,info,account user admin logged in from 10.0.0.5 via ssh"}},
	{name: "windows nxlog tabs", in: "<14>Jan 15 11:59:01 WIN-DC01 MSWinEventLog\t1\tSecurity\t123\tMon Jan 15 11:59:01 2024\t4624\tMicrosoft-Windows-Security-Auditing\tN/A\tSuccess Audit\tAn account was successfully logged on.",
		want: want{ok: true, time: "2024-01-15T11:59:01Z", fac: 1, sev: 6, host: "WIN-DC01",
			msg: "MSWinEventLog\t1\tSecurity\t123\tMon Jan 15 11:59:01 2024\t4624\tMicrosoft-Windows-Security-Auditing\tN/A\tSuccess Audit\tAn account was successfully logged on."}},
	{name: "no PRI", in: `Jan 15 11:59:01 web1 sshd[2271]: Connection closed by 10.0.0.5 port 51000 [preauth]`,
		want: want{ok: true, time: "2024-01-15T11:59:01Z", fac: 1, sev: 5, host: "web1", app: "sshd", pid: "2271",
			msg: "Connection closed by 10.0.0.5 port 51000 [preauth]"}},
	{name: "no PRI no timestamp", in: `sshd[2271]: Connection closed by 10.0.0.5`,
		want: want{ok: true, time: "recv", fac: 1, sev: 5, app: "sshd", pid: "2271", msg: "Connection closed by 10.0.0.5"}},
	{name: "PRI only text", in: `<13>hello world`,
		want: want{ok: true, time: "recv", fac: 1, sev: 5, msg: "hello world"}},
	{name: "header only", in: `<13>Jan 15 11:59:01 web1`,
		want: want{ok: true, time: "2024-01-15T11:59:01Z", fac: 1, sev: 5, host: "web1"}},
	{name: "trailing CRLF", in: "<13>Jan 15 11:59:01 web1 app: line\r\n",
		want: want{ok: true, time: "2024-01-15T11:59:01Z", fac: 1, sev: 5, host: "web1", app: "app", msg: "line"}},

	// util-linux logger, captured.
	{name: "logger rfc3164", recv: "2026-11-26T03:11:51Z", in: `<13>Nov 26 03:11:50 vm myapp: hello 3164`,
		want: want{ok: true, time: "2026-11-26T03:11:50Z", fac: 1, sev: 5, host: "vm", app: "myapp", msg: "hello 3164"}},
	{name: "logger rfc3164 -i", recv: "2026-11-26T03:11:51Z", in: `<38>Nov 26 03:11:50 vm sshd[15555]: Accepted publickey for alice`,
		want: want{ok: true, time: "2026-11-26T03:11:50Z", fac: 4, sev: 6, host: "vm", app: "sshd", pid: "15555", msg: "Accepted publickey for alice"}},
	{name: "logger rfc5424", recv: "2026-11-26T03:11:51Z", in: `<13>1 2026-11-26T03:11:50.954549+00:00 vm myapp - - [timeQuality tzKnown="1" isSynced="0"] hello 5424`,
		want: want{ok: true, time: "2026-11-26T03:11:50.954549Z", fac: 1, sev: 5, ver: 1, host: "vm", app: "myapp",
			sd: `[timeQuality tzKnown="1" isSynced="0"]`, msg: "hello 5424"}},
	{name: "logger rfc5424 sd msgid", recv: "2026-11-26T03:11:51Z", in: `<131>1 2026-11-26T03:11:50.958752+00:00 vm app 15560 ID47 [timeQuality tzKnown="1" isSynced="0"][zoo@123 tiger="hungry"] with sd`,
		want: want{ok: true, time: "2026-11-26T03:11:50.958752Z", fac: 16, sev: 3, ver: 1, host: "vm", app: "app", pid: "15560", msgid: "ID47",
			sd: `[timeQuality tzKnown="1" isSynced="0"][zoo@123 tiger="hungry"]`, msg: "with sd"}},
	{name: "logger rfc5424 notime", recv: "2026-11-26T03:11:51Z", in: `<13>1 - vm app - - - no time`,
		want: want{ok: true, time: "recv", fac: 1, sev: 5, ver: 1, host: "vm", app: "app", msg: "no time"}},
	{name: "rsyslog forward format", in: `<86>2024-01-15T11:59:01.123456+01:00 web1 sudo: pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)`,
		want: want{ok: true, time: "2024-01-15T10:59:01.123456Z", fac: 10, sev: 6, host: "web1", app: "sudo",
			msg: "pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)"}},

	// RFC 5424 section 6.5 and RFC 3164 section 5.4 examples.
	{name: "rfc5424 example 1 BOM", in: "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xef\xbb\xbf'su root' failed for lonvick on /dev/pts/8",
		want: want{ok: true, time: "2003-10-11T22:14:15.003Z", fac: 4, sev: 2, ver: 1, host: "mymachine.example.com", app: "su", msgid: "ID47",
			msg: "'su root' failed for lonvick on /dev/pts/8"}},
	{name: "rfc5424 example 2", in: `<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.`,
		want: want{ok: true, time: "2003-08-24T12:14:15.000003Z", fac: 20, sev: 5, ver: 1, host: "192.0.2.1", app: "myproc", pid: "8710",
			msg: "%% It's time to make the do-nuts."}},
	{name: "rfc5424 example 3", in: `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] An application event log entry...`,
		want: want{ok: true, time: "2003-10-11T22:14:15.003Z", fac: 20, sev: 5, ver: 1, host: "mymachine.example.com", app: "evntslog", msgid: "ID47",
			sd: `[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]`, msg: "An application event log entry..."}},
	{name: "rfc5424 example 4 no MSG", in: `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]`,
		want: want{ok: true, time: "2003-10-11T22:14:15.003Z", fac: 20, sev: 5, ver: 1, host: "mymachine.example.com", app: "evntslog", msgid: "ID47",
			sd: `[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]`}},
	{name: "rfc5424 escapes", in: `<165>1 2024-01-15T11:59:01Z host app - - [ex@32473 path="C:\\Windows\\" quote="say \"hi\"" br="a\]b" raw="x]y"] msg`,
		want: want{ok: true, time: "2024-01-15T11:59:01Z", fac: 20, sev: 5, ver: 1, host: "host", app: "app",
			sd: `[ex@32473 path="C:\\Windows\\" quote="say \"hi\"" br="a\]b" raw="x]y"]`, msg: "msg"}},
	{name: "rfc5424 escapes strict", in: `<165>1 2024-01-15T11:59:01Z host app - - [ex@32473 path="C:\\Windows\\" quote="say \"hi\"" br="a\]b"][empty@32473] msg`,
		want: want{ok: true, time: "2024-01-15T11:59:01Z", fac: 20, sev: 5, ver: 1, host: "host", app: "app",
			sd: `[ex@32473 path="C:\\Windows\\" quote="say \"hi\"" br="a\]b"][empty@32473]`, msg: "msg"}},
	{name: "syslog-ng meta sequenceId", in: `<38>1 2024-01-15T11:59:01+00:00 web1 sshd 2271 - [meta sequenceId="42"] Accepted publickey for root from 10.0.0.5 port 51000 ssh2`,
		want: want{ok: true, time: "2024-01-15T11:59:01Z", fac: 4, sev: 6, ver: 1, host: "web1", app: "sshd", pid: "2271",
			sd: `[meta sequenceId="42"]`, msg: "Accepted publickey for root from 10.0.0.5 port 51000 ssh2"}},
	{name: "rsyslog protocol-23 format", in: `<30>1 2024-01-15T12:59:01.123456+01:00 web1 systemd 1 - - Started Session 42 of User alice.`,
		want: want{ok: true, time: "2024-01-15T11:59:01.123456Z", fac: 3, sev: 6, ver: 1, host: "web1", app: "systemd", pid: "1",
			msg: "Started Session 42 of User alice."}},
	{name: "nxlog windows 5424", in: `<14>1 2024-01-15T12:59:01.000000+01:00 WIN-DC01 Microsoft-Windows-Security-Auditing 640 - [NXLOG@14506 Keywords="-9214364837600034816" EventType="AUDIT_SUCCESS" EventID="4624" ProviderGuid="{54849625-5478-4994-A5BA-3E3B0328C30D}" Version="2" Task="12544" RecordNumber="123456" Channel="Security" Category="Logon"] An account was successfully logged on.`,
		want: want{ok: true, time: "2024-01-15T11:59:01Z", fac: 1, sev: 6, ver: 1, host: "WIN-DC01", app: "Microsoft-Windows-Security-Auditing", pid: "640",
			sd:  `[NXLOG@14506 Keywords="-9214364837600034816" EventType="AUDIT_SUCCESS" EventID="4624" ProviderGuid="{54849625-5478-4994-A5BA-3E3B0328C30D}" Version="2" Task="12544" RecordNumber="123456" Channel="Security" Category="Logon"]`,
			msg: "An account was successfully logged on."}},
	{name: "rfc5424 all nil", in: `<14>1 - - - - - -`,
		want: want{ok: true, time: "recv", fac: 1, sev: 6, ver: 1}},
	{name: "rfc5424 nanoseconds", in: `<14>1 2024-01-15T11:59:01.123456789Z host app - - - nanos`,
		want: want{ok: true, time: "2024-01-15T11:59:01.123456789Z", fac: 1, sev: 6, ver: 1, host: "host", app: "app", msg: "nanos"}},
	{name: "rfc5424 empty MSG after SP", in: `<14>1 2024-01-15T11:59:01Z host app - - [a b="c"] `,
		want: want{ok: true, time: "2024-01-15T11:59:01Z", fac: 1, sev: 6, ver: 1, host: "host", app: "app", sd: `[a b="c"]`}},
	{name: "rfc3164 example 1", recv: "2003-10-11T22:14:16Z", in: `<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8`,
		want: want{ok: true, time: "2003-10-11T22:14:15Z", fac: 4, sev: 2, host: "mymachine", app: "su", msg: "'su root' failed for lonvick on /dev/pts/8"}},
	{name: "rfc3164 example 2", recv: "2024-02-05T17:32:20Z", in: `<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!`,
		want: want{ok: true, time: "2024-02-05T17:32:18Z", fac: 1, sev: 5, host: "10.0.0.99", msg: "Use the BFG!"}},
	{name: "rfc3164 example 3 year after zone", in: `<165>Aug 24 05:34:00 CST 1987 mymachine myproc[10]: %% It's time to make the do-nuts.  %%  Ingredients: Mix=OK, Jelly=OK # Devices: Mixer=OK, Jelly_Injector=OK, Frier=OK # Transport: Conveyer1=OK, Conveyer2=OK # %%`,
		want: want{ok: true, time: "1987-08-24T05:34:00Z", fac: 20, sev: 5, host: "mymachine", app: "myproc", pid: "10",
			msg: "%% It's time to make the do-nuts.  %%  Ingredients: Mix=OK, Jelly=OK # Devices: Mixer=OK, Jelly_Injector=OK, Frier=OK # Transport: Conveyer1=OK, Conveyer2=OK # %%"}},

	// Cisco IOS, NX-OS, ASA.
	{name: "cisco ios unsynced clock", in: `<189>123: *Mar  1 18:48:50.483 UTC: %SYS-5-CONFIG_I: Configured from console by vty0 (10.0.0.1)`,
		want: want{ok: true, time: "recv", fac: 23, sev: 5, app: "SYS-5-CONFIG_I", msg: "Configured from console by vty0 (10.0.0.1)"}},
	{name: "cisco ios origin hostname", recv: "2024-03-02T00:00:00Z", in: `<189>52: router1: Mar  1 18:48:50.483 UTC: %SYS-5-CONFIG_I: Configured from console by console`,
		want: want{ok: true, time: "2024-03-01T18:48:50.483Z", fac: 23, sev: 5, host: "router1", app: "SYS-5-CONFIG_I", msg: "Configured from console by console"}},
	{name: "cisco ios CET zone map", src: "192.0.2.20", in: `<187>2934: Jan 15 12:59:01.123 CET: %LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to down`,
		want: want{ok: true, time: "2024-01-15T11:59:01.123Z", fac: 23, sev: 3, app: "LINK-3-UPDOWN", msg: "Interface GigabitEthernet0/1, changed state to down"}},
	{name: "cisco ios counter and sequence", in: `<189>237: 000485: *Jan 8 19:46:03.295: %SYS-5-CONFIG_I: Configured from console by admin on vty0 (192.0.2.50)`,
		want: want{ok: true, time: "recv", fac: 23, sev: 5, app: "SYS-5-CONFIG_I", msg: "Configured from console by admin on vty0 (192.0.2.50)"}},
	{name: "cisco ios counter off lost sync", in: `<189>: .Jan 15 11:59:01.456: %LINEPROTO-5-UPDOWN: Line protocol on Interface Vlan10, changed state to up`,
		want: want{ok: true, time: "2024-01-15T11:59:01.456Z", fac: 23, sev: 5, app: "LINEPROTO-5-UPDOWN", msg: "Line protocol on Interface Vlan10, changed state to up"}},
	{name: "cisco ios no timestamps", in: `<189>45: %SYS-5-RESTART: System restarted --`,
		want: want{ok: true, time: "recv", fac: 23, sev: 5, app: "SYS-5-RESTART", msg: "System restarted --"}},
	{name: "cisco nx-os", in: `<189>: 2024 Jan 15 11:59:01 UTC: %ETHPORT-5-IF_UP: Interface Ethernet1/1 is up in mode access`,
		want: want{ok: true, time: "2024-01-15T11:59:01Z", fac: 23, sev: 5, app: "ETHPORT-5-IF_UP", msg: "Interface Ethernet1/1 is up in mode access"}},
	{name: "cisco asa", in: `<166>Jan 15 2024 11:59:01: %ASA-6-302013: Built outbound TCP connection 123456 for outside:198.51.100.10/443 (198.51.100.10/443) to inside:10.1.1.20/51234 (203.0.113.5/51234)`,
		want: want{ok: true, time: "2024-01-15T11:59:01Z", fac: 20, sev: 6, app: "ASA-6-302013",
			msg: "Built outbound TCP connection 123456 for outside:198.51.100.10/443 (198.51.100.10/443) to inside:10.1.1.20/51234 (203.0.113.5/51234)"}},
	{name: "cisco asa device-id", in: `<166>Jan 15 2024 11:59:01 fw-asa-01 : %ASA-6-302014: Teardown TCP connection 123456 for outside:198.51.100.10/443 to inside:10.1.1.20/51234 duration 0:00:30 bytes 5120 TCP FINs`,
		want: want{ok: true, time: "2024-01-15T11:59:01Z", fac: 20, sev: 6, host: "fw-asa-01", app: "ASA-6-302014",
			msg: "Teardown TCP connection 123456 for outside:198.51.100.10/443 to inside:10.1.1.20/51234 duration 0:00:30 bytes 5120 TCP FINs"}},
	{name: "cisco asa no timestamp", in: `<164>%ASA-4-106023: Deny tcp src outside:203.0.113.9/4455 dst inside:10.1.1.5/22 by access-group "outside_access_in" [0x0, 0x0]`,
		want: want{ok: true, time: "recv", fac: 20, sev: 4, app: "ASA-4-106023",
			msg: `Deny tcp src outside:203.0.113.9/4455 dst inside:10.1.1.5/22 by access-group "outside_access_in" [0x0, 0x0]`}},

	// Juniper.
	{name: "junos mib2d", in: `<28>Jan 15 11:59:01 mx480-re0 mib2d[1820]: SNMP_TRAP_LINK_DOWN: ifIndex 602, ifAdminStatus up(1), ifOperStatus down(2), ifName ge-0/0/1`,
		want: want{ok: true, time: "2024-01-15T11:59:01Z", fac: 3, sev: 4, host: "mx480-re0", app: "mib2d", pid: "1820",
			msg: "SNMP_TRAP_LINK_DOWN: ifIndex 602, ifAdminStatus up(1), ifOperStatus down(2), ifName ge-0/0/1"}},
	{name: "junos srx rt_flow", in: `<14>Jan 15 11:59:01 srx1 RT_FLOW: RT_FLOW_SESSION_CREATE: session created 10.0.0.5/51234->93.184.216.34/443 0x0 junos-https 203.0.113.5/40000->93.184.216.34/443 0x0 source rule1 N/A N/A 6 allow-web trust untrust 12345 N/A(N/A) ge-0/0/1.0 UNKNOWN UNKNOWN UNKNOWN N/A N/A -1`,
		want: want{ok: true, time: "2024-01-15T11:59:01Z", fac: 1, sev: 6, host: "srx1", app: "RT_FLOW",
			msg: "RT_FLOW_SESSION_CREATE: session created 10.0.0.5/51234->93.184.216.34/443 0x0 junos-https 203.0.113.5/40000->93.184.216.34/443 0x0 source rule1 N/A N/A 6 allow-web trust untrust 12345 N/A(N/A) ge-0/0/1.0 UNKNOWN UNKNOWN UNKNOWN N/A N/A -1"}},
	{name: "junos structured mgd", in: `<165>1 2024-01-15T11:59:01.719Z mx480-re0 mgd 3046 UI_DBASE_LOGOUT_EVENT [junos@2636.1.1.1.2.18 username="regress"] User 'regress' exiting configuration mode`,
		want: want{ok: true, time: "2024-01-15T11:59:01.719Z", fac: 20, sev: 5, ver: 1, host: "mx480-re0", app: "mgd", pid: "3046", msgid: "UI_DBASE_LOGOUT_EVENT",
			sd: `[junos@2636.1.1.1.2.18 username="regress"]`, msg: "User 'regress' exiting configuration mode"}},
	{name: "junos structured srx", in: `<14>1 2024-01-15T12:59:01.123+01:00 srx1 RT_FLOW - RT_FLOW_SESSION_CLOSE [junos@2636.1.1.1.2.40 reason="TCP FIN" source-address="10.0.0.5" source-port="51234" destination-address="93.184.216.34" destination-port="443" service-name="junos-https" protocol-id="6" policy-name="allow-web"] session closed TCP FIN: 10.0.0.5/51234->93.184.216.34/443`,
		want: want{ok: true, time: "2024-01-15T11:59:01.123Z", fac: 1, sev: 6, ver: 1, host: "srx1", app: "RT_FLOW", msgid: "RT_FLOW_SESSION_CLOSE",
			sd:  `[junos@2636.1.1.1.2.40 reason="TCP FIN" source-address="10.0.0.5" source-port="51234" destination-address="93.184.216.34" destination-port="443" service-name="junos-https" protocol-id="6" policy-name="allow-web"]`,
			msg: "session closed TCP FIN: 10.0.0.5/51234->93.184.216.34/443"}},

	// FortiGate key=value.
	{name: "fortigate no header", in: `<189>date=2024-01-15 time=11:59:01 devname="FGT60E" devid="FGT60E4Q16000000" eventtime=1705319941123456789 tz="+0100" logid="0000000013" type="traffic" subtype="forward" level="notice" vd="root" srcip=10.0.0.5 srcport=51234 srcintf="internal" dstip=93.184.216.34 dstport=443 dstintf="wan1" proto=6 action="accept" policyid=1 service="HTTPS" sentbyte=1234 rcvdbyte=5678`,
		want: want{ok: true, time: "recv", fac: 23, sev: 5,
			msg: `date=2024-01-15 time=11:59:01 devname="FGT60E" devid="FGT60E4Q16000000" eventtime=1705319941123456789 tz="+0100" logid="0000000013" type="traffic" subtype="forward" level="notice" vd="root" srcip=10.0.0.5 srcport=51234 srcintf="internal" dstip=93.184.216.34 dstport=443 dstintf="wan1" proto=6 action="accept" policyid=1 service="HTTPS" sentbyte=1234 rcvdbyte=5678`}},
	{name: "fortigate with header", in: `<185>Jan 15 11:59:01 FGT60E date=2024-01-15 time=11:59:01 devname="FGT60E" logid="0100032001" type="event" subtype="system" level="information" logdesc="Admin login successful" user="admin" action="login" status="success"`,
		want: want{ok: true, time: "2024-01-15T11:59:01Z", fac: 23, sev: 1, host: "FGT60E",
			msg: `date=2024-01-15 time=11:59:01 devname="FGT60E" logid="0100032001" type="event" subtype="system" level="information" logdesc="Admin login successful" user="admin" action="login" status="success"`}},

	// pfSense filterlog, both formats.
	{name: "pfsense filterlog 3164", in: `<134>Jan 15 11:59:01 filterlog[12345]: 5,,,1000000103,igb0,match,block,in,4,0x0,,64,0,0,DF,6,tcp,60,198.51.100.7,10.0.0.1,51234,22,0,S,1234567890,,64240,,mss;sackOK;TS;nop;wscale`,
		want: want{ok: true, time: "2024-01-15T11:59:01Z", fac: 16, sev: 6, app: "filterlog", pid: "12345",
			msg: "5,,,1000000103,igb0,match,block,in,4,0x0,,64,0,0,DF,6,tcp,60,198.51.100.7,10.0.0.1,51234,22,0,S,1234567890,,64240,,mss;sackOK;TS;nop;wscale"}},
	{name: "pfsense filterlog 5424", in: `<134>1 2024-01-15T11:59:01.123456+00:00 pfsense.home.arpa filterlog 12345 - - 5,,,1000000103,igb0,match,block,in,4,0x0,,64,0,0,DF,6,tcp,60,198.51.100.7,10.0.0.1,51234,22,0,S,1234567890,,64240,,mss;sackOK;TS;nop;wscale`,
		want: want{ok: true, time: "2024-01-15T11:59:01.123456Z", fac: 16, sev: 6, ver: 1, host: "pfsense.home.arpa", app: "filterlog", pid: "12345",
			msg: "5,,,1000000103,igb0,match,block,in,4,0x0,,64,0,0,DF,6,tcp,60,198.51.100.7,10.0.0.1,51234,22,0,S,1234567890,,64240,,mss;sackOK;TS;nop;wscale"}},

	// Palo Alto, BSD and IETF formats.
	{name: "palo alto bsd", in: `<14>Jan 15 11:59:01 PA-VM 1,2024/01/15 11:59:01,012345678901,TRAFFIC,end,2561,2024/01/15 11:59:01,10.0.0.5,93.184.216.34,203.0.113.5,93.184.216.34,allow-web,,,ssl,vsys1,trust,untrust,ethernet1/2,ethernet1/1,Forward-Logs,2024/01/15 11:59:01,12345,1,51234,443,40000,443,0x400019,tcp,allow,5678,1234,4444,20,2024/01/15 11:58:30,30,any,0,123456789,0x0,10.0.0.0-10.255.255.255,United States,0,10,10,tcp-fin`,
		want: want{ok: true, time: "2024-01-15T11:59:01Z", fac: 1, sev: 6, host: "PA-VM",
			msg: "1,2024/01/15 11:59:01,012345678901,TRAFFIC,end,2561,2024/01/15 11:59:01,10.0.0.5,93.184.216.34,203.0.113.5,93.184.216.34,allow-web,,,ssl,vsys1,trust,untrust,ethernet1/2,ethernet1/1,Forward-Logs,2024/01/15 11:59:01,12345,1,51234,443,40000,443,0x400019,tcp,allow,5678,1234,4444,20,2024/01/15 11:58:30,30,any,0,123456789,0x0,10.0.0.0-10.255.255.255,United States,0,10,10,tcp-fin"}},
	{name: "palo alto ietf", in: `<14>1 2024-01-15T12:59:01+01:00 PA-VM - - - - 1,2024/01/15 12:59:01,012345678901,THREAT,url,2561,2024/01/15 12:59:01,10.0.0.5,93.184.216.34,203.0.113.5,93.184.216.34,allow-web,,,ssl,vsys1,trust,untrust,ethernet1/2,ethernet1/1,Forward-Logs,2024/01/15 12:59:01,12345,1,51234,443,40000,443,0x408000,tcp,alert,"example.com/",(9999),business-and-economy,informational,client-to-server`,
		want: want{ok: true, time: "2024-01-15T11:59:01Z", fac: 1, sev: 6, ver: 1, host: "PA-VM",
			msg: `1,2024/01/15 12:59:01,012345678901,THREAT,url,2561,2024/01/15 12:59:01,10.0.0.5,93.184.216.34,203.0.113.5,93.184.216.34,allow-web,,,ssl,vsys1,trust,untrust,ethernet1/2,ethernet1/1,Forward-Logs,2024/01/15 12:59:01,12345,1,51234,443,40000,443,0x408000,tcp,alert,"example.com/",(9999),business-and-economy,informational,client-to-server`}},

	// VMware ESXi: an RFC 3339 timestamp in RFC 3164 position.
	{name: "esxi hostd", in: `<166>2024-01-15T11:59:01.123Z esxi01.example.com Hostd: info hostd[2099583] [Originator@6876 sub=Vimsvc.TaskManager opID=abc-01 user=vpxuser] Task Completed : haTask--vim.SearchIndex.findByInventoryPath-123 Status success`,
		want: want{ok: true, time: "2024-01-15T11:59:01.123Z", fac: 20, sev: 6, host: "esxi01.example.com", app: "Hostd",
			msg: "info hostd[2099583] [Originator@6876 sub=Vimsvc.TaskManager opID=abc-01 user=vpxuser] Task Completed : haTask--vim.SearchIndex.findByInventoryPath-123 Status success"}},

	// Year choice for year-less timestamps.
	{name: "rollover dec received jan", recv: "2024-01-01T00:00:05Z", in: `<13>Dec 31 23:59:59 host app: last of the year`,
		want: want{ok: true, time: "2023-12-31T23:59:59Z", fac: 1, sev: 5, host: "host", app: "app", msg: "last of the year"}},
	{name: "rollover jan received dec", recv: "2023-12-31T23:59:58Z", in: `<13>Jan  1 00:00:01 host app: clock ahead`,
		want: want{ok: true, time: "2024-01-01T00:00:01Z", fac: 1, sev: 5, host: "host", app: "app", msg: "clock ahead"}},
	{name: "rollover in sender zone", src: "192.0.2.21", recv: "2024-01-01T04:35:00Z", in: `<13>Dec 31 23:30:00 host app: new york`,
		want: want{ok: true, time: "2024-01-01T04:30:00Z", fac: 1, sev: 5, host: "host", app: "app", msg: "new york"}},
	{name: "feb 29 leap year", recv: "2024-03-01T00:00:00Z", in: `<13>Feb 29 12:00:00 host app: leap`,
		want: want{ok: true, time: "2024-02-29T12:00:00Z", fac: 1, sev: 5, host: "host", app: "app", msg: "leap"}},
	{name: "feb 29 after leap year", recv: "2025-01-10T00:00:00Z", in: `<13>Feb 29 12:00:00 host app: leap`,
		want: want{ok: true, time: "2024-02-29T12:00:00Z", fac: 1, sev: 5, host: "host", app: "app", msg: "leap"}},

	// Zones: the per-sender zone applies to stamps without an offset only.
	{name: "zone map summer", src: "192.0.2.20", recv: "2024-07-15T12:00:00Z", in: `<13>Jul 15 13:59:01 host app: berlin summer`,
		want: want{ok: true, time: "2024-07-15T11:59:01Z", fac: 1, sev: 5, host: "host", app: "app", msg: "berlin summer"}},
	{name: "zone map ignored with offset", src: "192.0.2.20", in: `<13>2024-01-15T11:59:01Z host app: has offset`,
		want: want{ok: true, time: "2024-01-15T11:59:01Z", fac: 1, sev: 5, host: "host", app: "app", msg: "has offset"}},
	{name: "zone map ignored with UTC", src: "192.0.2.20", in: `<13>Jan 15 11:59:01 UTC host app: says UTC`,
		want: want{ok: true, time: "2024-01-15T11:59:01Z", fac: 1, sev: 5, host: "host", app: "app", msg: "says UTC"}},
	{name: "zone map ipv4-mapped sender", src: "::ffff:192.0.2.20", in: `<13>Jan 15 12:59:01 host app: mapped`,
		want: want{ok: true, time: "2024-01-15T11:59:01Z", fac: 1, sev: 5, host: "host", app: "app", msg: "mapped"}},
	{name: "zone map 5424 offset wins", src: "192.0.2.20", in: `<13>1 2024-01-15T11:59:01Z host app - - - offset`,
		want: want{ok: true, time: "2024-01-15T11:59:01Z", fac: 1, sev: 5, ver: 1, host: "host", app: "app", msg: "offset"}},

	// Parse errors: kept whole, flagged.
	{name: "empty", in: ``, want: want{ok: false, time: "recv"}},
	{name: "PRI too big", in: `<192>Jan 15 11:59:01 host app: x`, want: want{ok: false, time: "recv", msg: `<192>Jan 15 11:59:01 host app: x`}},
	{name: "PRI unterminated", in: `<13 hello`, want: want{ok: false, time: "recv", msg: `<13 hello`}},
	{name: "PRI empty", in: `<>hello`, want: want{ok: false, time: "recv", msg: `<>hello`}},
	{name: "5424 bad month", in: `<13>1 2024-13-01T00:00:00Z host app - - - x`, want: want{ok: false, time: "recv", fac: 1, sev: 5, msg: `<13>1 2024-13-01T00:00:00Z host app - - - x`}},
	{name: "5424 no offset", in: `<13>1 2024-01-15T11:59:01 host app - - - x`, want: want{ok: false, time: "recv", fac: 1, sev: 5, msg: `<13>1 2024-01-15T11:59:01 host app - - - x`}},
	{name: "5424 app-name too long", in: `<13>1 2024-01-15T11:59:01Z host a123456789012345678901234567890123456789012345678 - - - x`,
		want: want{ok: false, time: "recv", fac: 1, sev: 5, msg: `<13>1 2024-01-15T11:59:01Z host a123456789012345678901234567890123456789012345678 - - - x`}},
	{name: "5424 msgid too long", in: `<13>1 2024-01-15T11:59:01Z host app - M12345678901234567890123456789012 - x`,
		want: want{ok: false, time: "recv", fac: 1, sev: 5, msg: `<13>1 2024-01-15T11:59:01Z host app - M12345678901234567890123456789012 - x`}},
	{name: "5424 unterminated SD", in: `<13>1 2024-01-15T11:59:01Z host app - - [id a="b"`, want: want{ok: false, time: "recv", fac: 1, sev: 5, msg: `<13>1 2024-01-15T11:59:01Z host app - - [id a="b"`}},
	{name: "5424 SD without space before MSG", in: `<13>1 2024-01-15T11:59:01Z host app - - [id a="b"]x`, want: want{ok: false, time: "recv", fac: 1, sev: 5, msg: `<13>1 2024-01-15T11:59:01Z host app - - [id a="b"]x`}},
	{name: "5424 header cut", in: `<13>1 2024-01-15T11:59:01Z host app`, want: want{ok: false, time: "recv", fac: 1, sev: 5, msg: `<13>1 2024-01-15T11:59:01Z host app`}},
	{name: "5424 control char in hostname", in: "<13>1 2024-01-15T11:59:01Z ho\x01st app - - - x", want: want{ok: false, time: "recv", fac: 1, sev: 5, msg: "<13>1 2024-01-15T11:59:01Z ho\x01st app - - - x"}},
}
