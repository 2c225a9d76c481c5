package probes

import (
	"regexp"
	"testing"
)

// TestNameMatchersAgreeWithKubernetesPatterns checks the hand-written
// matchers against the apimachinery patterns they replace.
func TestNameMatchersAgreeWithKubernetesPatterns(t *testing.T) {
	header := regexp.MustCompile(`^[-A-Za-z0-9]+$`)
	svc := regexp.MustCompile(`^[a-z0-9]([a-z0-9]|-[a-z0-9])*$`)
	letter := regexp.MustCompile(`[a-z]`)
	inputs := []string{"", "-", "a", "A", "0", "http", "HTTP", "web-1", "web--1", "-web", "web-", "123", "1-2",
		"a_b", "a.b", "X-Custom-Header", "abcdefghijklmno", "abcdefghijklmnop", "a b", "é", "Z9-", "liveness-port"}
	for _, s := range inputs {
		if got, want := isHTTPHeaderName(s), header.MatchString(s); got != want {
			t.Errorf("isHTTPHeaderName(%q) = %v, want %v", s, got, want)
		}
		want := len(s) <= 15 && svc.MatchString(s) && letter.MatchString(s)
		if got := isIANASvcName(s); got != want {
			t.Errorf("isIANASvcName(%q) = %v, want %v", s, got, want)
		}
	}
}
