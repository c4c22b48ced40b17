// Package compose answers requests that need more than one service: the
// booking a patient sees is booking's state plus payment's payments.
package compose

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"github.com/go-kit/kit/endpoint"
	kithttp "github.com/go-kit/kit/transport/http"

	"github.com/saisei-health/platform/pkg/httpkit"
)

// BookingWithPayments is booking's JSON with a "payments" member appended,
// keeping booking's own members and their order as they were.
type BookingWithPayments json.RawMessage

// MarshalJSON returns the spliced document.
func (b BookingWithPayments) MarshalJSON() ([]byte, error) { return b, nil }

type payments struct {
	Items json.RawMessage `json:"items"`
}

// MakeGetBookingEndpoint fetches the booking as the caller (booking decides
// whether the caller may see it: another patient's booking is a 404), then,
// as the gateway itself (services), its payments.
func MakeGetBookingEndpoint(bookingURL, paymentURL *url.URL, client, services *http.Client) endpoint.Endpoint {
	getBooking := kithttp.NewClient(http.MethodGet, bookingURL, func(ctx context.Context, r *http.Request, req any) error {
		r.URL.Path = "/v1/bookings/" + url.PathEscape(req.(string))
		if auth, ok := ctx.Value(kithttp.ContextKeyRequestAuthorization).(string); ok {
			r.Header.Set("Authorization", auth)
		}
		return nil
	}, httpkit.DecodeJSONResponse[json.RawMessage](), kithttp.SetClient(client)).Endpoint()
	listPayments := kithttp.NewClient(http.MethodGet, paymentURL.JoinPath("/internal/v1/payments"), func(_ context.Context, r *http.Request, req any) error {
		r.URL.RawQuery = url.Values{"booking_id": {req.(string)}}.Encode()
		return nil
	}, httpkit.DecodeJSONResponse[payments](), kithttp.SetClient(services)).Endpoint()

	return func(ctx context.Context, request any) (any, error) {
		id := request.(string)
		b, err := getBooking(ctx, id)
		if err != nil {
			return nil, upstreamError(err)
		}
		p, err := listPayments(ctx, id)
		if err != nil {
			return nil, upstreamError(err)
		}
		doc := bytes.TrimSpace(*b.(*json.RawMessage))
		if len(doc) < 2 || doc[len(doc)-1] != '}' {
			return nil, upstreamError(errors.New("booking answered with a non-object"))
		}
		items := p.(*payments).Items
		if len(items) == 0 {
			items = json.RawMessage("[]")
		}
		sep := `,"payments":`
		if bytes.Equal(bytes.Join(bytes.Fields(doc), nil), []byte("{}")) {
			doc, sep = []byte("{}"), `"payments":`
		}
		out := append(append(append(doc[:len(doc)-1:len(doc)-1], sep...), items...), '}')
		return BookingWithPayments(out), nil
	}
}

// ProblemUpstreamUnavailable answers when a service behind the gateway
// cannot be reached.
var ProblemUpstreamUnavailable = httpkit.DefineProblem(http.StatusServiceUnavailable, "upstream-unavailable", "Service temporarily unavailable")

// upstreamError passes an upstream's problem through; a failure to reach it
// becomes a 503.
func upstreamError(err error) error {
	var p *httpkit.Problem
	if errors.As(err, &p) {
		return p
	}
	return ProblemUpstreamUnavailable.New("try again shortly")
}

// DecodeID reads {id} from the path.
func DecodeID(_ context.Context, r *http.Request) (any, error) { return r.PathValue("id"), nil }
