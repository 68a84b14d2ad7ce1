# METADATA
# title: Resource quantities
# description: Compare Kubernetes quantities ("500m", "2Gi", "1") as numbers.
package flowforge.lib.quantity

# value is the numeric value of a quantity; numbers pass through.
value(q) := q if is_number(q)

value(q) := units.parse(q) if is_string(q)

# le(a, b): quantity a is at most quantity b.
le(a, b) if value(a) <= value(b)

# min(a, b) returns the smaller quantity, in its own spelling.
min(a, b) := a if le(a, b)

min(a, b) := b if not le(a, b)
