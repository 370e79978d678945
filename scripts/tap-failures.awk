# SPDX-License-Identifier: MIT
# The failures of a node --test TAP log, a few lines each: the test's name,
# where it is, and the first lines of its error (with expected and actual).
# scripts/test.sh prints this last, so that a reader of only the end of a
# CI log still sees why a test failed. Usage: awk -v suite=NAME -f this LOG
function cut(s) { return length(s) > 300 ? substr(s, 1, 300) "…" : s }
function indent(s) { match(s, /^ */); return RLENGTH }
/^ *not ok / {
	name = $0
	sub(/^ *not ok [0-9]+ - /, "", name)
	print "  ✗ " (suite ? suite ": " : "") name
	keys = indent($0) + 2 # the YAML block's keys; an error's lines are deeper
	inblock = 1; inerror = 0; shown = 0
	next
}
!inblock { next }
indent($0) == keys && /^ *\.\.\.$/ { inblock = 0; next }
indent($0) == keys {
	inerror = 0
	if (/^ *(location|expected|actual):/) { sub(/^ */, ""); print "      " cut($0) }
	else if (/^ *error:/) {
		inerror = 1
		rest = $0; sub(/^ *error: *(\|-)? */, "", rest)
		if (rest != "") { print "      " cut(rest); shown++ }
	}
	next
}
inerror && indent($0) > keys {
	line = $0; sub(/^ */, "", line)
	if (line != "" && shown < 12) { print "      " cut(line); shown++ }
}
