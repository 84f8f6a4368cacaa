package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
)

// sample is one figure's values over the rounds, for one target and case.
type sample struct {
	Figure string    `json:"figure"` // "login", "idle", ...
	Case   string    `json:"case"`   // "imap c=16", "10000 conns", ...
	Metric string    `json:"metric"` // "cycles/s", "p99 ms", ...
	Target string    `json:"target"` // "postern", "dovecot-tuned", "null", ...
	Values []float64 `json:"values"`
}

func (s sample) stats() (med, lo, hi float64) {
	if len(s.Values) == 0 {
		return 0, 0, 0
	}
	v := slices.Clone(s.Values)
	sort.Float64s(v)
	n := len(v)
	med = v[n/2]
	if n%2 == 0 {
		med = (v[n/2-1] + v[n/2]) / 2
	}
	return med, v[0], v[n-1]
}

// results collects samples in the order they were first recorded.
type results struct {
	Samples []*sample         `json:"samples"`
	Notes   map[string]string `json:"notes"`
	index   map[string]*sample
}

func newResults() *results { return &results{index: map[string]*sample{}, Notes: map[string]string{}} }

func (r *results) add(fig, cas, metric, target string, v float64) {
	k := fig + "\x00" + cas + "\x00" + metric + "\x00" + target
	s := r.index[k]
	if s == nil {
		s = &sample{Figure: fig, Case: cas, Metric: metric, Target: target}
		r.index[k] = s
		r.Samples = append(r.Samples, s)
	}
	s.Values = append(s.Values, v)
	fmt.Printf("  %-8s %-22s %-16s %-18s %10.2f\n", fig, cas, metric, target, v)
}

func (r *results) get(fig, cas, metric, target string) *sample {
	return r.index[fig+"\x00"+cas+"\x00"+metric+"\x00"+target]
}

// median is the median of a sample, and whether it was measured.
func (r *results) median(fig, cas, metric, target string) (float64, bool) {
	s := r.get(fig, cas, metric, target)
	if s == nil {
		return 0, false
	}
	m, _, _ := s.stats()
	return m, true
}

func (r *results) note(fig, text string) {
	if r.Notes[fig] != "" {
		r.Notes[fig] += " "
	}
	r.Notes[fig] += text
	fmt.Printf("  note %s: %s\n", fig, text)
}

func (r *results) save(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// table renders the samples of fig: one row per case and metric, one column
// per target ("median (min–max)"), then the ratios of ratioOf to each other
// target's median.
func (r *results) table(fig, ratioOf string, targets []string) string {
	present := r.present(fig)
	var ratios [][2]string
	for _, c := range targets {
		if present[c] && c != ratioOf && present[ratioOf] && !strings.HasPrefix(c, ratioOf) {
			ratios = append(ratios, [2]string{ratioOf, c})
		}
	}
	return r.tableRatios(fig, targets, ratios)
}

// present says which targets have samples of fig.
func (r *results) present(fig string) map[string]bool {
	p := map[string]bool{}
	for _, s := range r.Samples {
		if s.Figure == fig {
			p[s.Target] = true
		}
	}
	return p
}

// tableRatios is table with the ratio columns given: each pair's first
// target's median over its second's.
func (r *results) tableRatios(fig string, targets []string, ratios [][2]string) string {
	var rows [][2]string // case, metric
	seen := map[[2]string]bool{}
	present := map[string]bool{}
	for _, s := range r.Samples {
		if s.Figure != fig {
			continue
		}
		present[s.Target] = true
		k := [2]string{s.Case, s.Metric}
		if !seen[k] {
			seen[k] = true
			rows = append(rows, k)
		}
	}
	var cols []string
	for _, t := range targets {
		if present[t] {
			cols = append(cols, t)
		}
	}
	if len(rows) == 0 {
		return "_not measured in this run_\n"
	}
	var b strings.Builder
	b.WriteString("| case | metric |")
	for _, c := range cols {
		fmt.Fprintf(&b, " %s |", c)
	}
	for _, rc := range ratios {
		fmt.Fprintf(&b, " %s / %s |", rc[0], rc[1])
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---:|", len(cols)+len(ratios)) + "\n")
	for _, k := range rows {
		fmt.Fprintf(&b, "| %s | %s |", k[0], k[1])
		for _, c := range cols {
			s := r.get(fig, k[0], k[1], c)
			if s == nil {
				b.WriteString(" – |")
				continue
			}
			med, lo, hi := s.stats()
			if len(s.Values) == 1 {
				fmt.Fprintf(&b, " %s |", num(med))
			} else {
				fmt.Fprintf(&b, " %s (%s–%s) |", num(med), num(lo), num(hi))
			}
		}
		for _, rc := range ratios {
			a, o := r.get(fig, k[0], k[1], rc[0]), r.get(fig, k[0], k[1], rc[1])
			if a == nil || o == nil {
				b.WriteString(" – |")
				continue
			}
			am, _, _ := a.stats()
			om, _, _ := o.stats()
			if om == 0 {
				b.WriteString(" – |")
				continue
			}
			fmt.Fprintf(&b, " %.2f |", am/om)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// num prints a value with sensible precision.
func num(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// mergeFrom adds the samples of path (an earlier run's results) whose figure
// was not measured in this run, with their notes, so that one figure can be
// measured again without the others.
func (r *results) mergeFrom(path string, measured map[string]bool) error {
	old, err := loadResults(path)
	if err != nil {
		return err
	}
	for _, s := range old.Samples {
		fig := s.Figure
		if fig == "scale-seed" {
			fig = "scale"
		}
		if measured[fig] {
			continue
		}
		for _, v := range s.Values {
			r.add(s.Figure, s.Case, s.Metric, s.Target, v)
		}
	}
	for fig, n := range old.Notes {
		if !measured[fig] && r.Notes[fig] == "" {
			r.Notes[fig] = n
		}
	}
	return nil
}

// mergeCases adds the samples of path (an earlier run's results) whose
// figure and case this run did not measure, with the notes of figures it
// did not measure at all: one mailbox size measured again keeps the others.
func (r *results) mergeCases(path string) error {
	old, err := loadResults(path)
	if err != nil {
		return err
	}
	measured := map[[2]string]bool{}
	figs := map[string]bool{}
	for _, s := range r.Samples {
		measured[[2]string{s.Figure, s.Case}] = true
		figs[s.Figure] = true
	}
	n0 := len(r.Samples)
	for _, s := range old.Samples {
		if measured[[2]string{s.Figure, s.Case}] {
			continue
		}
		for _, v := range s.Values {
			r.add(s.Figure, s.Case, s.Metric, s.Target, v)
		}
	}
	// The earlier cases first: the tables list them in order of recording.
	r.Samples = slices.Concat(r.Samples[n0:], r.Samples[:n0])
	for fig, n := range old.Notes {
		if !figs[fig] && r.Notes[fig] == "" {
			r.Notes[fig] = n
		}
	}
	return nil
}

// loadResults reads the results an earlier run saved.
func loadResults(path string) (*results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var old results
	if err := json.Unmarshal(b, &old); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &old, nil
}
