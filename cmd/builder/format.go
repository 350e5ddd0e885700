package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
)

// templateFuncs are the functions docker's --format templates have.
var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return "", err
		}
		return strings.TrimSpace(b.String()), nil
	},
	// join takes any list: the JSON documents inspect formats have
	// []any where docker's typed values have []string.
	"join": func(v any, sep string) (string, error) {
		switch l := v.(type) {
		case []string:
			return strings.Join(l, sep), nil
		case []any:
			parts := make([]string, len(l))
			for i, x := range l {
				parts[i] = fmt.Sprint(x)
			}
			return strings.Join(parts, sep), nil
		case nil:
			return "", nil
		}
		return "", fmt.Errorf("join: %T is not a list", v)
	},
	"split": strings.Split,
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"title": func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	},
	"truncate": func(s string, n int) string {
		if len(s) > n {
			return s[:n]
		}
		return s
	},
	"pad": func(s string, before, after int) string {
		return strings.Repeat(" ", before) + s + strings.Repeat(" ", after)
	},
	"println": fmt.Sprintln,
}

// listFormat is a --format of a listing command: "table" (the default
// columns), "table TEMPLATE" (a header and aligned columns), "json" (one
// JSON object per line) or a bare Go template (one line per item).
type listFormat struct {
	tmpl  *template.Template
	table bool
	json  bool
}

// parseListFormat parses f; def is the template of the default table.
func parseListFormat(f, def string) (*listFormat, error) {
	lf := &listFormat{}
	switch {
	case f == "" || f == "table":
		f, lf.table = def, true
	case f == "json":
		lf.json = true
		return lf, nil
	case strings.HasPrefix(f, "table "):
		f, lf.table = strings.TrimPrefix(f, "table "), true
	}
	f = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(f)
	t, err := template.New("format").Funcs(templateFuncs).Option("missingkey=error").Parse(f)
	if err != nil {
		return nil, fmt.Errorf("--format: %w", err)
	}
	lf.tmpl = t
	return lf, nil
}

// write prints items (values whose fields the template names); a table
// starts with a header: header maps every field to its column title.
func (lf *listFormat) write(w io.Writer, items []any, header map[string]string) error {
	if lf.json {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		for _, it := range items {
			if err := enc.Encode(it); err != nil {
				return err
			}
		}
		return nil
	}
	out := w
	var tw *tabwriter.Writer
	if lf.table {
		tw = tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
		out = tw
		if err := lf.tmpl.Execute(tw, header); err != nil {
			return fmt.Errorf("--format: %w", err)
		}
		fmt.Fprintln(tw)
	}
	for _, it := range items {
		if err := lf.tmpl.Execute(out, it); err != nil {
			return fmt.Errorf("--format: %w", err)
		}
		fmt.Fprintln(out)
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}
