package money

import "testing"

func BenchmarkConvertJPYToUSD(b *testing.B) {
	rate, _ := ParseRate(USD, JPY, "151.20")
	for i := 0; b.Loop(); i++ {
		if _, err := rate.Convert(Yen(int64(3_000_000 + i))); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFormat(b *testing.B) {
	m := Yen(3_000_000)
	for b.Loop() {
		_ = m.Format()
	}
}
