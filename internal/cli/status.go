package cli

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/history"
	"github.com/flowforge/flowforge/jobs"
)

func newStatusCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "status <job-id>",
		Short: "Show a job's status (from the history once the cluster has deleted it)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := o.client()
			if err != nil {
				return err
			}
			st, err := c.Status(ctx, args[0])
			if errors.Is(err, jobs.ErrNotFound) {
				return o.historyStatus(ctx, args[0])
			}
			if err != nil {
				return err
			}
			if done, err := printStructured(o.streams.Out, o.output, st); done {
				return err
			}
			now := o.now()
			if err := table(o.streams.Out,
				[]string{"ID", "USER", "PHASE", "ATTEMPTS", "AGE", "DURATION", "REPOSITORY", "BRANCH", "MESSAGE"},
				[][]string{{st.ID, st.UserID, string(st.Phase), strconv.Itoa(int(st.Attempts)), since(now, st.Created), span(st.Started, st.Finished, now), orDash(st.Repository), orDash(st.Branch), orDash(st.Message)}}); err != nil {
				return err
			}
			_, err = fmt.Fprintf(o.streams.Out, "\nDeletion: %s\n", deletion(*st, now))
			return err
		},
	}
}

// deletion says when the cluster deletes a Job (its record stays in the
// history).
func deletion(st contract.Status, now time.Time) string {
	if st.TTLSecondsAfterFinished == nil {
		return "never (no TTL); delete the Job yourself when done"
	}
	ttl := time.Duration(*st.TTLSecondsAfterFinished) * time.Second
	by := "by FlowForge once its logs are exported"
	if st.DeletedBy == contract.DeletedByTTLController {
		by = "by the built-in TTL controller"
	}
	switch {
	case st.DeleteAfter == nil:
		return fmt.Sprintf("%s after it finishes, %s", ttl, by)
	case st.DeleteAfter.After(now):
		return fmt.Sprintf("at %s (in %s), %s", st.DeleteAfter.UTC().Format(time.RFC3339), human(st.DeleteAfter.Sub(now)), by)
	case st.DeletedBy == contract.DeletedByFlowForge:
		return fmt.Sprintf("due since %s (%s ago), as soon as its logs are exported", st.DeleteAfter.UTC().Format(time.RFC3339), human(now.Sub(*st.DeleteAfter)))
	default:
		return fmt.Sprintf("due since %s (%s ago), %s", st.DeleteAfter.UTC().Format(time.RFC3339), human(now.Sub(*st.DeleteAfter)), by)
	}
}

// historyStatus shows the history record of a job the cluster no longer has.
func (o *options) historyStatus(ctx context.Context, id string) error {
	hc, err := o.history(ctx)
	if err != nil {
		return historyUnavailable(id, o.namespace, "its history is", err)
	}
	rec, err := hc.Job(ctx, id)
	if errors.Is(err, history.ErrNotFound) {
		return &notFoundAnywhere{id: id, namespace: o.namespace, program: o.name}
	}
	if errors.Is(err, history.ErrUnavailable) {
		return historyUnavailable(id, o.namespace, "its history is", err)
	}
	if err != nil {
		return err
	}
	if done, err := printStructured(o.streams.Out, o.output, rec); done {
		return err
	}
	now := o.now()
	if err := table(o.streams.Out,
		[]string{"ID", "USER", "STATUS", "ATTEMPTS", "AGE", "DURATION", "REPOSITORY", "BRANCH", "MESSAGE"},
		[][]string{{rec.ID, rec.User, rec.Status, strconv.Itoa(len(rec.Attempts)), since(now, &rec.Created), span(rec.Started, rec.Finished, now), orDash(rec.Repository), orDash(rec.Branch), orDash(rec.Message)}}); err != nil {
		return err
	}
	fmt.Fprintln(o.streams.Out)
	rows := make([][]string, 0, len(rec.Attempts))
	for _, a := range rec.Attempts {
		exit := "-"
		if a.ExitCode != nil {
			exit = strconv.Itoa(int(*a.ExitCode))
		}
		counted := "-"
		if a.Counted != nil {
			counted = strconv.FormatBool(*a.Counted)
		}
		rows = append(rows, []string{strconv.Itoa(a.Number), a.Pod, orDash(a.Node), a.Phase, exit, orDash(a.Reason), counted, span(a.Started, a.Finished, now),
			millicores(a.PeakCPUMillicores), memoryBytes(a.PeakMemoryBytes)})
	}
	return table(o.streams.Out, []string{"ATTEMPT", "POD", "NODE", "PHASE", "EXIT", "REASON", "COUNTED", "DURATION", "PEAK-CPU", "PEAK-MEMORY"}, rows)
}

// millicores shows a peak CPU use as Kubernetes writes CPU quantities
// ("250m", "1.5" cores); "-" when it was not measured.
func millicores(m int64) string {
	switch {
	case m <= 0:
		return "-"
	case m%1000 == 0:
		return strconv.FormatInt(m/1000, 10)
	case m < 1000:
		return strconv.FormatInt(m, 10) + "m"
	default:
		return strconv.FormatFloat(float64(m)/1000, 'f', -1, 64)
	}
}

// memoryBytes shows a peak memory working set in binary units, rounded
// ("512Ki", "170Mi", "1.5Gi"); "-" when it was not measured.
func memoryBytes(b int64) string {
	if b <= 0 {
		return "-"
	}
	units := []string{"", "Ki", "Mi", "Gi", "Ti"}
	v, i := float64(b), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if v < 10 && i > 0 {
		return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64) + units[i]
	}
	return strconv.FormatFloat(math.Round(v), 'f', -1, 64) + units[i]
}

