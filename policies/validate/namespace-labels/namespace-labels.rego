# Namespace labels: only the platform changes what decides FlowForge's scope.
#
# A namespace's labels decide what FlowForge enforces in it:
# config.managedNamespaceLabel (flowforge.io/managed: "true") makes every
# Job and Pod there subject to FlowForge, and the selectors of
# config.seccomp.namespaceOverrides (flowforge.io/seccomp: runtime-default)
# relax the seccomp profile of every Job there. A namespace owner who may
# edit their namespace must not be able to opt out or weaken it.
#
# For a Namespace CREATE or UPDATE, denies adding, changing or removing a
# guarded label or annotation unless the user is one of
# config.namespaceGuard.users or in one of config.namespaceGuard.groups.
# Guarded keys: every key the policy reads from a namespace
# (namespace_read_keys) and every key starting with one of
# config.namespaceGuard.prefixes (flowforge.io/), so that a key a future
# policy reads is guarded the day it is added, and annotations too.
# A missing namespaceGuard, or empty lists, let nobody: fail closed.
# Field: metadata.labels[<key>] or metadata.annotations[<key>].
package flowforge.validate

import data.flowforge.config
import data.flowforge.lib.k8s

namespace_guard := object.get(config, "namespaceGuard", {})

namespace_guard_users := {u | some u in object.get(namespace_guard, "users", [])}

namespace_guard_groups := {g | some g in object.get(namespace_guard, "groups", [])}

namespace_guard_prefixes := {p | some p in object.get(namespace_guard, "prefixes", [])}

# namespace_read_keys: the namespace label keys the policy reads.
namespace_read_keys contains config.managedNamespaceLabel.key

namespace_read_keys contains key if {
	some override in object.get(config, ["seccomp", "namespaceOverrides"], [])
	some key, _ in object.get(override, "namespaceSelector", {})
}

namespace_guarded_key(key) if key in namespace_read_keys

namespace_guarded_key(key) if {
	some prefix in namespace_guard_prefixes
	startswith(key, prefix)
}

is_namespace if {
	input.request.kind.group == ""
	k8s.kind == "Namespace"
}

# namespace_guard_allowed: the user may change guarded keys.
namespace_guard_allowed if input.request.userInfo.username in namespace_guard_users

namespace_guard_allowed if {
	some group in input.request.userInfo.groups
	group in namespace_guard_groups
}

namespace_metadata_maps := {"labels": "label", "annotations": "annotation"}

# namespace_changes: every guarded key whose presence or value differs
# between the old namespace (none on CREATE) and the new one.
namespace_changes contains {"map": map_name, "noun": noun, "key": key} if {
	is_namespace
	some map_name, noun in namespace_metadata_maps
	new := namespace_map(k8s.obj, map_name)
	old := namespace_map(k8s.old_obj, map_name)
	some key in (object.keys(new) | object.keys(old))
	namespace_guarded_key(key)
	namespace_value(new, key) != namespace_value(old, key)
}

# namespace_map: the object's labels or annotations; {} when the object, or
# the map, is absent or null.
namespace_map(obj, map_name) := m if {
	m := object.get(obj, ["metadata", map_name], {})
	is_object(m)
} else := {}

# namespace_value tells an absent key from any value, the empty string included.
namespace_value(m, key) := {"value": m[key]}

namespace_value(m, key) := "absent" if not key in object.keys(m)

namespace_guard_violations contains {
	"msg": sprintf(
		"the %s %s decides what FlowForge enforces in namespace %q: only %s may add, change or remove it (namespaceGuard in FlowForge's policy data); user %q may not",
		[c.noun, c.key, object.get(k8s.obj, ["metadata", "name"], ""), namespace_guard_who, object.get(input.request.userInfo, "username", "")],
	),
	"field": k8s.label_field(c.map, c.key),
} if {
	some c in namespace_changes
	not namespace_guard_allowed
}

# namespace_guard_who names who may change guarded keys, for messages.
namespace_guard_who := concat(" or ", namespace_guard_who_parts) if count(namespace_guard_who_parts) > 0

namespace_guard_who := "nobody (namespaceGuard names no users or groups)" if count(namespace_guard_who_parts) == 0

namespace_guard_who_parts := array.concat(
	[namespace_guard_name("group", "members of ", namespace_guard_groups) | count(namespace_guard_groups) > 0],
	[namespace_guard_name("user", "", namespace_guard_users) | count(namespace_guard_users) > 0],
)

namespace_guard_name(noun, lead, names) := sprintf("%sthe %s %s", [lead, noun, joined(names)]) if count(names) == 1

namespace_guard_name(noun, lead, names) := sprintf("%sany of the %ss %s", [lead, noun, joined(sort(names))]) if count(names) > 1

identity_violation contains v if {
	input.request.kind.kind == "Namespace"
	k8s.operation == "CREATE"
	some v in namespace_guard_violations
}

update_violation contains v if {
	k8s.operation == "UPDATE"
	some v in namespace_guard_violations
}
