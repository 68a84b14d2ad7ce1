package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client reads the controller's unauthenticated debugging view of the
// history (history/store.API, --history-bind-address, loopback only): for
// tests and load tools on the controller's own machine. People and the CLI
// read the history through the API server with APIClient.
type Client struct {
	BaseURL string
	HTTP    *http.Client
}

// Jobs lists records.
func (c *Client) Jobs(ctx context.Context, user, status, since string, limit int) ([]Job, error) {
	q := url.Values{}
	for k, v := range map[string]string{"user": user, "status": status, "since": since} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out struct {
		Items []Job `json:"items"`
	}
	if err := c.getJSON(ctx, "/api/v1/jobs?"+q.Encode(), &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

// Job returns one record.
func (c *Client) Job(ctx context.Context, id string) (*Job, error) {
	var j Job
	if err := c.getJSON(ctx, "/api/v1/jobs/"+url.PathEscape(id), &j); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("job %q %w in the history", id, ErrNotFound)
		}
		return nil, err
	}
	return &j, nil
}

// Logs copies a Job's archived logs to w.
func (c *Client) Logs(ctx context.Context, id string, attempt int, container string, w io.Writer) error {
	q := url.Values{}
	if attempt > 0 {
		q.Set("attempt", strconv.Itoa(attempt))
	}
	if container != "" {
		q.Set("container", container)
	}
	body, err := c.get(ctx, "/api/v1/jobs/"+url.PathEscape(id)+"/logs?"+q.Encode())
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("job %q %w in the history", id, ErrNotFound)
		}
		return err
	}
	defer body.Close() //nolint:errcheck // read-only
	if _, err := io.Copy(w, body); err != nil {
		return fmt.Errorf("history: read logs of %s: %w", id, err)
	}
	return nil
}

func (c *Client) getJSON(ctx context.Context, path string, into any) error {
	body, err := c.get(ctx, path)
	if err != nil {
		return err
	}
	defer body.Close() //nolint:errcheck // read-only
	if err := json.NewDecoder(body).Decode(into); err != nil {
		return fmt.Errorf("history: decode %s: %w", path, err)
	}
	return nil
}

func (c *Client) get(ctx context.Context, path string) (io.ReadCloser, error) {
	httpClient := c.HTTP
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 30 * time.Second}
	}
	u := strings.TrimRight(c.BaseURL, "/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("history: the history API at %s is unreachable: %w", c.BaseURL, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp.Body, nil
	}
	defer resp.Body.Close() //nolint:errcheck // reading the error body
	var e struct {
		Error string `json:"error"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e)
	if resp.StatusCode == http.StatusNotFound {
		// The server's message already says what was not found (and
		// usually starts with "history: "); the callers name the object.
		if msg := strings.TrimPrefix(strings.TrimSpace(e.Error), "history: "); msg != "" && msg != ErrNotFound.Error() {
			return nil, &notFound{msg: msg}
		}
		return nil, ErrNotFound
	}
	return nil, fmt.Errorf("history: %s: %s %s", u, resp.Status, e.Error)
}

// notFound is a 404 of the history API with the server's explanation; it
// matches ErrNotFound.
type notFound struct{ msg string }

func (e *notFound) Error() string        { return e.msg }
func (e *notFound) Is(target error) bool { return target == ErrNotFound }
