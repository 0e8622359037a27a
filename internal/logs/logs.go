// Package logs holds the one nil-logger default of pollreload's packages: a
// library given no logger discards what it would log.
package logs

import "log/slog"

// OrDiscard returns log, or a logger that discards everything when log is
// nil.
func OrDiscard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}
