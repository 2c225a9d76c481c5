package printers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/client-go/util/jsonpath"
	"sigs.k8s.io/yaml"
)

// Options choose how pods are printed.
type Options struct {
	// Output is -o: "" (the table), wide, json, yaml, name,
	// jsonpath=TEMPLATE or custom-columns=SPEC.
	Output string
	// NoHeaders is --no-headers (tables and custom columns).
	NoHeaders bool
	// Namespace adds the NAMESPACE column (kubectl's -A).
	Namespace bool
	// IP adds the IP column to the plain table (peapod ps).
	IP bool
	// Single prints one named pod as an object rather than a v1 List (json,
	// yaml, jsonpath), as `kubectl get pod NAME` does.
	Single bool
	// Now is the time ages are computed from (zero: time.Now()).
	Now time.Time
}

// Printer prints pods in one format.
type Printer struct {
	o Options
	// kind is table, wide, json, yaml, name, jsonpath or custom-columns.
	kind string
	// tmpl is the parsed jsonpath template.
	tmpl *jsonpath.JSONPath
	// columns are the parsed custom columns.
	columns []column
}

// column is one custom column.
type column struct {
	header string
	path   *jsonpath.JSONPath
}

// New checks the output format (a jsonpath or custom-columns spec is
// parsed here, before any pod is looked at) and returns its printer.
func New(o Options) (*Printer, error) {
	p := &Printer{o: o}
	kind, arg, _ := strings.Cut(o.Output, "=")
	switch kind {
	case "":
		p.kind = "table"
	case "wide", "json", "yaml", "name":
		if arg != "" {
			return nil, fmt.Errorf("output format %q takes no argument", kind)
		}
		p.kind = kind
	case "jsonpath":
		if arg == "" {
			return nil, fmt.Errorf("jsonpath template format specified but no template given")
		}
		j := jsonpath.New("out").AllowMissingKeys(true)
		if err := j.Parse(arg); err != nil {
			return nil, fmt.Errorf("error parsing jsonpath %s, %w", arg, err)
		}
		p.kind, p.tmpl = kind, j
	case "custom-columns":
		if arg == "" {
			return nil, fmt.Errorf("custom-columns format specified but no custom columns given")
		}
		cols, err := parseColumns(arg)
		if err != nil {
			return nil, err
		}
		p.kind, p.columns = kind, cols
	default:
		return nil, fmt.Errorf("unable to match a printer suitable for the output format %q, allowed formats are: custom-columns,json,jsonpath,name,wide,yaml", o.Output)
	}
	return p, nil
}

// Human reports a table format (headers, one row per pod).
func (p *Printer) Human() bool {
	return p.kind == "table" || p.kind == "wide" || p.kind == "custom-columns"
}

// relaxed accepts kubectl's relaxed column paths: a.b, .a.b, {a.b}, {.a.b}.
var relaxed = regexp.MustCompile(`^\{\.?([^{}]+)\}$|^\.?([^{}]+)$`)

func parseColumns(spec string) ([]column, error) {
	var cols []column
	for _, part := range strings.Split(spec, ",") {
		header, expr, ok := strings.Cut(part, ":")
		if !ok || header == "" {
			return nil, fmt.Errorf("unexpected custom-columns spec: %s, expected <header>:<json-path-expr>", part)
		}
		m := relaxed.FindStringSubmatch(expr)
		if m == nil {
			return nil, fmt.Errorf("custom-columns %s: unexpected path string %q, expected a 'name1.name2' or '.name1.name2' or '{name1.name2}' or '{.name1.name2}'", header, expr)
		}
		field := m[1]
		if field == "" {
			field = m[2]
		}
		j := jsonpath.New(header).AllowMissingKeys(true)
		if err := j.Parse("{." + field + "}"); err != nil {
			return nil, fmt.Errorf("custom-columns %s: error parsing %q: %w", header, expr, err)
		}
		cols = append(cols, column{header: header, path: j})
	}
	return cols, nil
}

