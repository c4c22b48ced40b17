package validation

import (
	"errors"
	"fmt"
	"reflect"
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
