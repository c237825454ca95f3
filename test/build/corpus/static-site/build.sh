# build.sh SRC OUT: every content/*.txt becomes OUT/<name>.html, and an index links them
set -e
src=$1 out=$2
mkdir -p "$out"
echo "<ul>" > "$out/index.html"
for f in "$src"/*.txt; do
  name=$(basename "$f" .txt)
  { echo "<h1>$name</h1>"; sed 's/^/<p>/' "$f"; } > "$out/$name.html"
  echo "<li><a href=\"$name.html\">$name</a></li>" >> "$out/index.html"
done
echo "</ul>" >> "$out/index.html"
