package kafka_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/sinks/disk"
	"github.com/trawlsec/trawl/sinks/kafka"
	"github.com/trawlsec/trawl/sinks/kafka/kafkatest"
)

// testPKI writes a CA and a server certificate for 127.0.0.1 as PEM files
// the broker reads (keystore: chain and PKCS#8 key in one file) and
// returns their paths and the CA pool for the client.
func testPKI(t *testing.T) (keystore, truststore string, pool *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "trawl test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := x509.MarshalPKCS8PrivateKey(key)
	ks := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})...)
	keystore, truststore = filepath.Join(dir, "server.pem"), filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(keystore, ks, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(truststore, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	return keystore, truststore, pool
}

// TestSinkTLSAndSASL runs the sink against a broker that only speaks
// SASL over TLS, once per mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512),
// and checks that a wrong password delivers nothing and skips nothing: the
// events stay in the spool and a sink with the right password delivers
// them afterwards.
func TestSinkTLSAndSASL(t *testing.T) {
	ks, ts, pool := testPKI(t)
	cl := kafkatest.StartConfig(t, kafkatest.Config{
		Props: map[string]string{
			// The client listener (named PLAINTEXT by the script) speaks
			// SASL_SSL; the broker uses it for itself too.
			"listener.security.protocol.map":                         "PLAINTEXT:SASL_SSL,CONTROLLER:PLAINTEXT",
			"sasl.enabled.mechanisms":                                "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
			"sasl.mechanism.inter.broker.protocol":                   "PLAIN",
			"listener.name.plaintext.plain.sasl.jaas.config":         `org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";`,
			"listener.name.plaintext.scram-sha-256.sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required;",
			"listener.name.plaintext.scram-sha-512.sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required;",
			"ssl.keystore.type":                                      "PEM",
			"ssl.keystore.location":                                  ks,
			"ssl.truststore.type":                                    "PEM",
			"ssl.truststore.location":                                ts,
		},
	})
	tlsCfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	// SCRAM users are created through the admin API, as an operator would.
	admin, err := kgo.NewClient(kgo.SeedBrokers(cl.Seeds()...), kgo.DialTLSConfig(tlsCfg),
		kgo.SASL(plain.Auth{User: "admin", Pass: "admin-secret"}.AsMechanism()))
	if err != nil {
		t.Fatal(err)
	}
	actx, cancel := context.WithTimeout(context.Background(), time.Minute)
	res, err := kadm.NewClient(admin).AlterUserSCRAMs(actx, nil, []kadm.UpsertSCRAM{
		{User: "bob", Mechanism: kadm.ScramSha256, Iterations: 8192, Password: "bob-secret"},
		{User: "carol", Mechanism: kadm.ScramSha512, Iterations: 8192, Password: "carol-secret"},
	})
	cancel()
	admin.Close()
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatalf("cannot create SCRAM users: %v", err)
	}
	exp := netip.MustParseAddr("198.51.100.9")
	for _, m := range []struct {
		name      string
		good, bad sasl.Mechanism
	}{
		{"PLAIN", plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism(), plain.Auth{User: "alice", Pass: "wrong"}.AsMechanism()},
		{"SCRAM-SHA-256", scram.Auth{User: "bob", Pass: "bob-secret"}.AsSha256Mechanism(), scram.Auth{User: "bob", Pass: "wrong"}.AsSha256Mechanism()},
		{"SCRAM-SHA-512", scram.Auth{User: "carol", Pass: "carol-secret"}.AsSha512Mechanism(), scram.Auth{User: "carol", Pass: "wrong"}.AsSha512Mechanism()},
	} {
		t.Run(m.name, func(t *testing.T) {
			sp, err := disk.Open(disk.Options{Dir: t.TempDir(), Fsync: disk.FsyncNever})
			if err != nil {
				t.Fatal(err)
			}
			defer sp.Close()
			fillSpool(t, sp, event.KindFlow, 3, 100, func(i int) event.Event { return flowEvent(i, exp) })
			topic := "auth-" + m.name
			opts := kafka.Options{Name: "k", Seeds: cl.Seeds(), Spool: sp, TLS: tlsCfg, Topics: map[event.Kind]string{event.KindFlow: topic}}

			// Wrong password: nothing delivered, nothing skipped.
			set := metrics.NewSet()
			d, r := set.NewCounter("d"), set.NewCounter("r")
			bad := opts
			bad.SASL, bad.Registry = m.bad, set
			s, err := kafka.New(bad, d, r, t.Logf)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
			s.Run(ctx)
			cancel()
			if d.Get() != 0 || r.Get() != 0 {
				t.Fatalf("with a wrong password: %d delivered, %d rejected; want 0, 0", d.Get(), r.Get())
			}

			good := opts
			good.SASL, good.StopTimeout = m.good, 2*time.Minute
			if d, r := runSink(t, good); d != 300 || r != 0 {
				t.Fatalf("delivered %d, rejected %d; want 300, 0", d, r)
			}
		})
	}
}
