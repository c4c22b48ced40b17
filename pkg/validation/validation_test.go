package validation

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestFieldsFindsEveryFieldWhereverItIsWrapped(t *testing.T) {
	a := FieldError{"dose_cells", "must be one of [1 2]"}
	b := FieldError{"extras[0].code", "is listed twice"}
	c := FieldError{"patient.email", "must be an email address"}
	err := fmt.Errorf("issue: %w", errors.Join(a, Errors{b, c}, errors.New("not a field")))
	if got := Fields(err); !reflect.DeepEqual(got, []FieldError{a, b, c}) {
		t.Fatalf("Fields = %v", got)
	}
	if Fields(errors.New("plain")) != nil || Fields(nil) != nil {
		t.Fatal("an error naming no field yields fields")
	}
}

func TestValidatorReportsEveryFailedCheckInOrder(t *testing.T) {
	var v Validator
	v.Check(true, "ok", "never")
	v.Check(false, "cell_count", "must be positive")
	v.Add(FieldError{"sterility", `must be "pass" or "fail"`})
	err := v.Err()
	want := Errors{{"cell_count", "must be positive"}, {"sterility", `must be "pass" or "fail"`}}
	if !reflect.DeepEqual(err, want) {
		t.Fatalf("Err = %#v", err)
	}
	if err.Error() != `cell_count: must be positive; sterility: must be "pass" or "fail"` {
		t.Fatalf("message %q", err.Error())
	}
	var none Validator
	if none.Err() != nil {
		t.Fatal("a validator with no failures reports an error")
	}
}

func TestTextIsBoundedAndPrintable(t *testing.T) {
	var v Validator
	v.Text("patient.name", "Kim Min-jun 김민준", 200, false)
	v.Text("note", "MRI reviewed.\nHigher dose advised.", 2000, true)
	if err := v.Err(); err != nil {
		t.Fatalf("plain text refused: %v", err)
	}
	for _, c := range []struct {
		s         string
		max       int
		multiline bool
	}{
		{strings.Repeat("가", 201), 200, false}, // counted in characters, not bytes
		{"Kim\x00", 200, false},
		{"Kim\nMin-jun", 200, false},
		{"bell\a", 2000, true},
		{"\xff\xfe", 200, false},
	} {
		var v Validator
		v.Text("f", c.s, c.max, c.multiline)
		if fields := Fields(v.Err()); len(fields) != 1 || fields[0].Field != "f" {
			t.Errorf("%q accepted: %v", c.s, fields)
		}
	}
	var ok Validator
	ok.Text("f", strings.Repeat("가", 200), 200, false)
	if ok.Err() != nil {
		t.Fatal("200 characters refused at a 200 limit")
	}
}
