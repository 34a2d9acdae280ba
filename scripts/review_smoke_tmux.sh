#!/usr/bin/env bash
# Person-like smoke test of `tagparse review`: run the TUI in a detached tmux session against a
# tags.db made from the bundled examples/captions.csv, press keys, capture the pane, check the text
# and the verdicts written. Exits non-zero on the first failed check.
#   scripts/review_smoke_tmux.sh [WORKDIR]      (needs tmux; uses .venv/bin/python when present)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
py="${PYTHON:-$repo/.venv/bin/python}"; [ -x "$py" ] || py=python3
tp="$(dirname "$py")/tagparse"; [ -x "$tp" ] || tp=tagparse
work="${1:-$(mktemp -d)}"; mkdir -p "$work"
db="$work/tags.db"; rm -f "$db" "$db-wal" "$db-shm"
session="tagparse-review-smoke-$$"
command -v tmux >/dev/null || { echo "tmux is not installed" >&2; exit 2; }
cleanup() { tmux kill-session -t "$session" 2>/dev/null || true; }
trap cleanup EXIT

# 1. A tags.db from the bundled example: the spaCy backend when it is installed, otherwise two
#    keyword parsers written through the TagsDB API (tests/tagparse/review/example_db.py).
if ! "$tp" run --backend spacy --input "$repo/examples/captions.csv" --db "$db" >/dev/null 2>&1 \
   || ! "$tp" vocab --db "$db" >/dev/null 2>&1; then
  rm -f "$db" "$db-wal" "$db-shm"
  "$py" "$repo/tests/tagparse/review/example_db.py" "$repo/examples/captions.csv" "$db"
fi

pane() { tmux capture-pane -p -t "$session"; }
expect() {  # expect TEXT: wait up to 10 s for TEXT on the screen
  for _ in $(seq 100); do pane | grep -qF -- "$1" && return 0; sleep 0.1; done
  echo "FAIL: '$1' not on screen; the pane was:" >&2; pane >&2; exit 1
}
gone() {  # gone TEXT: wait up to 10 s for TEXT to leave the screen
  for _ in $(seq 100); do pane | grep -qF -- "$1" || return 0; sleep 0.1; done
  echo "FAIL: '$1' still on screen; the pane was:" >&2; pane >&2; exit 1
}
verdicts() { "$py" -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT COUNT(*) FROM verdicts WHERE verdict='$1'\").fetchone()[0])" "$db"; }

# 2. Open the TUI at 100x30 and review a little.
tmux new-session -d -s "$session" -x 100 -y 30 "cd '$repo' && '$tp' review --db '$db' --seed 7"
expect "reviewed 0/385"
expect "objects:"
tmux send-keys -t "$session" r; expect "rejected object"
tmux send-keys -t "$session" A; expect "reviewed 1/385"
tmux send-keys -t "$session" "?"; expect "tagparse review — keys"
tmux send-keys -t "$session" Escape; gone "tagparse review — keys"
tmux send-keys -t "$session" u; expect "undid the latest action"
tmux send-keys -t "$session" q
for _ in $(seq 50); do tmux has-session -t "$session" 2>/dev/null || break; sleep 0.1; done
[ "$(verdicts reject)" = 1 ] || { echo "FAIL: expected 1 reject verdict, got $(verdicts reject)" >&2; exit 1; }
[ "$(verdicts accept)" = 0 ] || { echo "FAIL: undo left $(verdicts accept) accept verdicts" >&2; exit 1; }

# 3. Re-open: resumes on the sample that was rejected-in (the first unreviewed of seed 7 is next).
tmux new-session -d -s "$session" -x 80 -y 24 "cd '$repo' && '$tp' review --db '$db' --seed 7"
expect "reviewed 1/385"
expect "sample 2 of"
tmux send-keys -t "$session" q

# 4. The report (no TUI).
"$tp" review --db "$db" --report | grep -q "most-rejected tags:" \
  || { echo "FAIL: --report has no most-rejected tags" >&2; exit 1; }
echo "review smoke test passed ($db)"
