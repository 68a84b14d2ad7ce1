package flowforge.validate.pod_resize_test

import data.flowforge.lib.fixtures
import data.flowforge.validate.testing as t

resized(cpu) := t.pod([t.set("/spec/containers/0/resources/limits/cpu", cpu)])

test_resize_is_denied_with_the_container_named if {
	d := t.pod_update_deny(fixtures.pod, resized("1"), "resize")
	"spec.containers[0].resources" in t.fields(d)
}

test_resize_within_the_profile_is_denied_too if {
	d := t.pod_update_deny(fixtures.pod, resized("1500m"), "resize")
	"spec.containers[0].resources" in t.fields(d)
}

test_resize_that_changes_nothing_is_denied if {
	t.fields(t.pod_update_deny(fixtures.pod, fixtures.pod, "resize")) == {"spec"}
}

test_unlabelled_pod_may_be_resized if {
	old := json.patch(fixtures.pod, [t.remove("/metadata/labels/app")])
	new := json.patch(resized("1"), [t.remove("/metadata/labels/app")])
	count(t.pod_update_deny(old, new, "resize")) == 0
}

test_other_pod_updates_are_unaffected if {
	new := json.patch(fixtures.pod, [t.set("/metadata/finalizers", [])])
	count(t.pod_update_deny(fixtures.pod, new, "")) == 0
	count(t.pod_update_deny(fixtures.pod, new, "status")) == 0
}
