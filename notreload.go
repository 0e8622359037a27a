package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/pollreload/pollreload/config"
	"github.com/pollreload/pollreload/signaler"
)

// refuseNotReloading returns an exit-2 error when the target pollreload
// would signal runs a program that does not reload its configuration on any
// signal (mysqld, mariadbd): every "reload" would be counted although
// nothing was re-read. It looks at PROCESS_NAME, the wrapped command, and
// the executables of the processes found now; a target that appears later
// is refused when it is to be signalled. RELOAD_FORCE=true lets it through.
func refuseNotReloading(cfg config.Config, comp components, child []string) error {
	if cfg.ReloadForce {
		return nil
	}
	refuse := func(what, why string) error {
		return &exitError{code: 2, err: fmt.Errorf("%s: %s (%s=true sends the signal anyway)", what, why, cfg.Name("RELOAD_FORCE"))}
	}
	for _, n := range cfg.ProcessName {
		if why := signaler.NotReloads(n); why != "" {
			return refuse(fmt.Sprintf("%s=%s names a program that does not reload on a signal", cfg.Name("PROCESS_NAME"), strings.Join(cfg.ProcessName, ",")), why)
		}
	}
	if len(child) > 0 {
		if why := signaler.NotReloads(child[0]); why != "" {
			return refuse(fmt.Sprintf("the wrapped command %s does not reload on a signal", filepath.Base(child[0])), why)
		}
	}
	if comp.process == nil {
		return nil
	}
	cands, err := comp.process.Inspect()
	if err != nil {
		return nil // no target yet: it is refused when it is to be signalled
	}
	for _, c := range cands {
		exe := c.Exe
		if exe == "" {
			exe = c.Argv0
		}
		if why := signaler.NotReloads(exe); c.Selected && why != "" {
			by := cfg.Name("PROCESS_NAME") + "=" + strings.Join(cfg.ProcessName, ",")
			if cfg.PIDFile != "" {
				by = cfg.Name("PID_FILE") + "=" + cfg.PIDFile
			}
			return refuse(fmt.Sprintf("%s selects pid %d (%s), which does not reload on a signal", by, c.PID, exe), why)
		}
	}
	return nil
}
