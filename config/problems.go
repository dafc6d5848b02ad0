package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong with a configuration file: a value of the
// wrong type, an unknown key, or a value that validation refuses.
type Problem struct {
	// Line is the 1-based line of the key or value in the file, 0 when the
	// problem is about something the file leaves out.
	Line int `json:"line"`
	// Path names the key, as in identity.thresholds.spam or
	// domains[0].users[1].networks; "" for the document as a whole.
	Path string `json:"path"`
	// Message says what is wrong.
	Message string `json:"message"`
	// Fix says what is expected instead.
	Fix string `json:"fix"`

	// pathInMessage: Message already names the key (validation messages
	// do), so String does not repeat Path.
	pathInMessage bool
}

// String formats the problem on one line: "line 6: limits.max_recipients:
// "lots" is not a whole number; expected a whole number, e.g. 100".
func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Path != "" && !p.pathInMessage {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	if p.Fix != "" && !strings.Contains(p.Message, p.Fix) {
		b.WriteString("; ")
		b.WriteString(p.Fix)
	}
	return b.String()
}

// Problems is the error Parse and Load return for a configuration that
// cannot be used: every problem found in one pass, in the order of the file
// for decoding problems, then validation's. It matches ErrInvalid with
// errors.Is.
type Problems []Problem

// Error joins the problems, one a line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Is reports whether target is ErrInvalid.
func (ps Problems) Is(target error) bool { return target == ErrInvalid }

// ProblemsOf returns the problems err carries: those of a Problems error, or
// err's text as one problem without a line (a file that cannot be read).
func ProblemsOf(err error) []Problem {
	if err == nil {
		return nil
	}
	var ps Problems
	if errors.As(err, &ps) {
		return ps
	}
	return []Problem{{Message: err.Error()}}
}

// maxWalkNodes bounds the nodes the schema walk visits, aliases included,
// so a document whose aliases expand exponentially fails fast.
const maxWalkNodes = 200_000

// schemaWalk checks a YAML node tree against the Go types of the schema,
// recording every unknown key and every value of the wrong type, and
// removing them from the tree so the rest decodes (their keys take their
// defaults). It records the line of every key path it sees.
type schemaWalk struct {
	problems []Problem
	lines    map[string]int
	visited  int
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// walk checks n against type t at path. It returns false when n cannot be
// decoded into t and must be removed.
func (w *schemaWalk) walk(n *yaml.Node, t reflect.Type, path string) bool {
	w.visited++
	if w.visited > maxWalkNodes {
		if w.visited == maxWalkNodes+1 {
			w.problems = append(w.problems, Problem{Line: n.Line, Path: path, Message: "the document is too large or its aliases expand too far", Fix: "write the configuration out without deeply nested aliases"})
		}
		return false
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return w.walk(n.Alias, t, path)
	}
	if _, ok := w.lines[path]; !ok && path != "" {
		w.lines[path] = n.Line
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if isNull(n) {
		return true
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			// The type's own message says what is wrong: what is
			// expected after a colon.
			msg, fix, ok := strings.Cut(stripLine(err.Error()), ": ")
			if !ok {
				fix = expected(t, path)
			}
			w.problems = append(w.problems, Problem{Line: n.Line, Path: path, Message: msg, Fix: fix})
			return false
		}
		return true
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			w.wrongKind(n, t, path)
			return false
		}
		fields := yamlFields(t)
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "<<" && k.Kind == yaml.ScalarNode {
				i += 2 // a merge key: decoding checks what it brings in
				continue
			}
			kp := joinPath(path, k.Value)
			if w.duplicate(seen, k, kp) {
				n.Content = append(n.Content[:i], n.Content[i+2:]...)
				continue
			}
			ft, ok := fields[k.Value]
			if !ok {
				w.problems = append(w.problems, Problem{
					Line:    k.Line,
					Path:    kp,
					Message: fmt.Sprintf("unknown key %q (check the spelling and the indentation)", k.Value),
					Fix:     "use one of the keys known here: " + knownKeys(t),
				})
				n.Content = append(n.Content[:i], n.Content[i+2:]...)
				continue
			}
			if _, seen := w.lines[kp]; !seen {
				w.lines[kp] = k.Line
			}
			if !w.walk(v, ft, kp) {
				n.Content = append(n.Content[:i], n.Content[i+2:]...)
				continue
			}
			i += 2
		}
		return true
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 && n.Kind == yaml.ScalarNode {
			return w.scalar(n, t, path)
		}
		if n.Kind != yaml.SequenceNode {
			w.wrongKind(n, t, path)
			return false
		}
		for i, item := range n.Content {
			if !w.walk(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i)) {
				// Keep the indexes of the items after it: an empty
				// item stands in for the bad one.
				n.Content[i] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: item.Line, Column: item.Column}
			}
		}
		return true
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.wrongKind(n, t, path)
			return false
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); {
			k, v := n.Content[i], n.Content[i+1]
			kp := joinPath(path, k.Value)
			if w.duplicate(seen, k, kp) || !w.walk(k, t.Key(), kp) || !w.walk(v, t.Elem(), kp) {
				n.Content = append(n.Content[:i], n.Content[i+2:]...)
				continue
			}
			i += 2
		}
		return true
	case reflect.Interface:
		return true
	default:
		return w.scalar(n, t, path)
	}
}

