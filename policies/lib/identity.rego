# METADATA
# title: Requester identity
# description: |
#   Who sent the admission request (input.request.userInfo), and the user
#   id that names them in a user-id label. A label value is at most 63
#   characters of [A-Za-z0-9._-], so a username maps to its canonical,
#   label-safe user id (config.identity):
#     1. an alias from config.identity.aliases, if the username has one;
#     2. a service account system:serviceaccount:<ns>:<name> becomes
#        <serviceAccountPrefix><ns>.<name> ("sa.team-a.backend") when that
#        is a label value (a namespace has no dots, so the form is
#        unambiguous);
#     3. a username that is a label value and starts with neither the
#        service-account nor the hashed prefix is its own user id;
#     4. anything else becomes <hashedPrefix><first 16 hex digits of the
#        username's SHA-256> ("id.2bd806c97f0e00af").
#   Forms 2, 3 and 4 never collide: 3 excludes both prefixes, and 2 and 4
#   start with different ones. Aliases are the platform team's to keep
#   unique.
package flowforge.lib.identity

import data.flowforge.config

username := object.get(input.request, ["userInfo", "username"], "")

groups := object.get(input.request, ["userInfo", "groups"], [])

# member(who): the requester is listed in who.users or belongs to one of
# who.groups.
member(who) if username in object.get(who, "users", [])

member(who) if {
	some group in groups
	group in object.get(who, "groups", [])
}

# label_value(s): s is a label value, at most 63 characters (the bound is
# in the pattern: one, then up to 61, then one).
label_value(s) if regex.match(`^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$`, s)

service_account_id(name) := id if {
	startswith(name, "system:serviceaccount:")
	parts := split(name, ":")
	count(parts) == 4
	parts[2] != ""
	parts[3] != ""
	id := concat("", [config.identity.serviceAccountPrefix, parts[2], ".", parts[3]])
	label_value(id)
}

reserved(name) if strings.any_prefix_match(name, [config.identity.serviceAccountPrefix, config.identity.hashedPrefix])

hashed_id(name) := concat("", [config.identity.hashedPrefix, substring(crypto.sha256(name), 0, 16)])

# user_id(name) is the user id of the username name.
user_id(name) := id if {
	id := config.identity.aliases[name]
} else := id if {
	id := service_account_id(name)
} else := name if {
	name != ""
	label_value(name)
	not reserved(name)
} else := hashed_id(name)

# requester_user_id: the user id of whoever sent this request.
requester_user_id := user_id(username)
