package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/trawlsec/trawl/consumer"
)

func consumeCmd() *cobra.Command {
	var brokers, topics, group, fromSpool string
	var maxN int
	var commitEvery time.Duration
	cmd := &cobra.Command{
		Use:   "consume (--kafka HOST:PORT[,...] | --from-spool DIR) [--topic T[,T]] [--group G] [--max N]",
		Short: "Print collected events from Kafka or a spool as ECS JSON lines, as a consumer group",
		Long: `Print events as one ECS JSON object per line, read as a member of consumer
group --group, and commit what was printed: every --commit-every, and on exit
after --max messages or on SIGTERM/SIGINT. A later run with the same group
resumes after the last commit (at-least-once: what was printed but not yet
committed when the process died is printed again).

With --kafka it reads the topics trawl's Kafka sink writes (--topic, default
every trawl.<kind> topic; JSON, trawl-binary and goflow2 FlowMessage records
all come out as ECS JSON). Processes sharing a group share the partitions
(round-robin); each group reads everything (fan-out).

With --from-spool DIR (the node's data directory) it reads the local spool with
the cursor consumer-<group>. The spool belongs to one process, so the node must
be stopped; to read a running node, use its Kafka topics.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if (brokers == "") == (fromSpool == "") {
				return errors.New("consume needs exactly one of --kafka and --from-spool")
			}
			if commitEvery <= 0 {
				return fmt.Errorf("--commit-every %v: must be positive", commitEvery)
			}
			logger := log.New(cmd.ErrOrStderr(), "trawl: ", log.LstdFlags|log.Lmicroseconds)
			var src consumer.Source
			var err error
			if fromSpool != "" {
				if cmd.Flags().Changed("topic") {
					return errors.New("--topic applies to --kafka only: a spool holds every kind")
				}
				src, err = consumer.OpenSpoolSource(fromSpool, consumer.SpoolOptions{Group: group, Logf: logger.Printf})
			} else {
				src, err = consumer.NewKafkaSource(consumer.KafkaOptions{
					Brokers: splitList(brokers),
					Topics:  splitList(topics),
					Group:   group,
					Logf:    logger.Printf,
				})
			}
			if err != nil {
				return err
			}
			defer src.Close()
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			n, err := consumeLoop(ctx, src, cmd.OutOrStdout(), maxN, commitEvery)
			st := src.Stats()
			logger.Printf("consumed %d messages as group %s (%d skipped, %d commits)", n, group, st.Skipped, st.Commits)
			return err
		},
	}
	cmd.Flags().StringVar(&brokers, "kafka", "", "Kafka brokers HOST:PORT[,...]")
	cmd.Flags().StringVar(&topics, "topic", "", "topics T[,T] (default every trawl.<kind> topic)")
	cmd.Flags().StringVar(&group, "group", "trawl-consume", "consumer group: Kafka group id, or the spool cursor consumer-<group>")
	cmd.Flags().StringVar(&fromSpool, "from-spool", "", "read the spool of the (stopped) node with data directory DIR instead of Kafka")
	cmd.Flags().IntVar(&maxN, "max", 0, "exit after printing N messages (0: run until SIGTERM/SIGINT)")
	cmd.Flags().DurationVar(&commitEvery, "commit-every", time.Second, "how often to commit what was printed")
	return cmd
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// consumeLoop prints messages from src to out until it printed maxN (if
// maxN > 0) or ctx ends, committing at most commitEvery after printing and
// once more at the end. It commits only what reached out: a write error
// ends the loop without a commit. It returns the number printed.
func consumeLoop(ctx context.Context, src consumer.Source, out io.Writer, maxN int, commitEvery time.Duration) (int, error) {
	bw := bufio.NewWriterSize(out, 256<<10)
	n := 0
	dirty := false // printed but not committed
	lastCommit := time.Now()
	commit := func(ctx context.Context) error {
		if !dirty {
			return nil
		}
		if err := src.Commit(ctx); err != nil {
			return err
		}
		dirty = false
		lastCommit = time.Now()
		return nil
	}
	var loopErr error
	for maxN <= 0 || n < maxN {
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if dirty {
			// Wake up to commit even when nothing more arrives.
			pctx, cancel = context.WithDeadline(ctx, lastCommit.Add(commitEvery))
		}
		want := 0
		if maxN > 0 {
			want = maxN - n
		}
		msgs, err := src.Poll(pctx, want)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				break // SIGTERM or SIGINT
			}
			if pctx.Err() != nil {
				if loopErr = commit(ctx); loopErr != nil {
					if ctx.Err() != nil {
						loopErr = nil // a signal cut the commit: the last one below retries it
					}
					break
				}
				continue
			}
			loopErr = err
			break
		}
		for i := range msgs {
			bw.Write(msgs[i].JSON)
			bw.WriteByte('\n')
		}
		// Flushed per batch: the output is read live (| jq), and a commit
		// must cover only what was written.
		if err := bw.Flush(); err != nil {
			return n, fmt.Errorf("write output: %w", err)
		}
		n += len(msgs)
		dirty = true
		if time.Since(lastCommit) >= commitEvery {
			if loopErr = commit(ctx); loopErr != nil {
				if ctx.Err() != nil {
					loopErr = nil // a signal cut the commit: the last one below retries it
				}
				break
			}
		}
	}
	// The signal context may be done: the last commit gets its own.
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := commit(cctx); err != nil && loopErr == nil {
		loopErr = err
	}
	return n, loopErr
}