func newWatchCommand(o *options) *cobra.Command {
	var logs bool
	cmd := &cobra.Command{
		Use:   "watch <job-id>",
		Short: "Follow a job's status until it ends; the exit code is its outcome",
		Long: `watch follows a job until it ends. On a terminal it keeps one status line
up to date (phase, attempts, active pods, elapsed time, the latest event);
elsewhere it prints a line per change. --logs streams the job's logs too.
With -o json or yaml it prints the final status as the document.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(o.output); err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			return o.follow(cmd.Context(), c, args[0], logs)
		},
	}
	cmd.Flags().BoolVar(&logs, "logs", false, "stream the job's logs while it runs")
	return cmd
}

func newListCommand(o *options) *cobra.Command {
	var user, phase string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the agent jobs in the cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			list, err := c.List(cmd.Context(), jobs.ListOptions{UserID: user, Phase: contract.Phase(phase)})
			if err != nil {
				return err
			}
			if list == nil {
				list = []contract.Status{}
			}
			if done, err := printStructured(o.streams.Out, o.output, list); done {
				return err
			}
			now := o.now()
			rows := make([][]string, 0, len(list))
			for _, s := range list {
				rows = append(rows, []string{s.ID, s.UserID, string(s.Phase), strconv.Itoa(int(s.Attempts)), since(now, s.Created), span(s.Started, s.Finished, now), orDash(s.Repository), orDash(s.Branch)})
			}
			return table(o.streams.Out, []string{"ID", "USER", "PHASE", "ATTEMPTS", "AGE", "DURATION", "REPOSITORY", "BRANCH"}, rows)
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "only this user's jobs")
	cmd.Flags().StringVar(&phase, "status", "", "only jobs in this phase (Pending, Running, Succeeded, Failed, TimedOut, Cancelled)")
	return cmd
}

func newHistoryCommand(o *options) *cobra.Command {
	var user, status, sinceFlag string
	var limit int
	cmd := &cobra.Command{
		Use:   "history",
		Short: "List finished and running jobs from the execution history",
		Long: `history reads the execution history of the namespace (-n), which keeps
every job's record after the cluster has deleted the Job. It reads it
through the Kubernetes API server (history.flowforge.io/v1alpha1) with your
own credentials: you see the namespaces whose history RBAC lets you read
(the view, edit and admin roles include it).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(o.output); err != nil {
				return err
			}
			ctx := cmd.Context()
			hc, err := o.history(ctx)
			if err != nil {
				return err
			}
			after, err := history.ParseSince(sinceFlag, o.now())
			if err != nil {
				return withCode(ExitUsage, err)
			}
			list, err := hc.Jobs(ctx, user, status, after, limit)
			if err != nil {
				return err
			}
			if list == nil {
				list = []history.Job{}
			}
			if done, err := printStructured(o.streams.Out, o.output, list); done {
				return err
			}
			now := o.now()
			rows := make([][]string, 0, len(list))
			for _, j := range list {
				gone := "no"
				if j.Exported != nil {
					gone = "exported"
				}
				rows = append(rows, []string{j.ID, j.User, j.Status, since(now, &j.Created), span(j.Started, j.Finished, now), orDash(j.Repository), orDash(j.Branch), gone})
			}
			return table(o.streams.Out, []string{"ID", "USER", "STATUS", "AGE", "DURATION", "REPOSITORY", "BRANCH", "EXPORT"}, rows)
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "only this user's jobs")
	cmd.Flags().StringVar(&status, "status", "", "only jobs with this status (Pending, Running, Succeeded, Failed, TimedOut, Cancelled)")
	cmd.Flags().StringVar(&sinceFlag, "since", "", "only jobs created since: a duration (24h) or an RFC3339 time")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many jobs (default: the server's, 500)")
	return cmd
}

func newCancelCommand(o *options) *cobra.Command {
	var by, reason string
	cmd := &cobra.Command{
		Use:   "cancel <job-id>",
		Short: "Cancel a job: its pods get SIGTERM, then the grace period",
		Long: `cancel records a cancellation request on the Job (who and why). The
FlowForge controller then stops it gracefully; the job ends Cancelled and is
cleaned up like any finished job. Cancelling twice keeps the first request.

Who cancels is who the API server authenticates you as (kubectl auth whoami);
the webhook refuses any other name, and lets only the job's owner and the
cancellers in policy data cancel. A trusted submitter (the FlowForge backend)
may name the user it acts for with --by.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("by") {
				if by, err = c.WhoAmI(cmd.Context()); err != nil {
					return fmt.Errorf("cancel: who is cancelling: %w", err)
				}
			}
			job, err := c.Cancel(cmd.Context(), args[0], by, reason)
			if errors.Is(err, jobs.ErrFinished) {
				if done, perr := printStructured(o.streams.Out, o.output, contract.StatusOf(job)); done {
					return perr
				}
				fmt.Fprintf(o.streams.Out, "job %s has already finished: %v\n", args[0], err)
				return nil
			}
			if err != nil {
				return err
			}
			st := contract.StatusOf(job)
			if done, err := printStructured(o.streams.Out, o.output, st); done {
				return err
			}
			fmt.Fprintf(o.streams.Out, "job %s: cancel requested by %s (%s)\n", args[0], st.CancelRequestedBy, st.Phase)
			return nil
		},
	}
	cmd.Flags().StringVar(&by, "by", "", "record this user as the canceller; only a trusted submitter may name another user (default: your authenticated username)")
	cmd.Flags().StringVar(&reason, "reason", "cancelled from the flowforge CLI", "why")
	return cmd
}