// duplicate records a key given twice in one mapping, which the decoder
// refuses.
func (w *schemaWalk) duplicate(seen map[string]int, k *yaml.Node, path string) bool {
	if k.Kind != yaml.ScalarNode {
		return false
	}
	if first, ok := seen[k.Value]; ok {
		w.problems = append(w.problems, Problem{Line: k.Line, Path: path, Message: fmt.Sprintf("key %q is given twice (first at line %d)", k.Value, first), Fix: "keep one of them; check the indentation of the lines above"})
		return true
	}
	seen[k.Value] = k.Line
	return false
}

// scalar checks a value of a basic type by decoding it alone.
func (w *schemaWalk) scalar(n *yaml.Node, t reflect.Type, path string) bool {
	if n.Kind != yaml.ScalarNode {
		w.wrongKind(n, t, path)
		return false
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		w.problems = append(w.problems, Problem{
			Line:    n.Line,
			Path:    path,
			Message: fmt.Sprintf("%q is not %s", n.Value, describe(t)),
			Fix:     expected(t, path),
		})
		return false
	}
	return true
}

func (w *schemaWalk) wrongKind(n *yaml.Node, t reflect.Type, path string) {
	what := map[yaml.Kind]string{yaml.MappingNode: "a mapping of keys", yaml.SequenceNode: "a list", yaml.ScalarNode: fmt.Sprintf("the value %q", n.Value)}[n.Kind]
	if what == "" {
		what = "this value"
	}
	w.problems = append(w.problems, Problem{
		Line:    n.Line,
		Path:    path,
		Message: fmt.Sprintf("%s is not %s", what, describe(t)),
		Fix:     expected(t, path),
	})
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// describe names what a value of type t is, for "X is not <describe>".
func describe(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[Duration]():
		return "a duration"
	case reflect.TypeFor[FreeSpace]():
		return "a size or share of the disk"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number of 0 or more"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a single text value"
	case reflect.Struct, reflect.Map:
		return "a mapping of keys"
	case reflect.Slice, reflect.Array:
		return "a list"
	}
	return "a value of the expected type"
}

// expected is the Fix of a value that does not decode into type t.
func expected(t reflect.Type, path string) string {
	switch t {
	case reflect.TypeFor[Duration]():
		return `expected a duration like "90s", "10m", "2h" or "30d"`
	case reflect.TypeFor[FreeSpace]():
		return `expected a size like "256MiB", a share like "2%", or 0`
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "expected a whole number written in digits, e.g. 5"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "expected a whole number of 0 or more written in digits, e.g. 5"
	case reflect.Float32, reflect.Float64:
		return "expected a number written in digits, e.g. 0.5"
	case reflect.Bool:
		return "expected true or false"
	case reflect.String:
		return "expected one text value; quote it if it holds \": \" or starts with a character like [ { * & ! |"
	case reflect.Struct:
		return fmt.Sprintf("expected keys indented below %s: %s", lastKey(path), knownKeys(t))
	case reflect.Map:
		return fmt.Sprintf("expected \"name: value\" lines indented below %s", lastKey(path))
	case reflect.Slice, reflect.Array:
		return fmt.Sprintf("expected a list below %s: lines starting with \"- \", or [a, b] on one line", lastKey(path))
	}
	return ""
}

