package monitoring

import (
	"fmt"
	"regexp"
	"strings"
)

// This file takes PromQL apart only as far as the checks need: the vector
// selectors in an expression (so that each can be asked for data on its own)
// and its comparisons (so that a filtering alert expression can be asked for
// the values it compares). Parsing proper is left to the real Prometheus,
// which answers every malformed query with an error.

// keywords are the PromQL words that are neither metric names nor functions.
var keywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"inf": true, "nan": true,
}

// aggregates are the aggregation operators, which may be followed by a
// by or without clause before their parenthesised argument.
var aggregates = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
	"limitk": true, "limit_ratio": true,
}

// labelLists are the keywords followed by a parenthesised list of label names.
var labelLists = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdentChar(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

// skipString returns the index just past the string literal starting at i.
func skipString(s string, i int) int {
	quote := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case s[j] == '\\' && quote != '`':
			j++
		case s[j] == quote:
			return j + 1
		}
	}
	return len(s)
}

// skipGroup returns the index just past the bracket group (braces,
// brackets or parentheses) opening at i, stepping over string literals.
func skipGroup(s string, i int) int {
	closing := map[byte]byte{'{': '}', '[': ']', '(': ')'}[s[i]]
	depth := 0
	for j := i; j < len(s); {
		switch c := s[j]; {
		case c == '"' || c == '\'' || c == '`':
			j = skipString(s, j)
			continue
		case c == s[i]:
			depth++
		case c == closing:
			depth--
			if depth == 0 {
				return j + 1
			}
		}
		j++
	}
	return len(s)
}

func skipSpace(s string, i int) int {
	for i < len(s) && strings.ContainsRune(" \t\r\n", rune(s[i])) {
		i++
	}
	return i
}

// vectorSelectors returns the vector selectors of a PromQL expression, each
// a metric name with its label matchers (or a bare `{...}`), without range
// or offset, in order of appearance.
func vectorSelectors(expr string) []string {
	var out []string
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			i = skipString(expr, i)
		case c == '[':
			i = skipGroup(expr, i) // a range or subquery step: durations only
		case c == '{':
			end := skipGroup(expr, i)
			out = append(out, expr[i:end])
			i = end
		case c >= '0' && c <= '9' || c == '.':
			for i < len(expr) && (isIdentChar(expr[i]) || expr[i] == '.') {
				i++ // a number or a duration such as 5m or 1e3
			}
		case isIdentStart(c):
			j := i
			for j < len(expr) && isIdentChar(expr[j]) {
				j++
			}
			word := expr[i:j]
			next := skipSpace(expr, j)
			switch {
			case labelLists[strings.ToLower(word)]:
				if next < len(expr) && expr[next] == '(' {
					j = skipGroup(expr, next)
				}
			case keywords[strings.ToLower(word)]:
			case next < len(expr) && expr[next] == '(', aggregates[strings.ToLower(word)]:
				// A function or an aggregation (also `sum by (x) (...)`);
				// its arguments are scanned next.
			default:
				if next < len(expr) && expr[next] == '{' {
					j = skipGroup(expr, next)
					word += expr[next:j]
				}
				out = append(out, word)
			}
			i = j
		default:
			i++
		}
	}
	return out
}

// comparison matches a PromQL comparison operator at the start of a string.
var comparison = regexp.MustCompile(`^(==|!=|>=|<=|>|<)`)

// withBool returns expr with the bool modifier added to every comparison,
// so that a filtering expression such as `x > 2` returns a 0 or 1 for every
// series it compares instead of only the ones that pass. Label matchers and
// strings are left alone.
func withBool(expr string) string {
	var b strings.Builder
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`' || c == '{' || c == '[':
			end := len(expr)
			if c == '{' || c == '[' {
				end = skipGroup(expr, i)
			} else {
				end = skipString(expr, i)
			}
			b.WriteString(expr[i:end])
			i = end
		case comparison.MatchString(expr[i:]):
			op := comparison.FindString(expr[i:])
			b.WriteString(op)
			i += len(op)
			if rest := expr[skipSpace(expr, i):]; !strings.HasPrefix(rest, "bool") {
				b.WriteString(" bool")
			}
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

// variable matches a Grafana template variable: $name, ${name} or
// ${name:format}, and the legacy [[name]].
var variable = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(?::[A-Za-z]+)?\}|\$([A-Za-z0-9_]+)|\[\[([A-Za-z0-9_]+)\]\]`)

// substitute replaces the Grafana variables in expr with values, and fails
// on a variable values does not hold, as Grafana would leave it in the query.
func substitute(expr string, values map[string]string) (string, error) {
	var missing []string
	out := variable.ReplaceAllStringFunc(expr, func(m string) string {
		sub := variable.FindStringSubmatch(m)
		name := sub[1] + sub[2] + sub[3]
		v, ok := values[name]
		if !ok {
			missing = append(missing, "$"+name)
			return m
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("query %q uses undefined variable(s) %s", expr, strings.Join(missing, ", "))
	}
	return out, nil
}

// regexValue is how Grafana's Prometheus data source writes the chosen
// values of a multi-value variable into a `=~"..."` matcher: each value
// regexp-quoted, joined with |, with backslashes doubled for the PromQL
// string.
func regexValue(values []string) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = strings.ReplaceAll(regexp.QuoteMeta(v), `\`, `\\`)
	}
	if len(quoted) == 1 {
		return quoted[0]
	}
	return "(" + strings.Join(quoted, "|") + ")"
}

// labelValuesQuery matches Grafana's label_values(selector, label).
var labelValuesQuery = regexp.MustCompile(`^\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$`)
