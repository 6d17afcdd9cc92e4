package ledger

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// WriteTable prints the snapshot for people: one row per input with the
// balance, then where anything was lost, then the sinks.
func (s Snapshot) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "INPUT\tTYPE\tRECEIVED\tDELIVERED\tDROPPED\tPENDING\tUPSTREAM LOST\t\n")
	for _, in := range s.Inputs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t\n",
			in.Name, in.Type, in.Received, in.Delivered, in.DroppedTotal, in.Pending, in.UpstreamTotal)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	var losses []string
	for _, in := range s.Inputs {
		for _, k := range sortedKeys(in.Dropped) {
			if v := in.Dropped[k]; v > 0 {
				losses = append(losses, fmt.Sprintf("  %s dropped %d (%s)", in.Name, v, k))
			}
		}
		for _, k := range sortedKeys(in.UpstreamLost) {
			if v := in.UpstreamLost[k]; v > 0 {
				losses = append(losses, fmt.Sprintf("  %s upstream lost %d (%s)", in.Name, v, k))
			}
		}
		for _, k := range sortedKeys(in.Errors) {
			if v := in.Errors[k]; v > 0 {
				losses = append(losses, fmt.Sprintf("  %s kept with error %d (%s)", in.Name, v, k))
			}
		}
	}
	if len(losses) == 0 {
		fmt.Fprintln(w, "\nno loss recorded")
	} else {
		fmt.Fprintf(w, "\nlosses and errors:\n%s\n", strings.Join(losses, "\n"))
	}
	if len(s.Sinks) > 0 {
		fmt.Fprintln(w, "\nsinks:")
		for _, k := range sortedKeys(s.Sinks) {
			fmt.Fprintf(w, "  %s delivered %d\n", k, s.Sinks[k])
		}
	}
	return nil
}

func sortedKeys(m map[string]uint64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
