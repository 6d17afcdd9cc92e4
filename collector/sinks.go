package collector

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/trawlsec/trawl/config"
	"github.com/trawlsec/trawl/event"
	"github.com/trawlsec/trawl/sinks/file"
	"github.com/trawlsec/trawl/sinks/kafka"
)

// sink is what the node needs of an output that follows the spool.
type sink interface {
	Name() string
	// Run delivers until ctx ends or, after StopAtEnd, it has caught up.
	Run(ctx context.Context) error
	StopAtEnd()
}

func (n *Node) newSink(sc config.Sink) (sink, error) {
	switch sc.Type {
	case config.SinkFile:
		return file.New(file.Options{Name: sc.Name, Path: sc.Path, Spool: n.spool}, n.ledger.Sink(sc.Name), n.logf)
	case config.SinkKafka:
		opts := kafka.Options{
			Name:               sc.Name,
			Seeds:              sc.Brokers,
			Compression:        sc.Compression,
			Linger:             sc.Linger.D(),
			BatchMaxBytes:      int32(sc.BatchMaxBytes),
			MaxBufferedRecords: sc.MaxBufferedRecords,
			ClientID:           sc.ClientID,
			StopTimeout:        n.cfg.Node.ShutdownGrace.D(),
			Spool:              n.spool,
			Registry:           n.set,
		}
		var err error
		if opts.Encoding, err = kafka.ParseEncoding(sc.Encoding); err != nil {
			return nil, err
		}
		if len(sc.Topics) > 0 {
			opts.Topics = make(map[event.Kind]string, len(sc.Topics))
			for k, t := range sc.Topics {
				kind, ok := event.ParseKind(k)
				if !ok {
					return nil, fmt.Errorf("unknown event kind %q in topics", k)
				}
				opts.Topics[kind] = t
			}
		}
		if sc.TLS != nil {
			if opts.TLS, err = clientTLS(sc.TLS); err != nil {
				return nil, err
			}
		}
		if sc.SASL != nil {
			opts.SASL = saslMechanism(sc.SASL)
		}
		rejected := n.set.GetOrCreateCounter(fmt.Sprintf(`trawl_sink_rejected_events_total{sink=%q}`, sc.Name))
		return kafka.New(opts, n.ledger.Sink(sc.Name), rejected, n.logf)
	}
	return nil, fmt.Errorf("unknown sink type %q", sc.Type)
}

// clientTLS builds the TLS configuration a sink dials its servers with.
func clientTLS(c *config.SinkTLS) (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify, // opt-in, documented as for tests only
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read tls.ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file %q holds no PEM certificate", c.CAFile)
		}
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cannot load the client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// saslMechanism maps a validated SASL configuration to franz-go's mechanism.
func saslMechanism(c *config.SinkSASL) sasl.Mechanism {
	switch c.Mechanism {
	case "SCRAM-SHA-256":
		return scram.Auth{User: c.Username, Pass: c.Password}.AsSha256Mechanism()
	case "SCRAM-SHA-512":
		return scram.Auth{User: c.Username, Pass: c.Password}.AsSha512Mechanism()
	}
	return plain.Auth{User: c.Username, Pass: c.Password}.AsMechanism()
}
