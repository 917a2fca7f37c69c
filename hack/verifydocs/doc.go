// Package verifydocs holds the documentation link check (`make verify-docs`,
// also run by `make test`): every relative link and #anchor in README.md and
// docs/*.md must resolve, and so must every alert's runbook_url.
package verifydocs
