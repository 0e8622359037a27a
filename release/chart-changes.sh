#!/usr/bin/env bash
# release/chart-changes.sh VERSION prints CHANGELOG.md's entry for VERSION as
# the value of the chart's artifacthub.io/changes annotation: one item per
# bullet, its kind the Keep a Changelog section it is under (Added, Changed,
# Deprecated, Removed, Fixed, Security), indented to sit under
# `artifacthub.io/changes: |` in Chart.yaml. Fails when the entry is missing
# or empty. release/build.sh stamps it; charts/release_test.go keeps the
# chart's copy equal to it.
set -euo pipefail
if (($# != 1)); then
	echo "usage: release/chart-changes.sh VERSION" >&2
	exit 2
fi
changelog=$(dirname "$0")/../CHANGELOG.md
awk -v version="$1" '
	/^## \[/ {
		in_entry = (index($0, "## [" version "]") == 1)
		next
	}
	!in_entry { next }
	/^### / {
		kind = tolower(substr($0, 5))
		if (kind !~ /^(added|changed|deprecated|removed|fixed|security)$/) {
			printf "CHANGELOG.md: section \"%s\" under [%s] is not a Keep a Changelog kind\n", substr($0, 5), version > "/dev/stderr"
			bad = 1
			exit
		}
		next
	}
	/^- / {
		if (kind == "") {
			printf "CHANGELOG.md: a bullet under [%s] is not in a section\n", version > "/dev/stderr"
			bad = 1
			exit
		}
		text = substr($0, 3)
		gsub(/\\/, "\\\\", text)
		gsub(/"/, "\\\"", text)
		printf "    - kind: %s\n      description: \"%s\"\n", kind, text
		n++
	}
	END {
		if (bad) exit 1
		if (n == 0) {
			printf "CHANGELOG.md has no bullets under \"## [%s]\"; add the entry first\n", version > "/dev/stderr"
			exit 1
		}
	}
' "$changelog"
