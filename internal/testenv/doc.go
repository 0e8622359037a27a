// Package testenv is the support kit for tests that run pollreload the way a
// user does: the real binary, configured by environment variables, against
// real processes, files and mounts.
//
// A test package that uses it starts from a TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
//
// Main builds pollreload once (with -race) for the whole test binary and also
// serves the helper processes this package starts (see StartTarget). Inside a
// test:
//
//	testenv.RequireTool(t, "nginx", "nginx-light")   // skip, or fail under REQUIRE_TOOLS=1
//	vol := testenv.NewKubeletWriter(t.TempDir())
//	vol.Write(map[string]string{"app.conf": "v1"})
//	app := testenv.StartTarget(t, testenv.UniqueName("app"), vol.Dir)
//	pr := testenv.Start(t, map[string]string{
//		"CONFIG_DIR":    vol.Dir,
//		"PROCESS_NAME":  app.Name,
//		"POLL_INTERVAL": "100ms",
//	})
//	vol.Write(map[string]string{"app.conf": "v2"})
//	testenv.WaitFor(t, 30*time.Second, func() error { ... })
//	pr.Metric(t, "pollreload_reloads_total", map[string]string{"result": "success"})
//
// Everything a helper starts is stopped, and everything it mounts is
// unmounted, by t.Cleanup, also when the test fails; a failing test gets the
// output of every process it started in its log. After all tests Main checks
// that no process group or mount is left and fails the run if one is.
//
// Timeouts given to WaitFor are generous upper limits so that a slow CI
// machine does not fail a correct program; they are never speed assertions.
package testenv
