// Command trawl is the trawl node and its operator tools: run the node,
// validate a configuration, read the loss ledger, and inspect the spool.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/trawlsec/trawl/collector"
	"github.com/trawlsec/trawl/config"
	"github.com/trawlsec/trawl/ledger"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() {
	if err := rootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "trawl:", err)
		os.Exit(1)
	}
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "trawl",
		Short:         "trawl collects security logs, flows and kernel events without losing them",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(runCmd(), validateCmd(), versionCmd(), ledgerCmd(), spoolCmd(), consumeCmd())
	return root
}

// loadConfig reads -c FILE or the embedded default.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Default()
	}
	return config.Load(path)
}

func runCmd() *cobra.Command {
	var cfgPath, dataDir, httpAddr, kafka string
	cmd := &cobra.Command{
		Use:   "run [-c FILE]",
		Short: "Run the node (the embedded default configuration without -c)",
		Long: `Run the node until SIGTERM or SIGINT. Without -c, the embedded default runs:
the app input (JSON lines on TCP 5170), NetFlow v5/v9/IPFIX on UDP 2055 and
4739, sFlow v5 on UDP 6343, the disk spool under ./data, and the HTTP listener on 127.0.0.1:9470. On SIGTERM the inputs stop and drain what
clients already sent, everything accepted is written and fsynced, and trawl
exits 0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cfgPath)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("kafka") {
				if err := cfg.SetKafka(kafka); err != nil {
					return fmt.Errorf("--kafka %s: %w", kafka, err)
				}
			}
			if cmd.Flags().Changed("data") {
				cfg.Node.DataDir = dataDir
			}
			if cmd.Flags().Changed("http") {
				cfg.HTTP.Listen = httpAddr
			}
			logger := log.New(os.Stderr, "trawl: ", log.LstdFlags|log.Lmicroseconds)
			node, err := collector.New(cfg, logger)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return node.Run(ctx)
		},
	}
	cmd.Flags().StringVarP(&cfgPath, "config", "c", "", "configuration file (YAML)")
	cmd.Flags().StringVar(&dataDir, "data", "", "data directory (overrides node.data_dir)")
	cmd.Flags().StringVar(&httpAddr, "http", "", `HTTP listen address (overrides http.listen; "" disables)`)
	cmd.Flags().StringVar(&kafka, "kafka", "", "Kafka brokers HOST:PORT[,...]: enables the kafka sink (topics trawl.<kind>, ECS JSON); the file's kafka sink keeps its other settings")
	return cmd
}

func validateCmd() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "validate -c FILE",
		Short: "Check a configuration file; errors name the key and the line",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cfgPath == "" {
				return errors.New("validate needs -c FILE")
			}
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (%d inputs, %d sinks)\n", cfgPath, len(cfg.Inputs), len(cfg.Sinks))
			return nil
		},
	}
	cmd.Flags().StringVarP(&cfgPath, "config", "c", "", "configuration file (YAML)")
	return cmd
}

// Version returns the build's version: the -X flag, else the module
// version or VCS revision Go recorded.
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return "dev-" + s.Value
			}
		}
	}
	return "dev"
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "trawl", Version())
		},
	}
}

func ledgerCmd() *cobra.Command {
	var addr string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ledger",
		Short: "Print the running node's loss ledger",
		Long: `Print the loss ledger of a running node, read from its HTTP API: per input,
received = delivered + dropped + pending, and what was lost upstream.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			client := &http.Client{Timeout: 10 * time.Second}
			resp, err := client.Get("http://" + addr + "/api/v1/ledger")
			if err != nil {
				return fmt.Errorf("cannot reach the node at %s: %w", addr, err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				return fmt.Errorf("read ledger: %w", err)
			}
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("node at %s answered %s", addr, resp.Status)
			}
			if asJSON {
				_, err := cmd.OutOrStdout().Write(body)
				return err
			}
			var s ledger.Snapshot
			if err := json.Unmarshal(body, &s); err != nil {
				return fmt.Errorf("cannot decode ledger: %w", err)
			}
			return s.WriteTable(cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&addr, "http", "127.0.0.1:9470", "the node's HTTP address")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the JSON as served")
	return cmd
}
