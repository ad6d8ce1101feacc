#!/usr/bin/env bash
# Runs the tests of the Nix library, with Nix alone (no nixpkgs, offline):
#
#   tests/*.nix       workflow graphs (fixtures shared with the Go side):
#                     evaluated and compared with the .json next to them
#                     (store hashes replaced by HASH); checked with
#                     `nixflow validate` and `nixflow plan`; a fixture named
#                     like a compiler golden file (compiler/testdata/X.txtar)
#                     must compile to the same plan.
#   tests/unit/*.nix  values compared with the .json next to them.
#   tests/errors.nix  cases that must fail, with the expected message.
#   actions' scripts  shellcheck, when installed.
#   end to end        a workflow built into its runner with nix-build and
#                     run, when a nixflow binary is found.
#
# Usage: tests/run.sh            run everything
#        UPDATE=1 tests/run.sh   rewrite the expected .json files
#
# The nixflow binary is $NIXFLOW, else /tmp/nixflow, else nixflow on PATH;
# without one the checks that need it are skipped (and said so). Build it
# with: go build -o /tmp/nixflow ./cmd/nixflow
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
golden_dir="$repo/compiler/testdata"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0
skipped=0

pass() { passed=$((passed + 1)); }
fail() {
	failed=$((failed + 1))
	printf 'FAIL %s\n' "$1"
	if [ $# -gt 1 ]; then
		printf '%s\n' "$2" | sed 's/^/    /'
	fi
}
skip() {
	skipped=$((skipped + 1))
	printf 'skip %s\n' "$1"
}

for tool in nix-instantiate jq; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "run.sh: $tool is needed (apt-get install -y nix-bin jq)" >&2
		exit 2
	fi
done

nixflow=${NIXFLOW:-}
if [ -n "$nixflow" ] && [ ! -x "$nixflow" ]; then
	echo "run.sh: NIXFLOW=$nixflow is not an executable" >&2
	exit 2
fi
if [ -z "$nixflow" ]; then
	if [ -x /tmp/nixflow ]; then
		nixflow=/tmp/nixflow
	elif command -v nixflow >/dev/null 2>&1; then
		nixflow=$(command -v nixflow)
	fi
fi

# eval_json FILE OUT: evaluates FILE to JSON, store hashes replaced, sorted.
eval_json() {
	nix-instantiate --eval --strict --json --option substituters '' "$1" 2>"$2.err" |
		sed -E 's#/nix/store/[0-9a-z]{32}-#/nix/store/HASH-#g' |
		jq -S . >"$2"
}

# compare NAME FILE.nix: evaluates and compares with FILE.json (or writes
# it with UPDATE=1). Leaves the output in $tmp/NAME.json.
compare() {
	local name=$1 nix=$2 want=${2%.nix}.json out="$tmp/${1//\//_}.json"
	if ! eval_json "$nix" "$out"; then
		fail "$name: evaluation failed" "$(cat "$out.err")"
		return 1
	fi
	if [ "${UPDATE:-}" = 1 ]; then
		cp "$out" "$want"
		pass
		return 0
	fi
	if [ ! -f "$want" ]; then
		fail "$name: no expected output ${want#"$repo"/} (UPDATE=1 writes it)"
		return 1
	fi
	local diff
	if diff=$(diff -u <(jq -S . "$want") "$out"); then
		pass
	else
		fail "$name: output differs from ${want#"$repo"/}" "$diff"
		return 1
	fi
}

# txtar_section FILE SECTION: prints a section of a txtar archive.
txtar_section() {
	awk -v want="-- $2 --" '
		/^-- .* --$/ { inside = ($0 == want); next }
		inside { print }
	' "$1"
}

echo "== graph fixtures"
for nix in "$here"/*.nix; do
	name=$(basename "$nix" .nix)
	[ "$name" = errors ] && continue
	compare "$name" "$nix" || continue
	out="$tmp/$name.json"

	# The design example must be the brief's graph, except the dep, which
	# is a real derivation here and a placeholder there.
	golden="$golden_dir/$name.txtar"
	if [ "$name" = design_example ] && [ -f "$golden" ]; then
		if diff=$(diff -u <(txtar_section "$golden" graph.json | jq -S 'del(.jobs.build.steps[0].deps)') \
			<(jq -S 'del(.jobs.build.steps[0].deps)' "$out")); then
			pass
		else
			fail "$name: differs from graph.json of ${golden#"$repo"/}" "$diff"
		fi
	fi

	if [ -z "$nixflow" ]; then
		skip "$name: nixflow validate/plan (no nixflow binary)"
		continue
	fi
	# --schema-only: the fixtures name every executor type, also those this
	# build may have no backend for.
	if msg=$("$nixflow" validate --schema-only "$out" 2>&1) && "$nixflow" plan --schema-only "$out" >/dev/null 2>&1; then
		pass
	else
		fail "$name: nixflow validate/plan" "$msg"
		continue
	fi
	if [ -f "$golden" ] && txtar_section "$golden" plan.json | grep -q .; then
		strip='del(.jobs[].steps[].deps)'
		if diff=$(diff -u <(txtar_section "$golden" plan.json | jq -S "$strip") \
			<("$nixflow" plan --schema-only --format json "$out" | jq -S "$strip")); then
			pass
		else
			fail "$name: plan differs from plan.json of ${golden#"$repo"/}" "$diff"
		fi
	fi
done

echo "== unit"
for nix in "$here"/unit/*.nix; do
	compare "unit/$(basename "$nix" .nix)" "$nix" || true
done

echo "== errors"
expects="$tmp/expects.json"
nix-instantiate --eval --strict --json --option substituters '' \
	-E "builtins.mapAttrs (n: c: c.expect) (import $here/errors.nix)" >"$expects"
while IFS= read -r name; do
	expect=$(jq -r --arg n "$name" '.[$n]' "$expects")
	if out=$(nix-instantiate --eval --strict --json --option substituters '' \
		-E "(import $here/errors.nix).\"$name\".value" 2>&1); then
		fail "errors/$name: evaluated, but should fail with: $expect" "$out"
	elif grep -qF -- "$expect" <<<"$out"; then
		pass
	else
		fail "errors/$name: wrong message" "want: $expect"$'\n'"got:  $out"
	fi
done < <(jq -r 'keys[]' "$expects")

echo "== shellcheck of the actions' scripts"
if command -v shellcheck >/dev/null 2>&1; then
	scripts="$tmp/scripts.json"
	nix-instantiate --eval --strict --json --option substituters '' "$here/support/action-scripts.nix" >"$scripts"
	while IFS= read -r name; do
		file="$tmp/script.sh"
		{
			echo '#!/usr/bin/env bash'
			jq -r --arg n "$name" '.[$n]' "$scripts"
		} >"$file"
		if msg=$(shellcheck -s bash "$file" 2>&1); then
			pass
		else
			fail "action $name: shellcheck" "$msg"
		fi
	done < <(jq -r 'keys[]' "$scripts")
else
	skip "shellcheck is not installed"
fi

echo "== end to end"
if [ -n "$nixflow" ]; then
	e2e="$tmp/e2e"
	mkdir -p "$e2e/work"
	if ! msg=$(nix-build --option substituters '' "$here/support/e2e.nix" -A drv \
		--arg nixflowBin "$nixflow" -o "$e2e/result" 2>&1); then
		fail "e2e: nix-build of the runner" "$msg"
	elif ! out=$(cd "$e2e/work" && XDG_STATE_HOME="$e2e/state" "$e2e/result/bin/e2e" --log-format simple 2>&1); then
		fail "e2e: the run failed" "$out"
	else
		pass
		for line in \
			'[tools/dep] hello-from-dep' \
			'[tools/node-later] later: v20.11.0' \
			'[tools/setup-python 3.11] setup-python: Python 3.11.4' \
			'[tools/setup-rust] setup-rust: cargo 1.77.0' \
			'[tools/secret-later] api key: ***' \
			'[tools/require-env NOT_SET_ANYWHERE] required variables not set or empty: NOT_SET_ANYWHERE' \
			'[m-n-1/step-1] matrix-1' \
			'[m-n-2/step-1] matrix-2'; do
			if grep -qF -- "$line" <<<"$out"; then
				pass
			else
				fail "e2e: output lacks: $line" "$out"
			fi
		done
		if grep -qF 's3cret-value' <<<"$out"; then
			fail "e2e: the secret from sopsLoad is not masked" "$out"
		else
			pass
		fi
	fi
else
	skip "e2e: no nixflow binary"
fi

echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