func lastKey(path string) string {
	if path == "" {
		return "the top"
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[i+1:]
	}
	return path
}

// yamlFields maps the YAML keys of struct t, inline fields included, to
// their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(","+opts+",", ",inline,") {
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// knownKeys lists struct t's keys in the order of the schema.
func knownKeys(t reflect.Type) string {
	var keys []string
	var add func(reflect.Type)
	add = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("yaml")
			if tag == "-" || !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if strings.Contains(","+opts+",", ",inline,") {
				add(f.Type)
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			keys = append(keys, name)
		}
	}
	add(t)
	return strings.Join(keys, ", ")
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var lineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)

// stripLine removes a leading "line N: " from a decoder message.
func stripLine(msg string) string {
	return lineRE.ReplaceAllString(msg, "")
}

// syntaxProblem turns the parser's error into a Problem with its line.
func syntaxProblem(err error) Problem {
	msg := err.Error()
	p := Problem{Message: msg, Fix: "check the indentation and quoting around this line"}
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		p.Message = msg[len(m[0]):]
	} else {
		p.Message = strings.TrimPrefix(msg, "yaml: ")
	}
	return p
}

// decodeProblems turns the decoder's own errors (a last resort: the
// schema walk finds the same ones first) into Problems.
func decodeProblems(err error) []Problem {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return []Problem{syntaxProblem(err)}
	}
	var out []Problem
	for _, e := range te.Errors {
		out = append(out, syntaxProblem(errors.New(yamlError(errors.New(e)))))
	}
	return out
}

// validationPathRE matches the key a validation message starts with, as in
// "domains[0] (out.example.net).users[1] (web1).networks" or
// "limits.max_recipients".
var validationPathRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(?:\[\d+\])?(?: \([^()]*\))?(?:\.[A-Za-z_][A-Za-z0-9_]*(?:\[\d+\])?(?: \([^()]*\))?)*`)

var nameInPathRE = regexp.MustCompile(` \([^()]*\)`)

// validationProblems splits Validate's joined error into Problems, finding
// each one's key path in its text and its line in lines.
func validationProblems(err error, lines map[string]int) []Problem {
	var out []Problem
	for _, text := range strings.Split(err.Error(), "\n") {
		text = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(text), ErrInvalid.Error()+": "))
		if text == "" {
			continue
		}
		p := Problem{Message: text, pathInMessage: true}
		raw := validationPathRE.FindString(text)
		path := nameInPathRE.ReplaceAllString(raw, "")
		// "listeners[0] (smtp): address ..." names the key after the
		// colon: take it when the file has it.
		rest := strings.TrimLeft(text[len(raw):], ": ")
		if word, _, _ := strings.Cut(rest, " "); word != "" {
			for _, k := range []string{word, word + "s"} { // "network" of networks
				if _, ok := lines[joinPath(path, k)]; ok {
					path = joinPath(path, k)
					break
				}
			}
		}
		p.Path = path
		p.Line = lineOf(lines, path)
		// Validation says what is wrong, then how to fix it, after a colon.
		if i := strings.LastIndex(text, ": "); i >= 0 && i+2 < len(text) {
			p.Fix = text[i+2:]
		} else {
			p.Fix = text
		}
		out = append(out, p)
	}
	return out
}

// lineOf finds the line of path, or of its nearest ancestor in the file.
func lineOf(lines map[string]int, path string) int {
	for path != "" {
		if l, ok := lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// within reports whether path is p or below it.
func within(path, p string) bool {
	return path == p || strings.HasPrefix(path, p+".") || strings.HasPrefix(path, p+"[")
}

// consequence reports whether validation problem v only follows from a
// decoding problem d: the key d removed took its default (or an item became
// empty), which validation may then refuse.
func consequence(v, d Problem) bool {
	if within(v.Path, d.Path) {
		return true
	}
	return within(d.Path, v.Path) && strings.Contains(v.Message, lastKey(strings.TrimRight(d.Path, "]0123456789[")))
}

// sortByLine orders problems as the file does; those without a line last.
func sortByLine(ps Problems) {
	sort.SliceStable(ps, func(i, j int) bool {
		li, lj := ps[i].Line, ps[j].Line
		if li == 0 || lj == 0 {
			return lj == 0 && li != 0
		}
		return li < lj
	})
}
