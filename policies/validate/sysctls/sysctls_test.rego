package flowforge.validate.sysctls_test

import data.flowforge.validate
import data.flowforge.validate.testing as t

test_unsafe_sysctl_denied if {
	obj := t.job([t.set("/spec/template/spec/securityContext/sysctls", [
		{"name": "net.ipv4.tcp_syncookies", "value": "1"},
		{"name": "kernel.msgmax", "value": "65536"},
	])])
	denials := t.job_deny(obj)
	t.fields(denials) == {"spec.template.spec.securityContext.sysctls[1].name"}
	some d in denials
	startswith(d.msg, "sysctl kernel.msgmax is not allowed (allowed: kernel.shm_rmid_forced, net.ipv4.ip_local_port_range,")
}

test_slash_separated_sysctls if {
	unsafe := t.pod([t.set("/spec/securityContext/sysctls", [{"name": "net/ipv4/conf/all/forwarding", "value": "1"}])])
	t.fields(t.pod_deny(unsafe)) == {"spec.securityContext.sysctls[0].name"}
	safe := t.pod([t.set("/spec/securityContext/sysctls", [{"name": "net/ipv4/ping_group_range", "value": "0 1000"}])])
	count(t.pod_deny(safe)) == 0
}

test_sysctl_name if {
	validate.sysctl_name("net/ipv4/tcp_syncookies") == "net.ipv4.tcp_syncookies"
	validate.sysctl_name("net/ipv4/conf/eth0.100/rp_filter") == "net.ipv4.conf.eth0/100.rp_filter"
	validate.sysctl_name("kernel.shm_rmid_forced") == "kernel.shm_rmid_forced"
}

test_safe_sysctls_admitted if {
	obj := t.job([t.set("/spec/template/spec/securityContext/sysctls", [
		{"name": "net.ipv4.ip_unprivileged_port_start", "value": "80"},
		{"name": "kernel.shm_rmid_forced", "value": "1"},
	])])
	count(t.job_deny(obj)) == 0
}
