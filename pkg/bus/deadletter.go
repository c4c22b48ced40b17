package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DeadLetter is a message a consumer gave up on, with the message itself.
type DeadLetter struct {
	// Seq is the dead-letter stream's sequence, used to replay or discard it.
	Seq uint64
	// Reason is "max_deliveries" or "terminated".
	Reason     string
	Detail     string
	Stream     string
	Consumer   string
	StreamSeq  uint64
	Deliveries uint64
	At         time.Time
	// The original message; empty when it has aged out of its stream.
	Subject string
	EventID string
	Type    string
	Data    []byte
	Header  nats.Header
}

type advisory struct {
	Type       string    `json:"type"`
	Time       time.Time `json:"timestamp"`
	Stream     string    `json:"stream"`
	Consumer   string    `json:"consumer"`
	StreamSeq  uint64    `json:"stream_seq"`
	Deliveries uint64    `json:"deliveries"`
	Reason     string    `json:"reason"`
}

// DeadLetters lists what sits in the dead-letter stream, oldest first.
func DeadLetters(ctx context.Context, js jetstream.JetStream) ([]DeadLetter, error) {
	dlq, err := js.Stream(ctx, StreamDeadLetter)
	if err != nil {
		return nil, err
	}
	info, err := dlq.Info(ctx)
	if err != nil {
		return nil, err
	}
	var out []DeadLetter
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		raw, err := dlq.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		dl, err := resolve(ctx, js, raw)
		if err != nil {
			return nil, err
		}
		out = append(out, dl)
	}
	return out, nil
}

func resolve(ctx context.Context, js jetstream.JetStream, raw *jetstream.RawStreamMsg) (DeadLetter, error) {
	var a advisory
	if err := json.Unmarshal(raw.Data, &a); err != nil {
		return DeadLetter{}, fmt.Errorf("bus: dead letter %d: %w", raw.Sequence, err)
	}
	dl := DeadLetter{Seq: raw.Sequence, Stream: a.Stream, Consumer: a.Consumer, StreamSeq: a.StreamSeq,
		Deliveries: a.Deliveries, At: a.Time, Detail: a.Reason, Reason: "terminated"}
	if strings.Contains(raw.Subject, "MAX_DELIVERIES") {
		dl.Reason = "max_deliveries"
	}
	src, err := js.Stream(ctx, a.Stream)
	if err != nil {
		return dl, nil
	}
	orig, err := src.GetMsg(ctx, a.StreamSeq)
	if err != nil {
		return dl, nil
	}
	dl.Subject, dl.Data, dl.Header = orig.Subject, orig.Data, orig.Header
	if orig.Header != nil {
		dl.EventID, dl.Type = orig.Header.Get(HeaderEventID), orig.Header.Get(HeaderEventType)
	}
	return dl, nil
}

// Replay publishes a dead-lettered message again on its subject and removes
// it from the dead-letter stream. Every consumer of the subject sees it once
// more; those that handled it before skip it through their inbox (keyed on the
// event id, which is unchanged). The Nats-Msg-Id differs so the stream's
// duplicate window does not swallow the replay.
func Replay(ctx context.Context, js jetstream.JetStream, dl DeadLetter) error {
	if dl.Subject == "" {
		return fmt.Errorf("bus: dead letter %d: original message is gone from %s", dl.Seq, dl.Stream)
	}
	msg := nats.NewMsg(dl.Subject)
	msg.Data = dl.Data
	for k, v := range dl.Header {
		if k != jetstream.MsgIDHeader {
			msg.Header[k] = v
		}
	}
	if _, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(fmt.Sprintf("%s:replay:%d", dl.EventID, dl.Seq))); err != nil {
		return err
	}
	return Discard(ctx, js, dl.Seq)
}

// Discard removes a dead letter without replaying it.
func Discard(ctx context.Context, js jetstream.JetStream, seq uint64) error {
	dlq, err := js.Stream(ctx, StreamDeadLetter)
	if err != nil {
		return err
	}
	return dlq.DeleteMsg(ctx, seq)
}
