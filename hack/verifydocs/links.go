package verifydocs

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"unicode"
)

// Slug is the anchor GitHub gives a heading: the heading's text (a link keeps
// its text, inline markup is dropped) lowercased, every character that is not
// a letter, a digit, a space, '-' or '_' removed, and spaces turned into '-'.
func Slug(heading string) string {
	heading = inlineLink.ReplaceAllString(heading, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r), r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

var (
	inlineLink  = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
	headingLine = regexp.MustCompile(`^ {0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$`)
	htmlAnchor  = regexp.MustCompile(`<a\s+(?:name|id)="([^"]+)"(?:\s+data-moved-to="([^"]+)")?`)
	// An inline link's target ([text](target) or [text](target "title")),
	// the text possibly spanning lines; and a reference definition.
	linkTarget = regexp.MustCompile(`\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	refDef     = regexp.MustCompile(`(?m)^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$`)
	codeSpan   = regexp.MustCompile("`[^`\n]*`")
)

// Doc is one Markdown file: its anchors and its link targets.
type Doc struct {
	Anchors map[string]bool
	// Moved are anchors kept for links from outside the repository to a
	// section that moved (<a id="x" data-moved-to="docs/page.md#y">), by
	// anchor: where the section is now, relative to this file.
	Moved map[string]string
	Links []Link
}

// Link is one link target and the line it is on.
type Link struct {
	Line   int
	Target string
}

// Parse reads a Markdown file's anchors (headings, numbered as GitHub
// numbers repeated ones: x, x-1, x-2; and <a name/id>) and its link targets,
// ignoring fenced code blocks and code spans.
func Parse(src []byte) Doc {
	d := Doc{Anchors: map[string]bool{}, Moved: map[string]string{}}
	seen := map[string]int{}
	var prose strings.Builder // the text outside fences, line numbers kept
	fence := ""
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimLeft(line, " ")
		if fence == "" && (strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~")) {
			fence = trimmed[:3]
			prose.WriteString("\n")
			continue
		}
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			prose.WriteString("\n")
			continue
		}
		if m := headingLine.FindStringSubmatch(line); m != nil {
			s := Slug(m[2])
			if n := seen[s]; n > 0 {
				d.Anchors[fmt.Sprintf("%s-%d", s, n)] = true
			} else {
				d.Anchors[s] = true
			}
			seen[s]++
		}
		for _, m := range htmlAnchor.FindAllStringSubmatch(line, -1) {
			d.Anchors[m[1]] = true
			if m[2] != "" {
				d.Moved[m[1]] = m[2]
			}
		}
		// Code spans cannot hold links; blank them, keeping the length.
		line = codeSpan.ReplaceAllStringFunc(line, func(s string) string { return strings.Repeat(" ", len(s)) })
		prose.WriteString(line)
		prose.WriteString("\n")
	}
	text := prose.String()
	lineOf := func(off int) int { return strings.Count(text[:off], "\n") + 1 }
	for _, re := range []*regexp.Regexp{linkTarget, refDef} {
		for _, m := range re.FindAllStringSubmatchIndex(text, -1) {
			d.Links = append(d.Links, Link{Line: lineOf(m[2]), Target: text[m[2]:m[3]]})
		}
	}
	sort.SliceStable(d.Links, func(i, j int) bool { return d.Links[i].Line < d.Links[j].Line })
	return d
}

// external reports whether a target leaves the repository (a URL scheme).
func external(target string) bool {
	i := strings.Index(target, ":")
	if i <= 0 {
		return false
	}
	for _, r := range target[:i] {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '+' || r == '.' || r == '-') {
			return false
		}
	}
	return true
}

// Check resolves every relative link of the Markdown files (paths relative
// to root) and returns one message per broken link. A link's path is
// relative to its file's directory (a leading '/' to the repository root);
// an #anchor must be one of the target Markdown file's anchors.
func Check(root string, files []string) ([]string, error) {
	docs := map[string]Doc{}
	load := func(rel string) (Doc, error) {
		if d, ok := docs[rel]; ok {
			return d, nil
		}
		b, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			return Doc{}, err
		}
		d := Parse(b)
		docs[rel] = d
		return d, nil
	}
	var problems []string
	for _, f := range files {
		d, err := load(f)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", f, err)
		}
		for _, l := range d.Links {
			if external(l.Target) {
				continue
			}
			if msg := resolve(root, f, l.Target, load); msg != "" {
				problems = append(problems, fmt.Sprintf("%s:%d: %s: %s", f, l.Line, l.Target, msg))
			}
		}
		moved := make([]string, 0, len(d.Moved))
		for anchor := range d.Moved {
			moved = append(moved, anchor)
		}
		sort.Strings(moved)
		for _, anchor := range moved {
			to := d.Moved[anchor]
			if msg := resolve(root, f, to, load); msg != "" {
				problems = append(problems, fmt.Sprintf("%s: #%s moved to %s: %s", f, anchor, to, msg))
			}
		}
	}
	return problems, nil
}

// resolve returns why target, linked from the file from, does not resolve,
// or "" when it does.
func resolve(root, from, target string, load func(string) (Doc, error)) string {
	path, anchor, _ := strings.Cut(target, "#")
	if i := strings.IndexAny(path, "?"); i >= 0 {
		path = path[:i]
	}
	rel := from
	if path != "" {
		if strings.HasPrefix(path, "/") {
			rel = filepath.Clean(strings.TrimPrefix(path, "/"))
		} else {
			rel = filepath.Clean(filepath.Join(filepath.Dir(from), path))
		}
		if rel == ".." || strings.HasPrefix(rel, "../") {
			return "leaves the repository"
		}
		fi, err := os.Stat(filepath.Join(root, rel))
		if err != nil {
			return "no such file or directory"
		}
		if fi.IsDir() {
			if anchor != "" {
				return "an anchor into a directory"
			}
			return ""
		}
	}
	if anchor == "" {
		return ""
	}
	if !strings.HasSuffix(rel, ".md") {
		return "" // an anchor into a non-Markdown file (a line, say) is not checked
	}
	d, err := load(rel)
	if err != nil {
		return err.Error()
	}
	if !d.Anchors[anchor] {
		return fmt.Sprintf("%s has no heading with the anchor #%s", rel, anchor)
	}
	if to, ok := d.Moved[anchor]; ok {
		// to is relative to rel's directory; say it relative to from's.
		now, err := filepath.Rel(filepath.Dir(from), filepath.Join(filepath.Dir(rel), to))
		if err != nil {
			now = filepath.Join(filepath.Dir(rel), to)
		}
		return fmt.Sprintf("the section moved: link %s instead", filepath.ToSlash(now))
	}
	return ""
}
