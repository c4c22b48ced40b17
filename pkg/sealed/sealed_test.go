package sealed

import (
	"bytes"
	"errors"
	"testing"
)

func TestValuesSealedBeforeARotationStillOpenAfterIt(t *testing.T) {
	ks, err := NewKeysetJSON()
	if err != nil {
		t.Fatal(err)
	}
	box, err := FromJSON(ks)
	if err != nil {
		t.Fatal(err)
	}
	answers := []byte(`{"cancer_free_years": 4, "severe_organ_disease": true}`)
	old, err := box.Seal(answers, "quote:q1:screening")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(old, []byte("cancer")) {
		t.Fatal("the sealed value holds the plaintext")
	}
	again, _ := box.Seal(answers, "quote:q1:screening")
	if bytes.Equal(old, again) {
		t.Fatal("two seals of one value are equal: the data key is not fresh")
	}

	rotatedJSON, err := RotateJSON(ks)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := FromJSON(rotatedJSON)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := rotated.Open(old, "quote:q1:screening"); err != nil || !bytes.Equal(got, answers) {
		t.Fatalf("a value sealed before the rotation: %q, %v", got, err)
	}
	fresh, _ := rotated.Seal(answers, "quote:q2:screening")
	if _, err := box.Open(fresh, "quote:q2:screening"); err == nil {
		t.Fatal("the old keyset opens a value sealed with the new primary key")
	}
	if _, err := rotated.Open(old, "quote:q2:screening"); err == nil {
		t.Fatal("a value opened in another record's context")
	}
	other, _ := NewKeysetJSON()
	otherBox, _ := FromJSON(other)
	if _, err := otherBox.Open(old, "quote:q1:screening"); err == nil {
		t.Fatal("another keyset opened the value")
	}
	if _, err := FromJSON(""); !errors.Is(err, ErrNoKeyset) {
		t.Fatalf("no keyset: %v", err)
	}
}
