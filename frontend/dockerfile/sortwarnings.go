package dockerfile

import "sort"

// SortWarnings returns warnings in the order BuildKit's lint result
// printer uses: those without a line first (by rule), then by line; the
// order found otherwise.
func SortWarnings(ws []Warning) []Warning {
	out := append([]Warning(nil), ws...)
	sort.SliceStable(out, func(i, j int) bool {
		li, lj := out[i].Location.Line, out[j].Location.Line
		switch {
		case li <= 0 && lj <= 0:
			return out[i].Rule < out[j].Rule
		case li <= 0 || lj <= 0:
			return li <= 0
		}
		return li < lj
	})
	return out
}
