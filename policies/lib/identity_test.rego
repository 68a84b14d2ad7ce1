package flowforge.lib.identity_test

import data.flowforge.lib.identity

test_label_safe_username_is_its_own_user_id if {
	identity.user_id("alice") == "alice"
	identity.user_id("kubernetes-admin") == "kubernetes-admin"
	identity.user_id("Alice.Smith_2") == "Alice.Smith_2"
}

test_label_value_length_bounds if {
	longest := concat("", [x | some _ in numbers.range(1, 63); x := "a"])
	identity.user_id(longest) == longest
	identity.user_id("a") == "a"
	identity.label_value("")
	not identity.label_value(concat("", [longest, "a"]))
}

test_service_account_user_id if {
	identity.user_id("system:serviceaccount:flowforge-system:flowforge-backend") == "sa.flowforge-system.flowforge-backend"
}

test_long_service_account_is_hashed if {
	name := concat("", ["system:serviceaccount:team:", concat("", [x | some _ in numbers.range(1, 70); x := "a"])])
	identity.user_id(name) == concat("", ["id.", substring(crypto.sha256(name), 0, 16)])
}

test_malformed_service_account_is_hashed if {
	identity.user_id("system:serviceaccount:team") == concat("", ["id.", substring(crypto.sha256("system:serviceaccount:team"), 0, 16)])
}

test_unsafe_usernames_are_hashed if {
	some name in ["alice@example.com", "https://issuer.example.com#1234", "", "-alice", concat("", [x | some _ in numbers.range(1, 64); x := "a"])]
	identity.user_id(name) == concat("", ["id.", substring(crypto.sha256(name), 0, 16)])
}

test_reserved_prefixes_are_hashed if {
	# A human named like a service account's or a hashed user id cannot
	# take that id.
	identity.user_id("sa.flowforge-system.flowforge-backend") != "sa.flowforge-system.flowforge-backend"
	identity.user_id("id.0123456789abcdef") != "id.0123456789abcdef"
	startswith(identity.user_id("sa.flowforge-system.flowforge-backend"), "id.")
}

test_alias_wins if {
	identity.user_id("alice@example.com") == "alice" with data.flowforge.config.identity.aliases as {"alice@example.com": "alice"}
}

test_hashed_user_id_is_a_label_value if {
	identity.label_value(identity.user_id("alice@example.com"))
}

test_membership if {
	identity.member({"users": ["bob"]}) with input as {"request": {"userInfo": {"username": "bob"}}}
	identity.member({"groups": ["ops"]}) with input as {"request": {"userInfo": {"username": "carol", "groups": ["dev", "ops"]}}}
	not identity.member({"users": ["bob"], "groups": ["ops"]}) with input as {"request": {"userInfo": {"username": "carol", "groups": ["dev"]}}}
	not identity.member({"users": ["bob"]}) with input as {"request": {}}
}
