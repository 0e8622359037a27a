// Package charts holds the tests of the pollreload Helm chart and of the
// plain manifests in ../examples. It is a module of its own so that the
// Kubernetes, Pod Security and Prometheus Operator packages the tests decode
// with stay out of the daemon's go.mod.
//
// The tests render the chart with the helm binary, decode every object
// strictly into its Go type (an unknown or misspelled field fails), check every
// pod spec against Pod Security "restricted" with the admission controller's
// own checks, and check that the sidecar renders exactly when enabled.
package charts
