# Shared by the walk-throughs.

# field PATH: print one value of the JSON on stdin, e.g. `field options.1.id`
field() {
  python3 -c 'import json, sys
value = json.load(sys.stdin)
for key in sys.argv[1].split("."):
    value = value[int(key) if key.isdigit() else key]
print(value)' "$1"
}
