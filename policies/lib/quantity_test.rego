package flowforge.lib.quantity_test

import data.flowforge.lib.quantity

test_value if {
	quantity.value("500m") == 0.5
	quantity.value("2Gi") == 2147483648
	quantity.value(3) == 3
}

test_le if {
	quantity.le("500m", "1")
	quantity.le("1Gi", "1Gi")
	not quantity.le("2Gi", "2G")
}

test_min if {
	quantity.min("1Gi", "512Mi") == "512Mi"
	quantity.min("250m", "1") == "250m"
}
