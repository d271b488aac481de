// --config-file: etcd's YAML configuration file, read by a small parser of
// the subset such files use (comments, scalars plain or quoted, nested
// maps, lists in brackets or as "- item" lines); anything else is an error
// naming its line.
package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// yamlValue is one leaf of the file: a scalar, a list, or nothing (a key
// without a value, which leaves the default).
type yamlValue struct {
	line   int
	null   bool
	isList bool
	scalar string
	list   []string
}

// yamlLine is one meaningful line: its indentation and its text without
// the comment.
type yamlLine struct {
	n      int
	indent int
	text   string
}

// readConfigFile reads the config file from disk.
func readConfigFile(path string) ([]byte, error) { return os.ReadFile(path) }

// loadConfigFile is the configuration read from the config file at path;
// given and envKeys (what the command line and the environment also said)
// are only named in the log as ignored, as etcd ignores them.
func loadConfigFile(path string, readFile func(string) ([]byte, error), given map[string]string, envKeys []string) (*config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, &exitError{1, fmt.Errorf("--config-file: %w", err)}
	}
	values, err := parseYAML(string(data))
	if err != nil {
		return nil, &exitError{1, fmt.Errorf("--config-file %s: %w", path, err)}
	}
	c := defaultConfig()
	c.ConfigFile = path
	byKey := map[string]*flagDef{}
	for i := range etcdFlags {
		if k := etcdFlags[i].yamlKey(); k != "" {
			byKey[k] = &etcdFlags[i]
		}
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return values[keys[i]].line < values[keys[j]].line })
	for _, k := range keys {
		v := values[k]
		d := byKey[k]
		if d == nil {
			c.notes = append(c.notes, logNote{warn: true, msg: "config file: unknown key ignored",
				args: []any{"file", path, "line", v.line, "key", k}})
			continue
		}
		if v.null {
			continue
		}
		s := v.scalar
		if v.isList {
			if d.isBool() {
				return nil, &exitError{1, fmt.Errorf("--config-file %s line %d: %s must be true or false, not a list", path, v.line, k)}
			}
			s = strings.Join(v.list, ",")
		} else if d.isBool() {
			s = yamlBool(s)
		} else if _, err := strconv.ParseInt(s, 10, 64); err == nil && d.To == nil && d.Kind == kindDuration {
			s += "ns" // etcd's file gives durations in nanoseconds
		}
		if err := d.set(c, s); err != nil {
			return nil, &exitError{1, fmt.Errorf("--config-file %s line %d: invalid value %q for %s: %w", path, v.line, s, k, err)}
		}
		c.given[d.Name] = fmt.Sprintf("%s:%d", path, v.line)
	}
	var ignored []string
	for _, src := range givenFlags(given) {
		if src != "--config-file" {
			ignored = append(ignored, src)
		}
	}
	for _, k := range envKeys {
		if k != envName("config-file") {
			ignored = append(ignored, k)
		}
	}
	args := []any{"path", path}
	if len(ignored) > 0 {
		args = append(args, "ignored", strings.Join(ignored, " "))
	}
	c.notes = append([]logNote{{msg: "loaded server configuration; other command-line flags and environment variables are ignored", args: args}}, c.notes...)
	finishConfig(c)
	return c, nil
}

// yamlBool maps YAML's other spellings of booleans to Go's.
func yamlBool(s string) string {
	switch strings.ToLower(s) {
	case "yes", "on", "y":
		return "true"
	case "no", "off", "n":
		return "false"
	}
	return s
}

// parseYAML parses the subset of YAML etcd's configuration files use into
// their leaves, keyed by their path ("peer-transport-security.cert-file").
func parseYAML(src string) (map[string]yamlValue, error) {
	var lines []yamlLine
	for i, raw := range strings.Split(src, "\n") {
		raw = strings.TrimRight(raw, "\r")
		n := i + 1
		if strings.TrimSpace(raw) == "" {
			continue
		}
		trimmed := strings.TrimLeft(raw, " ")
		if strings.HasPrefix(trimmed, "\t") {
			return nil, fmt.Errorf("line %d: tabs are not allowed for indentation", n)
		}
		text, err := stripComment(trimmed)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if text == "" || (len(lines) == 0 && text == "---") {
			continue
		}
		if text == "---" || text == "..." {
			return nil, fmt.Errorf("line %d: only one YAML document is supported", n)
		}
		lines = append(lines, yamlLine{n: n, indent: len(raw) - len(trimmed), text: text})
	}
	out := map[string]yamlValue{}
	rest, err := parseYAMLMap(lines, 0, "", out)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("line %d: unexpected indentation", rest[0].n)
	}
	return out, nil
}

