package cmdutil

import (
	"context"

	"github.com/sitectl/sitectl/adapters/webhook"
	"github.com/sitectl/sitectl/runbooks"
)

// WebhookPoster delivers a run's notifications with adapters/webhook.
type WebhookPoster struct{ Client *webhook.Client }

// Post posts p once per attempt, within its deadline.
func (w WebhookPoster) Post(ctx context.Context, p runbooks.Post) runbooks.PostResult {
	c := w.Client
	if c == nil {
		c = &webhook.Client{}
	}
	res := c.Post(ctx, webhook.Request{URL: p.URL, Body: p.Body, Header: p.Header, Timeout: p.Timeout,
		Attempts: p.Attempts, Backoff: p.Backoff, Deadline: p.Deadline})
	return runbooks.PostResult{Attempts: res.Attempts, Status: res.Status, Took: res.Took, Err: res.Err}
}
