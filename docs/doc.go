// Package docs holds no code: its test checks that the documents name
// tests and files that exist, so a renamed test or a moved file shows up
// as a failing test instead of a stale page.
package docs