// parseYAMLMap parses the mapping whose keys are at indent, from the start
// of lines, into out under prefix; it returns the lines after it.
func parseYAMLMap(lines []yamlLine, indent int, prefix string, out map[string]yamlValue) ([]yamlLine, error) {
	for len(lines) > 0 {
		l := lines[0]
		if l.indent < indent {
			return lines, nil
		}
		if l.indent > indent {
			return nil, fmt.Errorf("line %d: unexpected indentation", l.n)
		}
		if strings.HasPrefix(l.text, "- ") || l.text == "-" {
			return nil, fmt.Errorf("line %d: a list item where a key was expected", l.n)
		}
		key, val, err := splitKey(l.text)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", l.n, err)
		}
		path := key
		if prefix != "" {
			path = prefix + "." + key
		}
		if _, dup := out[path]; dup || hasPrefixKey(out, path+".") {
			return nil, fmt.Errorf("line %d: key %q given twice", l.n, path)
		}
		lines = lines[1:]
		if val != "" {
			v, err := parseYAMLInline(val)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", l.n, err)
			}
			v.line = l.n
			out[path] = v
			continue
		}
		// A block: a nested map, "- item" lines, or nothing (null).
		if len(lines) == 0 || lines[0].indent < indent ||
			(lines[0].indent == indent && !strings.HasPrefix(lines[0].text, "-")) {
			out[path] = yamlValue{line: l.n, null: true}
			continue
		}
		child := lines[0]
		if strings.HasPrefix(child.text, "- ") || child.text == "-" {
			v := yamlValue{line: l.n, isList: true}
			for len(lines) > 0 && lines[0].indent == child.indent && (strings.HasPrefix(lines[0].text, "- ") || lines[0].text == "-") {
				item := strings.TrimSpace(strings.TrimPrefix(lines[0].text, "-"))
				s, err := parseYAMLScalar(item)
				if err != nil {
					return nil, fmt.Errorf("line %d: %w", lines[0].n, err)
				}
				v.list = append(v.list, s)
				lines = lines[1:]
			}
			out[path] = v
			continue
		}
		if child.indent == indent {
			out[path] = yamlValue{line: l.n, null: true}
			continue
		}
		if lines, err = parseYAMLMap(lines, child.indent, path, out); err != nil {
			return nil, err
		}
		if len(lines) > 0 && lines[0].indent > indent {
			return nil, fmt.Errorf("line %d: unexpected indentation", lines[0].n)
		}
	}
	return lines, nil
}

// hasPrefixKey says whether a key below prefix was read already.
func hasPrefixKey(out map[string]yamlValue, prefix string) bool {
	for k := range out {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// splitKey splits "key: value" (the value may be empty).
func splitKey(text string) (key, val string, err error) {
	i := strings.Index(text, ": ")
	if i < 0 && strings.HasSuffix(text, ":") {
		i = len(text) - 1
	}
	if i <= 0 {
		return "", "", fmt.Errorf("%q is not \"key: value\"", text)
	}
	key = strings.TrimSpace(text[:i])
	if strings.ContainsAny(key, "\"'{}[]&*!|>%@`,") || strings.HasPrefix(key, "-") || strings.HasPrefix(key, "?") {
		return "", "", fmt.Errorf("key %q is not supported (plain keys only)", key)
	}
	return key, strings.TrimSpace(text[i+1:]), nil
}

// parseYAMLInline parses the value on a key's own line: a scalar or a
// list in brackets.
func parseYAMLInline(val string) (yamlValue, error) {
	if val == "~" || val == "null" || val == "Null" || val == "NULL" {
		return yamlValue{null: true}, nil
	}
	if strings.HasPrefix(val, "[") {
		if !strings.HasSuffix(val, "]") {
			return yamlValue{}, errors.New("a list in brackets must end on the same line with ]")
		}
		inner := strings.TrimSpace(val[1 : len(val)-1])
		v := yamlValue{isList: true}
		if inner == "" {
			return v, nil
		}
		for _, item := range splitFlow(inner) {
			item = strings.TrimSpace(item)
			if item == "" {
				return yamlValue{}, errors.New("an empty item in a list")
			}
			s, err := parseYAMLScalar(item)
			if err != nil {
				return yamlValue{}, err
			}
			v.list = append(v.list, s)
		}
		return v, nil
	}
	s, err := parseYAMLScalar(val)
	return yamlValue{scalar: s}, err
}

// splitFlow splits the inside of a bracketed list at commas outside quotes.
func splitFlow(s string) []string {
	var out []string
	var quote byte
	start := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quote != 0:
			if c == '\\' && quote == '"' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == ',':
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// parseYAMLScalar parses a plain, single-quoted or double-quoted scalar.
func parseYAMLScalar(s string) (string, error) {
	switch {
	case s == "":
		return "", nil
	case s[0] == '\'':
		if len(s) < 2 || s[len(s)-1] != '\'' {
			return "", fmt.Errorf("unterminated quoted string %s", s)
		}
		inner := s[1 : len(s)-1]
		if strings.Count(strings.ReplaceAll(inner, "''", ""), "'") > 0 {
			return "", fmt.Errorf("a lone ' inside %s", s)
		}
		return strings.ReplaceAll(inner, "''", "'"), nil
	case s[0] == '"':
		if len(s) < 2 || s[len(s)-1] != '"' {
			return "", fmt.Errorf("unterminated quoted string %s", s)
		}
		v, err := strconv.Unquote(s)
		if err != nil {
			return "", fmt.Errorf("bad double-quoted string %s", s)
		}
		return v, nil
	case strings.ContainsRune("&*!|>{[%@`", rune(s[0])):
		return "", fmt.Errorf("%q: YAML anchors, aliases, tags, block scalars and flow maps are not supported", s)
	case strings.Contains(s, ": "):
		return "", fmt.Errorf("%q: a value may not contain \": \" unless quoted", s)
	}
	return s, nil
}

// stripComment removes a comment (a # at the start or after a space,
// outside quotes) and trailing spaces.
func stripComment(s string) (string, error) {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' && quote == '"' {
				i++
			} else if c == quote {
				quote = 0
			}
		case (c == '\'' || c == '"') && (i == 0 || s[i-1] == ' ' || s[i-1] == '[' || s[i-1] == ','):
			quote = c
		case c == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t'):
			return strings.TrimRight(s[:i], " \t"), nil
		}
	}
	return strings.TrimRight(s, " \t"), nil
}