// Print prints the pods; header controls the header line of table
// formats (a watch prints it once).
func (p *Printer) Print(w io.Writer, pods []Pod, header bool) error {
	now := p.o.Now
	if now.IsZero() {
		now = time.Now()
	}
	header = header && !p.o.NoHeaders
	switch p.kind {
	case "table", "wide":
		return p.printTable(w, pods, header, now)
	case "name":
		for _, pd := range pods {
			if _, err := fmt.Fprintf(w, "pod/%s\n", pd.Pod.Name); err != nil {
				return err
			}
		}
		return nil
	case "custom-columns":
		return p.printColumns(w, pods, header)
	}
	obj, err := p.object(pods)
	if err != nil {
		return err
	}
	switch p.kind {
	case "json":
		b, err := json.MarshalIndent(obj, "", "    ")
		if err != nil {
			return fmt.Errorf("failed to encode as JSON: %w", err)
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case "yaml":
		b, err := yaml.Marshal(obj)
		if err != nil {
			return fmt.Errorf("failed to encode as YAML: %w", err)
		}
		_, err = w.Write(b)
		return err
	default: // jsonpath
		if err := p.tmpl.Execute(w, obj); err != nil {
			return fmt.Errorf("error executing jsonpath %q: %w", strings.TrimPrefix(p.o.Output, "jsonpath="), err)
		}
		return nil
	}
}

// object is what json, yaml and jsonpath see: the pod, or a v1 List of
// them, as generic JSON (so keys sort and jsonpath walks JSON names, as
// kubectl's unstructured objects do).
func (p *Printer) object(pods []Pod) (any, error) {
	items := make([]any, 0, len(pods))
	for _, pd := range pods {
		u, err := ToUnstructured(pd.Pod)
		if err != nil {
			return nil, err
		}
		items = append(items, u)
	}
	if p.o.Single && len(items) == 1 {
		return items[0], nil
	}
	return map[string]any{"apiVersion": "v1", "kind": "List", "items": items,
		"metadata": map[string]any{"resourceVersion": ""}}, nil
}

// ToUnstructured is v as generic JSON values (numbers kept exact).
func ToUnstructured(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("failed to encode: %w", err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("failed to decode: %w", err)
	}
	return m, nil
}

// newTabWriter is kubectl's table writer.
func newTabWriter(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 10, 4, 3, ' ', 0) }

func (p *Printer) printTable(w io.Writer, pods []Pod, header bool, now time.Time) error {
	tw := newTabWriter(w)
	wide := p.kind == "wide"
	if header {
		var h []string
		if p.o.Namespace {
			h = append(h, "NAMESPACE")
		}
		h = append(h, "NAME", "READY", "STATUS", "RESTARTS", "AGE")
		if wide {
			h = append(h, "IP", "NODE", "NOMINATED NODE", "READINESS GATES")
		} else if p.o.IP {
			h = append(h, "IP")
		}
		fmt.Fprintln(tw, strings.Join(h, "\t"))
	}
	for _, pd := range pods {
		r := PodRow(pd.Pod, now)
		if pd.Status != "" {
			r.Status = pd.Status
		}
		var c []string
		if p.o.Namespace {
			c = append(c, pd.Pod.Namespace)
		}
		c = append(c, r.Name, r.Ready, r.Status, r.Restarts, r.Age)
		if wide {
			c = append(c, r.IP, r.Node, r.NominatedNode, r.ReadinessGates)
		} else if p.o.IP {
			c = append(c, r.IP)
		}
		fmt.Fprintln(tw, strings.Join(c, "\t"))
	}
	return tw.Flush()
}

func (p *Printer) printColumns(w io.Writer, pods []Pod, header bool) error {
	tw := newTabWriter(w)
	if header {
		var h []string
		for _, c := range p.columns {
			h = append(h, c.header)
		}
		fmt.Fprintln(tw, strings.Join(h, "\t"))
	}
	for _, pd := range pods {
		u, err := ToUnstructured(pd.Pod)
		if err != nil {
			return err
		}
		var cells []string
		for _, c := range p.columns {
			res, err := c.path.FindResults(u)
			if err != nil {
				return fmt.Errorf("custom-columns %s: %w", c.header, err)
			}
			var vals []string
			for _, r := range res {
				for _, v := range r {
					vals = append(vals, escapeTerminal(fmt.Sprint(v.Interface())))
				}
			}
			if len(vals) == 0 {
				vals = []string{"<none>"}
			}
			cells = append(cells, strings.Join(vals, ","))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// escapeTerminal keeps a value from moving the cursor or breaking a row:
// control characters print as their Go escapes.
func escapeTerminal(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if isControl(r) {
			q := fmt.Sprintf("%q", string(r))
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

// Each returns a printer that prints every pod as an object of its own
// (a watch prints each change so).
func (p *Printer) Each() *Printer {
	c := *p
	c.o.Single = true
	return &c
}
