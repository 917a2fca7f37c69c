package stripe

import (
	"context"

	stripego "github.com/stripe/stripe-go/v76"

	"github.com/stripe-operator/stripe-operator/internal/identity"
)

// WebhookEndpoint is the part of a Stripe webhook endpoint the operator
// reads. Secret is set only on the object a create returned: Stripe shows
// the signing secret in the create response and never again
// (https://docs.stripe.com/api/webhook_endpoints/object#webhook_endpoint_object-secret).
type WebhookEndpoint struct {
	ID            string
	URL           string
	Description   string
	APIVersion    string
	EnabledEvents []string
	// Status is enabled or disabled.
	Status   string
	Metadata map[string]string
	Created  int64
	Secret   string
}

// WebhookEndpointParams are the fields the operator sets. APIVersion is
// sent on create only (Stripe refuses it on update).
type WebhookEndpointParams struct {
	URL           string
	Description   string
	APIVersion    string
	EnabledEvents []string
	Disabled      *bool
	Metadata      map[string]string
}

func toWebhookEndpoint(w *stripego.WebhookEndpoint) *WebhookEndpoint {
	return &WebhookEndpoint{ID: w.ID, URL: w.URL, Description: w.Description, APIVersion: w.APIVersion,
		EnabledEvents: append([]string(nil), w.EnabledEvents...), Status: w.Status, Metadata: w.Metadata,
		Created: w.Created, Secret: w.Secret}
}

func webhookEndpointParams(p WebhookEndpointParams) *stripego.WebhookEndpointParams {
	sp := &stripego.WebhookEndpointParams{URL: stripego.String(p.URL), Description: stripego.String(p.Description), Disabled: p.Disabled}
	for _, e := range p.EnabledEvents {
		sp.EnabledEvents = append(sp.EnabledEvents, stripego.String(e))
	}
	setMetadata(&sp.Params, p.Metadata)
	return sp
}

// CreateWebhookEndpoint creates an endpoint and returns it with its signing
// secret. The idempotency key is the intent's: after a lost response the
// same intent replays Stripe's saved response, secret included, for 24
// hours, so a crash between the create and the write of the secret loses
// nothing.
func (c *Client) CreateWebhookEndpoint(ctx context.Context, owner Owner, intent string, p WebhookEndpointParams) (*WebhookEndpoint, error) {
	p.Metadata = identity.Metadata(owner, p.Metadata)
	var out *WebhookEndpoint
	err := c.call(ctx, "create webhook endpoint", func(ctx context.Context) error {
		sp := webhookEndpointParams(p)
		if p.APIVersion != "" {
			sp.APIVersion = stripego.String(p.APIVersion)
		}
		setup(ctx, &sp.Params, createKey(owner, "webhook-endpoint-create", intent))
		w, err := c.sc().WebhookEndpoints.New(sp)
		if err != nil {
			return err
		}
		// A replayed response is the answer to the first request: its
		// secret is the one Stripe issued; the rest is read again.
		secret := w.Secret
		w, err = current(w.LastResponse, w, func() (*stripego.WebhookEndpoint, error) { return c.getWebhookEndpoint(ctx, w.ID) })
		if err != nil {
			return err
		}
		out = toWebhookEndpoint(w)
		out.Secret = secret
		return nil
	})
	return out, err
}

func (c *Client) getWebhookEndpoint(ctx context.Context, id string) (*stripego.WebhookEndpoint, error) {
	gp := &stripego.WebhookEndpointParams{}
	setup(ctx, &gp.Params, "")
	return c.sc().WebhookEndpoints.Get(id, gp)
}

// GetWebhookEndpoint reads an endpoint (without its secret).
func (c *Client) GetWebhookEndpoint(ctx context.Context, id string) (*WebhookEndpoint, error) {
	return callFor(ctx, c, "get webhook endpoint", func(ctx context.Context) (*WebhookEndpoint, error) {
		w, err := c.getWebhookEndpoint(ctx, id)
		if err != nil {
			return nil, err
		}
		return toWebhookEndpoint(w), nil
	})
}

// UpdateWebhookEndpoint sets URL, events, description and disabled.
func (c *Client) UpdateWebhookEndpoint(ctx context.Context, owner Owner, id string, p WebhookEndpointParams) (*WebhookEndpoint, error) {
	return callFor(ctx, c, "update webhook endpoint", func(ctx context.Context) (*WebhookEndpoint, error) {
		sp := webhookEndpointParams(p)
		setup(ctx, &sp.Params, attemptKey(owner, "webhook-endpoint-update"))
		w, err := c.sc().WebhookEndpoints.Update(id, sp)
		if err != nil {
			return nil, err
		}
		w, err = current(w.LastResponse, w, func() (*stripego.WebhookEndpoint, error) { return c.getWebhookEndpoint(ctx, id) })
		if err != nil {
			return nil, err
		}
		return toWebhookEndpoint(w), nil
	})
}

// DeleteWebhookEndpoint deletes an endpoint; Stripe stops delivering to it.
func (c *Client) DeleteWebhookEndpoint(ctx context.Context, owner Owner, id string) error {
	return c.call(ctx, "delete webhook endpoint", func(ctx context.Context) error {
		p := &stripego.WebhookEndpointParams{}
		setup(ctx, &p.Params, attemptKey(owner, "webhook-endpoint-delete"))
		_, err := c.sc().WebhookEndpoints.Del(id, p)
		return err
	})
}

// ListWebhookEndpointsByOwner returns the endpoints whose metadata names
// owner (the operator's link back), oldest first. The account holds at most
// 16 endpoints, so one page is all of them.
func (c *Client) ListWebhookEndpointsByOwner(ctx context.Context, owner Owner) ([]*WebhookEndpoint, error) {
	var out []*WebhookEndpoint
	err := c.call(ctx, "list webhook endpoints", func(ctx context.Context) error {
		p := &stripego.WebhookEndpointListParams{}
		p.Context = ctx
		p.Limit = stripego.Int64(100)
		it := c.sc().WebhookEndpoints.List(p)
		out = nil
		for it.Next() {
			if w := it.WebhookEndpoint(); identity.SameUID(owner, w.Metadata) {
				out = append([]*WebhookEndpoint{toWebhookEndpoint(w)}, out...)
			}
		}
		return it.Err()
	})
	return out, err
}
