package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/flowforge/flowforge/history"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"
)

// API serves the history as read-only JSON:
//
//	GET /api/v1/jobs?user=U&status=S&namespace=NS&since=24h|RFC3339&limit=N&continue=T
//	    -> {"items": [...], "continue": T}; T, set when the page is full,
//	       is the next page's continue parameter
//	GET /api/v1/jobs/{id}
//	GET /api/v1/jobs/{id}/logs?attempt=N&container=C   (text/plain)
type API struct {
	Store history.Store
	Clock clock.PassiveClock
	Log   logr.Logger
}

// Handler returns the API's HTTP handler.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/jobs", a.list)
	mux.HandleFunc("GET /api/v1/jobs/{id}", a.get)
	mux.HandleFunc("GET /api/v1/jobs/{id}/logs", a.logs)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	return mux
}

// ParseSince accepts a duration back from now ("24h") or an RFC3339 time.
func ParseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("since %q: negative duration", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("since %q: want a duration like 24h or an RFC3339 time", s)
	}
	return t, nil
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, err := ParseSince(q.Get("since"), a.Clock.Now())
	if err != nil {
		a.fail(w, http.StatusBadRequest, err)
		return
	}
	limit := 500
	if l := q.Get("limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil || limit <= 0 {
			a.fail(w, http.StatusBadRequest, fmt.Errorf("limit %q: want a positive number", l))
			return
		}
	}
	if c := q.Get("continue"); c != "" {
		if _, _, err := history.ParseContinue(c); err != nil {
			a.fail(w, http.StatusBadRequest, err)
			return
		}
	}
	jobs, err := a.Store.Jobs(r.Context(), history.Filter{
		User: q.Get("user"), Status: q.Get("status"), Namespace: q.Get("namespace"), Since: since, Limit: limit, Continue: q.Get("continue"),
	})
	if err != nil {
		a.fail(w, http.StatusInternalServerError, err)
		return
	}
	if jobs == nil {
		jobs = []history.Job{}
	}
	out := map[string]any{"items": jobs}
	if len(jobs) == limit {
		out["continue"] = history.ContinueAfter(jobs[len(jobs)-1])
	}
	writeJSON(w, out)
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	j, err := a.Store.Job(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, statusFor(err), err)
		return
	}
	writeJSON(w, j)
}

func (a *API) logs(w http.ResponseWriter, r *http.Request) {
	j, err := a.Store.Job(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, statusFor(err), err)
		return
	}
	archives, err := a.Store.LogArchives(r.Context(), j.UID)
	if err != nil {
		a.fail(w, http.StatusInternalServerError, err)
		return
	}
	attempt := 0
	if s := r.URL.Query().Get("attempt"); s != "" {
		if attempt, err = strconv.Atoi(s); err != nil || attempt <= 0 {
			a.fail(w, http.StatusBadRequest, fmt.Errorf("attempt %q: want a positive number", s))
			return
		}
	}
	container := r.URL.Query().Get("container")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	multi := countAttempts(archives) > 1
	last := 0
	for _, ar := range archives {
		if (attempt != 0 && ar.Attempt != attempt) || (container != "" && ar.Container != container) {
			continue
		}
		text, err := ar.Text()
		if err != nil {
			a.Log.Error(err, "Unreadable log archive", "job", j.ID, "pod", ar.Pod, "container", ar.Container)
			continue
		}
		if multi && attempt == 0 && ar.Attempt != last {
			_, _ = fmt.Fprintf(w, "==> attempt %d (pod %s) <==\n", ar.Attempt, ar.Pod)
			last = ar.Attempt
		}
		_, _ = w.Write(text)
	}
}

func countAttempts(archives []history.LogArchive) int {
	seen := map[int]bool{}
	for _, a := range archives {
		seen[a.Attempt] = true
	}
	return len(seen)
}

func statusFor(err error) int {
	if errors.Is(err, history.ErrNotFound) {
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

func (a *API) fail(w http.ResponseWriter, code int, err error) {
	if code >= http.StatusInternalServerError {
		a.Log.Error(err, "History API error")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
