package stripefake

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The Search API (https://docs.stripe.com/search) for customers and
// products, in the subset of the query language the operator uses: clauses
// field:'value' or metadata['key']:'value' joined by AND.
//
// Search is eventually consistent: "Don't use search for read-after-write
// flows ... data is generally searchable in under a minute, but propagation
// of new or updated data can be delayed". The fake models that with
// Options.SearchIndexDelay on its clock: an object created or changed less
// than that long ago is not found at all (stricter than Stripe, which may
// still find the old version), so a test proves that correctness never
// depends on Search. Results page with `page`/`next_page`, 10 by default
// and at most 100.

var clauseRE = regexp.MustCompile(`^\s*(metadata\[\s*['"]([^'"]+)['"]\s*\]|[a-z_]+)\s*:\s*['"]([^'"]*)['"]\s*$`)

type searchClause struct{ field, metaKey, value string }

func parseSearchQuery(q string) ([]searchClause, *apiError) {
	if strings.TrimSpace(q) == "" {
		return nil, invalid("query", "Missing required param: query.")
	}
	var out []searchClause
	for _, part := range strings.Split(q, " AND ") {
		m := clauseRE.FindStringSubmatch(part)
		if m == nil {
			return nil, invalid("query", "The query %q could not be parsed (this test-mode Stripe supports field:'value' and metadata['key']:'value' joined by AND).", q)
		}
		c := searchClause{field: m[1], metaKey: m[2], value: m[3]}
		if c.metaKey != "" {
			c.field = "metadata"
		}
		out = append(out, c)
	}
	return out, nil
}

func (s *Server) searchable(indexedAt int64) bool {
	return s.now.Unix() >= indexedAt+int64(s.opts.SearchIndexDelay/time.Second)
}

func matches(clauses []searchClause, fields map[string]string, meta map[string]string) bool {
	for _, c := range clauses {
		if c.field == "metadata" {
			if meta[c.metaKey] != c.value {
				return false
			}
			continue
		}
		if fields[c.field] != c.value {
			return false
		}
	}
	return true
}

func (s *Server) search(r *request, url string, ids []string, match func(id string, clauses []searchClause) (map[string]any, bool)) (any, *apiError) {
	if s.searchOff {
		return nil, searchUnavailable()
	}
	q, _ := r.str("query")
	clauses, err := parseSearchQuery(q)
	if err != nil {
		return nil, err
	}
	limit, err := r.limit()
	if err != nil {
		return nil, err
	}
	start := 0
	if p, ok := r.str("page"); ok && p != "" {
		n, perr := strconv.Atoi(strings.TrimPrefix(p, "page_"))
		if perr != nil || n < 0 {
			return nil, invalid("page", "Invalid page token.")
		}
		start = n
	}
	var all []map[string]any
	for i := len(ids) - 1; i >= 0; i-- {
		if obj, ok := match(ids[i], clauses); ok {
			all = append(all, obj)
		}
	}
	end := min(start+int(limit), len(all))
	data := []map[string]any{}
	if start < len(all) {
		data = all[start:end]
	}
	var next any
	if end < len(all) {
		next = "page_" + strconv.Itoa(end)
	}
	return map[string]any{"object": "search_result", "url": url, "has_more": next != nil, "next_page": next,
		"data": data, "total_count": len(all)}, nil
}

func (s *Server) searchCustomers(r *request) (any, *apiError) {
	return s.search(r, "/v1/customers/search", s.order["customer"], func(id string, cl []searchClause) (map[string]any, bool) {
		c := s.customers[id]
		if c.deleted || !s.searchable(c.indexedAt) {
			return nil, false
		}
		return c.json(), matches(cl, map[string]string{"email": c.email, "name": c.name}, c.metadata)
	})
}

func (s *Server) searchProducts(r *request) (any, *apiError) {
	return s.search(r, "/v1/products/search", s.order["product"], func(id string, cl []searchClause) (map[string]any, bool) {
		p := s.products[id]
		if !s.searchable(p.indexedAt) {
			return nil, false
		}
		active := "false"
		if p.active {
			active = "true"
		}
		return p.json(), matches(cl, map[string]string{"name": p.name, "active": active}, p.metadata)
	})
}
