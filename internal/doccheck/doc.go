// Package doccheck holds tests that keep README.md and docs/*.md honest: links resolve, the README stays short, and the docs describe what is.
package doccheck
