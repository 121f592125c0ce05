#!/usr/bin/env bash
# Checks the manual pages in man/ against the library and its header:
#   1. every zm_* symbol the shared library exports (nm -D --defined-only),
#      and every Redis/Valkey name include/zmalloc.h defines, has a page
#      man/<name>.3 (the page itself or a ".so man3/<page>.3" link to it),
#      and the page it leads to lists the name in its NAME section;
#   2. every name a page lists in its NAME section is a symbol of the
#      library or a name of the header (nothing documented that is gone);
#   3. the links are exactly what man/make-links.sh writes (none stale),
#      each one line ".so man3/<page>.3" naming a page of man/;
#   4. "mandoc -T lint -W warning" reports nothing on any page. (It is not
#      run on the one-line links themselves: it would lint the page again
#      through the .so, and it warns on every .so line (".so is fragile,
#      better use ln(1)"), the link style chosen here, which man-db and
#      mandoc both follow.)
# Exits 1 naming what is wrong; exits 77 (skipped) after the name checks when
# mandoc is not installed.
#
# Usage: tests/check_man.sh path/to/libzmalloc.so
set -uo pipefail
lib=${1:?usage: check_man.sh path/to/libzmalloc.so}
root=$(cd "$(dirname "$0")/.." && pwd)
man=$root/man
header=$root/include/zmalloc.h
fail=0
problem() {
  echo "check_man: $*" >&2
  fail=1
}

[[ -f $lib ]] || { echo "check_man: no library at $lib" >&2; exit 1; }
exported=$(nm -D --defined-only "$lib" | awk 'NF >= 3 && $3 ~ /^zm_/ {print $3}' | sort -u)
n_exported=$(grep -c . <<<"$exported")
if ((n_exported < 30)); then
  echo "check_man: only $n_exported zm_* symbols exported by $lib" >&2
  exit 1
fi
# The Redis/Valkey names of the header: object-like macros over zm_*
# functions, function-like macros, and the static inline functions that are
# not internal (zm__*).
redis=$({
  grep -E '^#define[[:space:]]+[a-z_][a-z0-9_]*[[:space:]]+zm_[a-z0-9_]+[[:space:]]*$' "$header" |
    awk '{print $2}'
  grep -E '^#define[[:space:]]+[a-z_][a-z0-9_]*\(' "$header" | sed -E 's/^#define[[:space:]]+([a-z0-9_]+)\(.*/\1/'
  grep -E '^static inline ' "$header" | sed -E 's/^[^(]*[ *]([a-z_][a-z0-9_]*)\(.*/\1/' | grep -v '^zm__'
} | sort -u)
n_redis=$(grep -c . <<<"$redis")
if ((n_redis < 40)); then
  echo "check_man: only $n_redis Redis/Valkey names found in $header" >&2
  exit 1
fi

# The page a name's file leads to: itself, or the target of its .so line.
for name in $exported $redis; do
  file=$man/$name.3
  if [[ ! -f $file ]]; then
    problem "$name: no page man/$name.3 (run man/make-links.sh, after documenting it)"
    continue
  fi
  page=$file
  first=$(head -n 1 "$file")
  if [[ $first == ".so "* ]]; then
    target=${first#.so }
    page=$man/${target#man3/}
    if [[ $target != man3/* || ! -f $page ]]; then
      problem "$name: man/$name.3 links to $target, which is not a page in man/"
      continue
    fi
  fi
  if ! grep -qE "^\.Nm $name( ,)?\$" "$page"; then
    problem "$name: $(basename "$page") does not list it in its NAME section"
  fi
done

# 2. Nothing documented that the library and header do not have.
all_names=$(printf '%s\n%s\n' "$exported" "$redis")
header_zm=$(grep -E '^ZM_EXPORT' "$header" | grep -oE '\bzm_[a-z0-9_]+\(' | tr -d '(')
all_names=$(printf '%s\n%s\n' "$all_names" "$header_zm")
real_pages=()
for file in "$man"/*.3; do
  if [[ $(head -c 4 "$file") == ".so " ]]; then
    # 3. A link: one line naming a page of man/.
    if [[ $(wc -l <"$file") -ne 1 ]] || ! grep -qE '^\.so man3/[a-z_][a-z0-9_]*\.3$' "$file"; then
      problem "$(basename "$file"): a link must be the one line \".so man3/<page>.3\""
    else
      target=$(sed -E 's|^\.so man3/||' "$file")
      if [[ ! -f $man/$target || $(head -c 4 "$man/$target") == ".so " ]]; then
        problem "$(basename "$file"): links to $target, which is not a page in man/"
      fi
    fi
    continue
  fi
  real_pages+=("$file")
  for name in $(sed -nE 's/^\.Nm ([A-Za-z_][A-Za-z0-9_]*)( ,)?$/\1/p' "$file"); do
    if ! grep -qxF "$name" <<<"$all_names"; then
      problem "$name: listed in $(basename "$file") but neither exported by the library nor in zmalloc.h"
    fi
  done
done
if ((${#real_pages[@]} < 3)); then
  problem "only ${#real_pages[@]} pages in man/"
fi

if ! "$man/make-links.sh" --check; then
  problem "man/ links differ from what man/make-links.sh writes"
fi

if ((fail)); then
  exit 1
fi
echo "check_man: $n_exported exported zm_* functions and $n_redis Redis/Valkey names all have pages"

if ! command -v mandoc >/dev/null 2>&1; then
  echo "skipped: mandoc not installed"
  exit 77
fi
out=$(for page in "${real_pages[@]}"; do
  mandoc -T lint -W warning "$page" 2>&1 || { rc=$?; echo "mandoc failed on ${page##*/} (exit $rc)"; }
done)
if [[ -n $out ]]; then
  echo "$out" >&2
  echo "check_man: mandoc -T lint -W warning is not clean" >&2
  exit 1
fi
echo "check_man: mandoc -T lint -W warning clean on ${#real_pages[@]} pages; $(($(ls "$man"/*.3 | wc -l) - ${#real_pages[@]})) links checked"
