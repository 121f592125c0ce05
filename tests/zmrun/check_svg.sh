#!/bin/bash
# zmrun's SVG chart, looked at: run svg_target under zmrun with --svg and
# --csv, render the SVG in headless Chromium, check the picture with
# check_png.py (the curves, the peak marker, the labels).
# Usage: check_svg.sh ZMRUN SVG_TARGET WORKDIR
# Exit: 0 passed, 77 skipped (no chromium or no python3), else failed.
# CHROMIUM=/path/to/browser overrides the browser (default: chromium).
set -eu

if [ $# -ne 3 ]; then
    echo "usage: $0 ZMRUN SVG_TARGET WORKDIR" >&2
    exit 2
fi
zmrun=$1
target=$2
here=$(cd "$(dirname "$0")" && pwd)
chromium=${CHROMIUM:-chromium}

if ! command -v "$chromium" >/dev/null 2>&1; then
    echo "SKIP: $chromium is not installed (Debian: apt-get install chromium), the SVG chart is not rendered"
    exit 77
fi
if ! command -v python3 >/dev/null 2>&1; then
    echo "SKIP: python3 is not installed, the rendered SVG chart cannot be checked"
    exit 77
fi

mkdir -p "$3"
work=$(cd "$3" && pwd)
rm -f "$work/chart.svg" "$work/samples.csv" "$work/chart.png"

"$zmrun" --interval 20 --svg "$work/chart.svg" --csv "$work/samples.csv" -- "$target" \
    >"$work/zmrun.log" 2>&1 || {
    echo "FAIL: zmrun exited with $?; its output:" >&2
    cat "$work/zmrun.log" >&2
    exit 1
}

# The CSV: its header and at least 20 samples (the target runs ~1.2 s,
# sampled every 20 ms), every row three numbers.
if [ "$(head -n 1 "$work/samples.csv")" != "time_ms,heap_bytes,rss_bytes" ]; then
    echo "FAIL: $work/samples.csv: no header line 'time_ms,heap_bytes,rss_bytes'" >&2
    exit 1
fi
rows=$(tail -n +2 "$work/samples.csv" | grep -c '^[0-9]\+,[0-9]\+,[0-9]\+$' || true)
bad=$(tail -n +2 "$work/samples.csv" | grep -vc '^[0-9]\+,[0-9]\+,[0-9]\+$' || true)
echo "samples.csv: $rows rows"
if [ "$rows" -lt 20 ] || [ "$bad" -ne 0 ]; then
    echo "FAIL: $work/samples.csv: $rows sample rows (want >= 20), $bad malformed" >&2
    exit 1
fi
if ! grep -q '<polyline' "$work/chart.svg"; then
    echo "FAIL: $work/chart.svg has no curve (<polyline>)" >&2
    exit 1
fi

# Render it. Chromium writes dbus and other noise to stderr: kept in a log,
# shown only when there is no picture. Its own profile directory keeps it
# off $HOME; the scale factor pins the picture to 900x460.
timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --hide-scrollbars --force-device-scale-factor=1 --no-first-run \
    --user-data-dir="$work/chromium-profile" --window-size=900,460 \
    --screenshot="$work/chart.png" "file://$work/chart.svg" >"$work/chromium.log" 2>&1 || {
    echo "FAIL: chromium exited with $?; its output:" >&2
    cat "$work/chromium.log" >&2
    exit 1
}
if [ ! -s "$work/chart.png" ]; then
    echo "FAIL: chromium wrote no $work/chart.png; its output:" >&2
    cat "$work/chromium.log" >&2
    exit 1
fi
rm -rf "$work/chromium-profile"

python3 "$here/check_png.py" "$work/chart.png"
