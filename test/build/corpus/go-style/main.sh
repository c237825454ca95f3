# the "compiler": writes what the binary will print
echo "hello from a static binary"
