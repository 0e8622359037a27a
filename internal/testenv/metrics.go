package testenv

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Sample is one line of the Prometheus text exposition format.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Samples is a parsed scrape.
type Samples []Sample

// Sum returns the sum of the values of every series called name whose
// labels include labels (nil matches all), and whether there was any. A
// counter whose label value never occurred is absent from a scrape, which
// for a counter means 0.
func (s Samples) Sum(name string, labels map[string]string) (float64, bool) {
	var sum float64
	found := false
	for _, smp := range s {
		if smp.Name != name || !hasLabels(smp.Labels, labels) {
			continue
		}
		sum += smp.Value
		found = true
	}
	return sum, found
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// ScrapeText returns the body of http://addr/metrics.
func ScrapeText(ctx context.Context, addr string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return "", fmt.Errorf("scrape %s: %w", addr, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("scrape %s: %w", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("scrape %s: %w", addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("scrape %s: status %s", addr, resp.Status)
	}
	return string(body), nil
}

// Scrape fetches and parses http://addr/metrics.
func Scrape(ctx context.Context, addr string) (Samples, error) {
	text, err := ScrapeText(ctx, addr)
	if err != nil {
		return nil, err
	}
	return ParseMetrics(text)
}

// Metric scrapes addr and returns Samples.Sum(name, labels); it fails the
// test if the scrape fails.
func Metric(t testing.TB, addr, name string, labels map[string]string) float64 {
	t.Helper()
	s, err := Scrape(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := s.Sum(name, labels)
	return v
}

// ParseMetrics parses the Prometheus text format (version 0.0.4): comment
// and blank lines are skipped, every other line is
// `name{label="value",...} value [timestamp]`.
func ParseMetrics(text string) (Samples, error) {
	var out Samples
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d %q: %w", i+1, line, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func parseSample(line string) (Sample, error) {
	s := Sample{Labels: map[string]string{}}
	end := strings.IndexAny(line, "{ \t")
	if end <= 0 {
		return s, fmt.Errorf("no value")
	}
	s.Name = line[:end]
	rest := line[end:]
	if rest[0] == '{' {
		var err error
		rest, err = parseLabels(rest[1:], s.Labels)
		if err != nil {
			return s, err
		}
	}
	fields := strings.Fields(rest)
	if len(fields) < 1 || len(fields) > 2 {
		return s, fmt.Errorf("want value and optional timestamp after the name, got %q", rest)
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, fmt.Errorf("value: %w", err)
	}
	s.Value = v
	return s, nil
}

// parseLabels reads `name="value",...}` into labels and returns what follows
// the closing brace. Values may hold the escapes \\, \" and \n.
func parseLabels(s string, labels map[string]string) (string, error) {
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return "", fmt.Errorf("unterminated label set")
		}
		if s[0] == '}' {
			return s[1:], nil
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return "", fmt.Errorf("label without '='")
		}
		name := strings.TrimSpace(s[:eq])
		s = strings.TrimLeft(s[eq+1:], " \t")
		if s == "" || s[0] != '"' {
			return "", fmt.Errorf("label %s: value not quoted", name)
		}
		var val strings.Builder
		i := 1
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] != '\\' {
				val.WriteByte(s[i])
				continue
			}
			i++
			if i == len(s) {
				break
			}
			switch s[i] {
			case 'n':
				val.WriteByte('\n')
			default: // \\ and \"
				val.WriteByte(s[i])
			}
		}
		if i >= len(s) {
			return "", fmt.Errorf("label %s: unterminated value", name)
		}
		labels[name] = val.String()
		s = strings.TrimLeft(s[i+1:], " \t")
		if strings.HasPrefix(s, ",") {
			s = s[1:]
		}
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
