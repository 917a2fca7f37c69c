package verifydocs

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// repoRoot is the repository root, two directories up from this package.
const repoRoot = "../.."

// docFiles lists README.md and every Markdown file under docs/.
func docFiles(t *testing.T) []string {
	t.Helper()
	files := []string{"README.md"}
	err := filepath.WalkDir(filepath.Join(repoRoot, "docs"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			rel, err := filepath.Rel(repoRoot, p)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files[1:])
	return files
}

func TestEveryRelativeLinkAndAnchorInTheDocsResolves(t *testing.T) {
	files := docFiles(t)
	if len(files) < 2 {
		t.Fatalf("found only %v: the docs/ directory is missing", files)
	}
	problems, err := Check(repoRoot, files)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// repoURL is where the alert rules' runbook_url annotations point: the
// repository on GitHub, whose files are under blob/main/.
const repoURL = "https://github.com/stripe-operator/stripe-operator"

var runbookURL = regexp.MustCompile(`(?m)^\s*runbook_url:\s*(\S+)\s*$`)

func TestEveryRunbookURLResolves(t *testing.T) {
	for _, rules := range []string{
		"config/prometheus/prometheusrule.yaml",
		"charts/stripe-operator/files/monitoring/prometheusrule.yaml",
	} {
		b, err := os.ReadFile(filepath.Join(repoRoot, rules))
		if err != nil {
			t.Fatal(err)
		}
		urls := runbookURL.FindAllStringSubmatch(string(b), -1)
		if len(urls) == 0 {
			t.Errorf("%s: no runbook_url found", rules)
		}
		load := func(rel string) (Doc, error) {
			b, err := os.ReadFile(filepath.Join(repoRoot, rel))
			return Parse(b), err
		}
		for _, m := range urls {
			u := m[1]
			var target string
			switch {
			case strings.HasPrefix(u, repoURL+"/blob/main/"):
				target = "/" + strings.TrimPrefix(u, repoURL+"/blob/main/")
			case strings.HasPrefix(u, repoURL+"#"):
				target = "/README.md" + strings.TrimPrefix(u, repoURL)
			default:
				t.Errorf("%s: runbook_url %s is not a page of %s", rules, u, repoURL)
				continue
			}
			if msg := resolve(repoRoot, rules, target, load); msg != "" {
				t.Errorf("%s: runbook_url %s: %s", rules, u, msg)
			}
		}
	}
}

func TestSlugFollowsGitHub(t *testing.T) {
	for heading, want := range map[string]string{
		"Set up a fresh machine":                           "set-up-a-fresh-machine",
		"envtest binaries (offline)":                       "envtest-binaries-offline",
		"Local development: `make dev`":                    "local-development-make-dev",
		"Identity, instances, tenants and deletion":        "identity-instances-tenants-and-deletion",
		"Runbook: StripeWebhookServerErrors":               "runbook-stripewebhookservererrors",
		"`kubectl get`":                                    "kubectl-get",
		"Running against a cluster and Stripe's test mode": "running-against-a-cluster-and-stripes-test-mode",
		"The test-mode Stripe and Stripe":                  "the-test-mode-stripe-and-stripe",
		"A [linked](x.md) heading_with_underscore":         "a-linked-heading_with_underscore",
		"Ratios — and limits":                              "ratios--and-limits",
	} {
		if got := Slug(heading); got != want {
			t.Errorf("Slug(%q) = %q, want %q", heading, got, want)
		}
	}
}

// TestCheckFindsBrokenLinks: the check itself fails on a missing file, a
// missing anchor (in the same file and in another), and a path that leaves
// the repository, and passes links inside code.
func TestCheckFindsBrokenLinks(t *testing.T) {
	root := t.TempDir()
	write := func(name, text string) {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("README.md", strings.Join([]string{
		"# Top",
		"## Same",
		"## Same",
		"[ok](#same-1) [ok](docs/a.md#deep) [ok](docs/a.md) [ok](https://x.example/#nope) [ok](docs)",
		"[bad](#same-2) [bad](docs/missing.md) [bad](docs/a.md#shallow)",
		"[split",
		"text](#nowhere)",
		"`[code](#not-checked)`",
		"```",
		"[fenced](#not-checked) ",
		"# Fenced heading",
		"```",
		"[bad](#fenced-heading)",
		"[ref]: ../outside.md",
		`<a id="old" data-moved-to="docs/a.md#deep"></a>`,
		`<a id="gone" data-moved-to="docs/a.md#nowhere"></a>`,
		"[bad](#old)",
	}, "\n"))
	write("docs/a.md", "# A\n### Deep\n[back](../README.md#top)\n[moved](../README.md#old)\n")
	problems, err := Check(root, []string{"README.md", "docs/a.md"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"README.md:5: #same-2: README.md has no heading with the anchor #same-2",
		"README.md:5: docs/missing.md: no such file or directory",
		"README.md:5: docs/a.md#shallow: docs/a.md has no heading with the anchor #shallow",
		"README.md:7: #nowhere: README.md has no heading with the anchor #nowhere",
		"README.md:13: #fenced-heading: README.md has no heading with the anchor #fenced-heading",
		"README.md:14: ../outside.md: leaves the repository",
		"README.md:17: #old: the section moved: link docs/a.md#deep instead",
		"README.md: #gone moved to docs/a.md#nowhere: docs/a.md has no heading with the anchor #nowhere",
		"docs/a.md:4: ../README.md#old: the section moved: link a.md#deep instead",
	}
	if strings.Join(problems, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(problems, "\n"), strings.Join(want, "\n"))
	}
}
