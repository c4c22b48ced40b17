package devstack

import (
	"fmt"
	"net/smtp"
	"testing"
)

// A sink told to keep the latest messages drops the oldest: make run's
// sink under a load test no longer grows with every email ever sent.
func TestTheMailSinkKeepsItsLatestMessages(t *testing.T) {
	sink, err := StartMailSink("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	sink.KeepLast(3)
	for i := range 10 {
		msg := fmt.Sprintf("To: a@example.com\r\nSubject: mail %d\r\n\r\nbody\r\n", i)
		if err := smtp.SendMail(sink.Addr(), nil, "care@saisei.health", []string{"a@example.com"}, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	got := sink.Messages()
	if len(got) < 3 || len(got) > 6 || got[len(got)-1].Subject != "mail 9" || got[len(got)-3].Subject != "mail 7" {
		subjects := make([]string, len(got))
		for i, m := range got {
			subjects[i] = m.Subject
		}
		t.Fatalf("kept %v, want the latest 3 to 6 ending with mail 7, 8, 9", subjects)
	}
	if c := sink.Connections(); c != 10 {
		t.Fatalf("%d connections counted, want 10", c)
	}
}
