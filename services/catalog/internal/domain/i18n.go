package domain

import "strings"

// Languages the catalog is written in; English is the fallback.
var Languages = []string{"en", "ko", "ja", "zh"}

// Text is one text in several languages.
type Text map[string]string

// In returns the text in lang, or in English when lang is missing.
func (t Text) In(lang string) string {
	if s := t[lang]; s != "" {
		return s
	}
	return t["en"]
}

// PickLanguage chooses the display language from ?lang= (wins) or an
// Accept-Language header: the first supported tag, else English.
func PickLanguage(param, acceptLanguage string) string {
	if l := baseTag(param); supported(l) {
		return l
	}
	for _, part := range strings.Split(acceptLanguage, ",") {
		tag, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		if l := baseTag(tag); supported(l) {
			return l
		}
	}
	return "en"
}

func baseTag(tag string) string {
	tag = strings.ToLower(strings.TrimSpace(tag))
	base, _, _ := strings.Cut(strings.ReplaceAll(tag, "_", "-"), "-")
	return base
}

func supported(l string) bool {
	for _, s := range Languages {
		if s == l {
			return true
		}
	}
	return false
}

// ConditionNames are the conditions' names in every language.
var ConditionNames = map[string]Text{
	"stroke":              {"en": "Stroke", "ja": "脳卒中", "ko": "뇌졸중", "zh": "中风"},
	"spinal_cord_injury":  {"en": "Spinal cord injury", "ja": "脊髄損傷", "ko": "척수 손상", "zh": "脊髓损伤"},
	"parkinsons":          {"en": "Parkinson's disease", "ja": "パーキンソン病", "ko": "파킨슨병", "zh": "帕金森病"},
	"knee_osteoarthritis": {"en": "Knee osteoarthritis", "ja": "変形性膝関節症", "ko": "무릎 골관절염", "zh": "膝骨关节炎"},
}
