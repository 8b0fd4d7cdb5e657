package chaos

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Row is the result of one fault: a line of the table.
type Row struct {
	Fault, Setup, What, Note string
	// Injected counts injections; Survived those after which the service
	// was ready again with trades flowing within the recovery bound.
	Injected, Survived int
	// Recovery holds each survived injection's recovery time.
	Recovery []time.Duration
	// Missing and Duplicates count aggregate trade ids against the
	// simulator's list; Mismatches counts books that differ from the
	// simulator's at the same update id, totals that differ from the
	// reference, and trades held with other fields than published.
	Missing, Duplicates, Mismatches int
	// Leaked counts goroutines still running after the scenario ended.
	Leaked int
	// Failed is set when anything above is wrong or the scenario could not
	// run; Reasons say why, Logs hold the service's last warnings.
	Failed  bool
	Reasons []string
	Logs    []string
	// SimStats notes disconnects the simulator made on its own.
	SimStats string
	Elapsed  time.Duration
}

func (r *Row) fail(reason string) {
	r.Failed = true
	if len(r.Reasons) < 12 {
		r.Reasons = append(r.Reasons, reason)
	}
}

// P50 returns the median recovery time (the lower median for an even
// count), 0 without any.
func (r *Row) P50() time.Duration {
	if len(r.Recovery) == 0 {
		return 0
	}
	s := slices.Clone(r.Recovery)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// Max returns the longest recovery time.
func (r *Row) Max() time.Duration {
	if len(r.Recovery) == 0 {
		return 0
	}
	return slices.Max(r.Recovery)
}

// Status is "ok" or "FAILED".
func (r *Row) Status() string {
	if r.Failed {
		return "FAILED"
	}
	return "ok"
}

func fmtDur(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return d.Round(time.Millisecond).String()
}

// WriteTable prints the rows as an aligned table, then, under it, the
// reasons of every failed row and the notes.
func WriteTable(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "fault\tsetup\tinjected\tsurvived\trecovery p50\trecovery max\tmissing\tduplicates\tmismatches\tleaked\tstatus\t")
	for i := range rows {
		r := &rows[i]
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t\n", r.Fault, r.Setup, r.Injected, r.Survived,
			fmtDur(r.P50()), fmtDur(r.Max()), r.Missing, r.Duplicates, r.Mismatches, r.Leaked, r.Status())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var b strings.Builder
	for i := range rows {
		r := &rows[i]
		if r.Failed {
			fmt.Fprintf(&b, "\n%s FAILED:\n", r.Fault)
			for _, why := range r.Reasons {
				fmt.Fprintf(&b, "  - %s\n", why)
			}
			for _, l := range r.Logs {
				fmt.Fprintf(&b, "    log: %s\n", l)
			}
		}
	}
	notes := false
	for i := range rows {
		r := &rows[i]
		if r.What == "" && r.Note == "" && r.SimStats == "" {
			continue
		}
		if !notes {
			b.WriteString("\nfaults:\n")
			notes = true
		}
		fmt.Fprintf(&b, "  %-18s %s", r.Fault, r.What)
		if r.Note != "" {
			fmt.Fprintf(&b, " (%s)", r.Note)
		}
		if r.SimStats != "" {
			fmt.Fprintf(&b, " [simulator: %s]", r.SimStats)
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
