package flowforge.mutate_test

import data.flowforge.lib.fixtures
import data.flowforge.mutate

test_node_selector_merged if {
	ops(fixtures.job, "nodeSelector") == {mutate.merge_op(
		"nodeSelector",
		["spec", "template", "spec", "nodeSelector"],
		{"flowforge.io/sandbox": "gvisor"},
	)}
}

test_tolerations_unioned if {
	some op in ops(fixtures.job, "tolerations")
	op.op == "union"
	op.value == [{"key": "flowforge.io/sandbox", "operator": "Equal", "value": "gvisor", "effect": "NoSchedule"}]
}
