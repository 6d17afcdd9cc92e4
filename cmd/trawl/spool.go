package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/trawlsec/trawl/consumer"
)

func spoolCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "spool",
		Short: "Inspect a disk spool (works with the node running or stopped)",
	}
	var input string
	cat := &cobra.Command{
		Use:   "cat DIR",
		Short: "Print every event in the spool as ECS JSON lines",
		Long:  "Print every event in the spool as one ECS JSON object per line, in spool order.\nDIR is the data directory or the spool directory inside it.",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return consumer.Cat(args[0], cmd.OutOrStdout(), cmd.ErrOrStderr(), consumer.CatOptions{Input: input})
		},
	}
	cat.Flags().StringVar(&input, "input", "", "only events of this input")

	var asJSON bool
	stat := &cobra.Command{
		Use:   "stat DIR",
		Short: "Summarise the spool: segments, frames and events per input, cursors",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := consumer.Stat(args[0])
			if st == nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if e := enc.Encode(st); e != nil {
					return e
				}
				return err
			}
			fmt.Fprintf(out, "spool %s: %d segments, %d bytes, %d frames, end position %d\n", st.Dir, len(st.Segments), st.Bytes, st.Frames, st.End)
			if st.Bad > 0 {
				fmt.Fprintf(out, "%d records are not valid frames\n", st.Bad)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "INPUT\tKIND\tFRAMES\tEVENTS\tRAW BYTES\tSTORED\tSEQ\tFIRST FRAME\tLAST FRAME")
			for _, is := range st.Inputs {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d-%d\t%s\t%s\n", is.Name, is.Kind, is.Frames, is.Events, is.RawBytes, is.Stored,
					is.FirstSeq, is.LastSeq, is.First.Format("2006-01-02T15:04:05Z"), is.Last.Format("2006-01-02T15:04:05Z"))
			}
			tw.Flush()
			if len(st.Cursors) > 0 {
				names := make([]string, 0, len(st.Cursors))
				for n := range st.Cursors {
					names = append(names, n)
				}
				sort.Strings(names)
				fmt.Fprintln(out, "\ncursors (bytes behind the end):")
				for _, n := range names {
					fmt.Fprintf(out, "  %s at %d (%d behind)\n", n, st.Cursors[n], st.End-st.Cursors[n])
				}
			}
			return err
		},
	}
	stat.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(cat, stat)
	return cmd
}
