package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kfields "k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/jobs"
)

// logsDrainTimeout bounds how long follow waits, after the job ended, for
// its log stream to deliver the last lines.
const logsDrainTimeout = 10 * time.Second

// follow waits for the job to end, showing its progress (and, withLogs,
// its logs), and turns its outcome into the exit code. With -o json or
// yaml it shows nothing while it waits and prints the final status.
func (o *options) follow(ctx context.Context, c *jobs.Client, id string, withLogs bool) error {
	structured := o.output == "json" || o.output == "yaml"
	streams := o.streams
	if structured {
		// The progress and the logs go to stderr: stdout is the document.
		streams.Out, streams.IsTerminal = o.streams.Err, o.streams.ErrIsTerminal
	}
	p := newProgress(streams, o.now)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	if streams.IsTerminal && o.deps.refresh > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o.refreshProgress(ctx, p)
		}()
	}
	logsDone := make(chan error, 1)
	var logsOnce sync.Once
	startLogs := func() {
		logsOnce.Do(func() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				logsDone <- c.Logs(ctx, id, jobs.LogOptions{Follow: true}, p.logWriter())
			}()
		})
	}
	final, err := c.Watch(ctx, id, func(s contract.Status) error {
		p.update(s)
		if withLogs && (s.Active > 0 || s.Attempts > 0) {
			startLogs()
		}
		return nil
	})
	if err == nil && withLogs {
		startLogs() // a job that ended before it was seen running
		select {
		case lerr := <-logsDone:
			if lerr != nil && !errors.Is(lerr, context.Canceled) {
				fmt.Fprintf(o.streams.Err, "Warning: the logs of job %s are incomplete: %v\n", id, lerr)
			}
		case <-time.After(logsDrainTimeout):
		case <-ctx.Done():
		}
	}
	cancel()
	wg.Wait()
	p.done()
	if err != nil {
		return err
	}
	if structured {
		if _, perr := printStructured(o.streams.Out, o.output, final); perr != nil {
			return perr
		}
	} else {
		fmt.Fprintf(o.streams.Out, "job %s %s", id, final.Phase)
		if final.Message != "" {
			fmt.Fprintf(o.streams.Out, ": %s", final.Message)
		}
		fmt.Fprintln(o.streams.Out)
	}
	if code := phaseExit(final.Phase); code != ExitOK {
		return withCode(code, nil)
	}
	return nil
}

// refreshProgress redraws the status line every deps.refresh and, every
// other time, reads the job's latest event, until ctx ends.
func (o *options) refreshProgress(ctx context.Context, p *progress) {
	cs, err := o.deps.clientset(o)
	if err != nil {
		cs = nil // the line still ticks, without events
	}
	t := time.NewTicker(o.deps.refresh)
	defer t.Stop()
	for n := 0; ; n++ {
		if name := p.jobName(); cs != nil && name != "" && n%2 == 0 {
			if e, ok := latestEvent(ctx, cs, o.namespace, name); ok {
				p.setEvent(e)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.tick()
		}
	}
}

// latestEvent reads the newest event of a Job and of its newest pod, as
// "Reason: message". ok is false when there is none or it cannot be read.
func latestEvent(ctx context.Context, cs kubernetes.Interface, namespace, jobName string) (string, bool) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	names := []string{jobName}
	pods, err := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + jobName})
	if err == nil && len(pods.Items) > 0 {
		newest := &pods.Items[0]
		for i := range pods.Items {
			if pods.Items[i].CreationTimestamp.After(newest.CreationTimestamp.Time) {
				newest = &pods.Items[i]
			}
		}
		names = append(names, newest.Name)
	}
	var best *corev1.Event
	for _, name := range names {
		list, err := cs.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{
			FieldSelector: kfields.OneTermEqualSelector("involvedObject.name", name).String(),
		})
		if err != nil {
			continue
		}
		for i := range list.Items {
			if list.Items[i].InvolvedObject.Name != name {
				continue // a server that ignored the field selector
			}
			if best == nil || eventTime(&list.Items[i]).After(eventTime(best)) {
				best = &list.Items[i]
			}
		}
	}
	if best == nil {
		return "", false
	}
	msg := strings.Join(strings.Fields(best.Message), " ")
	return best.Reason + ": " + msg, true
}

// eventTime is when an event last happened.
func eventTime(e *corev1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}
