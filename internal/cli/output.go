package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"sigs.k8s.io/yaml"
)

// printStructured writes v as JSON or YAML. It returns false for "table".
func printStructured(w io.Writer, format string, v any) (bool, error) {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return true, enc.Encode(v)
	case "yaml":
		data, err := yaml.Marshal(v)
		if err != nil {
			return true, fmt.Errorf("encode yaml: %w", err)
		}
		_, err = w.Write(data)
		return true, err
	case "table", "":
		return false, nil
	}
	return true, withCode(ExitUsage, fmt.Errorf("unknown output format %q: use table, json or yaml", format))
}

// checkOutput refuses an unknown -o before a command does anything.
func checkOutput(format string) error {
	switch format {
	case "json", "yaml", "table", "":
		return nil
	}
	return withCode(ExitUsage, fmt.Errorf("unknown output format %q: use table, json or yaml", format))
}

// table writes rows under a header, aligned.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// since renders how long ago t was, kubectl style.
func since(now time.Time, t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return human(now.Sub(*t))
}

// span renders the time between two instants, or "-".
func span(from, to *time.Time, now time.Time) string {
	if from == nil {
		return "-"
	}
	end := now
	if to != nil {
		end = *to
	}
	return human(end.Sub(*from))
}

func human(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
