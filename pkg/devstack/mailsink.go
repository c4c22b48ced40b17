package devstack

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// Mail is one message the sink received.
type Mail struct {
	From      string   `json:"from"`
	To        []string `json:"to"`
	Subject   string   `json:"subject"`
	MessageID string   `json:"message_id"`
	Text      string   `json:"text"`
	HTML      string   `json:"html"`
	// Headers are the message's top-level headers (first value of each).
	Headers  map[string]string `json:"headers"`
	Received time.Time         `json:"received"`
	Raw      []byte            `json:"-"`
}

// MailSink is an in-process SMTP server that keeps every message in memory
// and shows them over HTTP (GET /api/messages), so development and tests can
// see exactly what a patient would have received.
type MailSink struct {
	server *smtp.Server
	ln     net.Listener

	// connections counts the SMTP connections senders opened.
	connections atomic.Int64

	mu       sync.Mutex
	messages []Mail
	changed  chan struct{}
	// beforeAccept runs when a message has arrived, before the sink
	// answers the sender that it took it (SetBeforeAccept).
	beforeAccept func(Mail)
	// keep bounds the messages kept (0: all), oldest dropped first.
	keep int
}

// KeepLast bounds the sink to its n latest messages (between n and 2n are
// kept), for a long-running
// platform (make run under load kept every email it ever received, and
// its heap grew with them); tests keep all.
func (s *MailSink) KeepLast(n int) {
	s.mu.Lock()
	s.keep = n
	s.mu.Unlock()
}

// SetBeforeAccept has f run for each message after it arrived and before
// the sink answers 250: a test can break the sender's side exactly
// between "the relay has it" and "the sender knows it".
func (s *MailSink) SetBeforeAccept(f func(Mail)) {
	s.mu.Lock()
	s.beforeAccept = f
	s.mu.Unlock()
}

// StartMailSink listens for SMTP on addr ("127.0.0.1:0" for any port).
func StartMailSink(addr string) (*MailSink, error) {
	s := &MailSink{changed: make(chan struct{})}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		s.connections.Add(1)
		return &sinkSession{sink: s}, nil
	}))
	srv.Domain = "localhost"
	// A sender that drops its connection (killed by the chaos run) is no
	// news for the sink's output.
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.AllowInsecureAuth = true
	srv.MaxMessageBytes = 10 << 20
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s.server, s.ln = srv, ln
	go func() { _ = srv.Serve(ln) }()
	return s, nil
}

// Addr is the host:port the sink listens on.
func (s *MailSink) Addr() string { return s.ln.Addr().String() }

// Connections is how many SMTP connections senders have opened.
func (s *MailSink) Connections() int { return int(s.connections.Load()) }

// Close stops the SMTP server.
func (s *MailSink) Close() error { return s.server.Close() }

// Messages returns a copy of everything received so far, oldest first.
func (s *MailSink) Messages() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.messages...)
}

// WaitFor blocks until a message matching match arrives (or already has).
func (s *MailSink) WaitFor(ctx context.Context, match func(Mail) bool) (Mail, error) {
	for {
		s.mu.Lock()
		for _, m := range s.messages {
			if match(m) {
				s.mu.Unlock()
				return m, nil
			}
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return Mail{}, ctx.Err()
		case <-changed:
		}
	}
}

func (s *MailSink) add(m Mail) {
	s.mu.Lock()
	s.messages = append(s.messages, m)
	if s.keep > 0 && len(s.messages) >= 2*s.keep {
		// Copied down once twice as many have come, so the dropped
		// messages' memory goes too, at a constant cost per message.
		s.messages = append(make([]Mail, 0, 2*s.keep), s.messages[len(s.messages)-s.keep:]...)
	}
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// Handler serves the received messages as JSON at /api/messages.
func (s *MailSink) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/messages", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"messages": s.Messages()})
	})
	return mux
}

type sinkSession struct {
	sink *MailSink
	from string
	to   []string
}

func (ss *sinkSession) Mail(from string, _ *smtp.MailOptions) error { ss.from = from; return nil }
func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}
func (ss *sinkSession) Reset()        { ss.from, ss.to = "", nil }
func (ss *sinkSession) Logout() error { return nil }

func (ss *sinkSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := Mail{From: ss.from, To: append([]string(nil), ss.to...), Raw: raw, Received: time.Now().UTC()}
	if msg, err := mail.ReadMessage(bytes.NewReader(raw)); err == nil {
		dec := new(mime.WordDecoder)
		m.Subject, _ = dec.DecodeHeader(msg.Header.Get("Subject"))
		m.MessageID = msg.Header.Get("Message-Id")
		m.Headers = map[string]string{}
		for k, v := range msg.Header {
			m.Headers[k], _ = dec.DecodeHeader(v[0])
		}
		m.Text, _ = textPart(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body, "text/plain")
		if again, err := mail.ReadMessage(bytes.NewReader(raw)); err == nil {
			m.HTML, _ = textPart(again.Header.Get("Content-Type"), again.Header.Get("Content-Transfer-Encoding"), again.Body, "text/html")
		}
	}
	ss.sink.add(m)
	ss.sink.mu.Lock()
	f := ss.sink.beforeAccept
	ss.sink.mu.Unlock()
	if f != nil {
		f(m)
	}
	return nil
}

// textPart returns the first part of a message of type want (text/plain,
// text/html), decoded.
func textPart(contentType, encoding string, body io.Reader, want string) (string, error) {
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		mediaType = "text/plain"
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err != nil {
				return "", errors.New("no " + want + " part")
			}
			if t, err := textPart(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p, want); err == nil {
				return t, nil
			}
		}
	}
	if mediaType != want {
		return "", errors.New("not " + want)
	}
	var r io.Reader = body
	switch strings.ToLower(encoding) {
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, &crlfStripper{r: body})
	}
	b, err := io.ReadAll(r)
	// Mail lines end in CRLF on the wire; people read LF.
	return strings.TrimRight(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n"), err
}

// crlfStripper drops line breaks so base64 bodies wrapped at 76 columns decode.
type crlfStripper struct{ r io.Reader }

func (c *crlfStripper) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	out := p[:0]
	for _, b := range p[:n] {
		if b != '\r' && b != '\n' {
			out = append(out, b)
		}
	}
	return len(out), err
}
