package httpkit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	kithttp "github.com/go-kit/kit/transport/http"
)

// MaxBody bounds request bodies.
const MaxBody = 1 << 20

// DecodeJSON decodes the request body into dst strictly: one JSON value, no
// unknown fields, right types. Failures are 400 Problems naming the field.
func DecodeJSON(r *http.Request, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return ProblemUnsupportedMediaType.New("send application/json")
		}
	}
	dec := json.NewDecoder(&limitedBody{r: r.Body, left: MaxBody})
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		if errors.Is(err, errBodyTooLarge) {
			return ProblemPayloadTooLarge.New(fmt.Sprintf("a request body is at most %d bytes", MaxBody))
		}
		return jsonProblem(err)
	}
	if dec.More() {
		return Malformed("body", "must hold a single JSON object")
	}
	return nil
}

var errBodyTooLarge = errors.New("request body too large")

// limitedBody reads at most left bytes and then fails with errBodyTooLarge,
// so an over-long body is a 413, not a truncated-JSON 400.
type limitedBody struct {
	r    io.Reader
	left int64
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.left <= 0 {
		var one [1]byte
		if n, _ := l.r.Read(one[:]); n > 0 {
			return 0, errBodyTooLarge
		}
		return 0, io.EOF
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// FromJSONError turns an encoding/json decoding error into a 400 Problem
// naming the field, or returns nil for other errors.
func FromJSONError(err error) *Problem {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	if errors.As(err, &syntax) || errors.As(err, &typ) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.Contains(err.Error(), "json: unknown field ") {
		return jsonProblem(err)
	}
	return nil
}

func jsonProblem(err error) *Problem {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return Malformed("body", "is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return Malformed("body", "is truncated JSON")
	case errors.As(err, &syntax):
		return Malformed("body", fmt.Sprintf("is not valid JSON (at byte %d)", syntax.Offset))
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return Malformed(field, "must be "+jsonKind(typ.Type.Kind().String()))
	case strings.Contains(err.Error(), "json: unknown field "):
		_, name, _ := strings.Cut(err.Error(), "json: unknown field ")
		name = strings.Trim(name, `"`)
		return Malformed(name, "is not a field of this request")
	default:
		// Errors from a field's own UnmarshalJSON (money, dates) say what is wrong.
		return Malformed("body", err.Error())
	}
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	}
	return "of another type"
}

// WriteJSON writes v with status.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// EncodeResponse is a go-kit response encoder: JSON, with the headers and
// status the response asks for through go-kit's Headerer and StatusCoder
// (200 otherwise), so no service needs an encoder of its own.
func EncodeResponse(_ context.Context, w http.ResponseWriter, response any) error {
	if h, ok := response.(kithttp.Headerer); ok {
		for k, vs := range h.Headers() {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
	}
	status := http.StatusOK
	if s, ok := response.(kithttp.StatusCoder); ok {
		status = s.StatusCode()
	}
	if status == http.StatusNoContent {
		w.WriteHeader(status) // 204 has no body, not even "{}"
		return nil
	}
	return WriteJSON(w, status, response)
}
