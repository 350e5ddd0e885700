#!/bin/sh
# build.sh OUT "compiles" the greeting program to OUT: it bakes the text of
# greeting.txt into a small executable script.
set -eu
out=$1
greeting=$(cat greeting.txt)
echo "compiling $out"
mkdir -p "$(dirname "$out")"
cat >"$out" <<PROGRAM
#!/bin/sh
echo "$greeting, \${GREETING_NAME:-world}! (running as \$(id -un) in \$(pwd))"
PROGRAM
chmod 0755 "$out"
echo "built $out ($(wc -c <"$out") bytes)"
