package deploy

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

type seccompProfile struct {
	DefaultAction string   `json:"defaultAction"`
	Architectures []string `json:"architectures"`
	Syscalls      []struct {
		Names    []string         `json:"names"`
		Action   string           `json:"action"`
		ErrnoRet *int             `json:"errnoRet"`
		Args     []map[string]any `json:"args"`
	} `json:"syscalls"`
}

func readProfile(t *testing.T) seccompProfile {
	t.Helper()
	data, err := os.ReadFile("seccomp/claude-worker.json")
	require.NoError(t, err)
	var p seccompProfile
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields() // the fields the operator's SeccompProfile has, and no others
	require.NoError(t, dec.Decode(&p))
	return p
}

func TestTheSeccompProfileDeniesWhatItShould(t *testing.T) {
	p := readProfile(t)
	require.Equal(t, "SCMP_ACT_ERRNO", p.DefaultAction)
	require.Equal(t, []string{"SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"}, p.Architectures, "no 32-bit ABI")
	allowed := map[string]bool{}
	for _, s := range p.Syscalls {
		if s.Action == "SCMP_ACT_ALLOW" && len(s.Args) == 0 {
			for _, n := range s.Names {
				allowed[n] = true
			}
		}
	}
	for _, n := range []string{"read", "write", "execve", "openat", "mmap", "futex", "epoll_pwait", "arch_prctl", "rseq", "getdents64", "statx", "pipe2", "wait4"} {
		require.True(t, allowed[n], "a coding agent needs %s", n)
	}
	for _, n := range []string{"ptrace", "process_vm_readv", "process_vm_writev", "modify_ldt", "name_to_handle_at", "memfd_secret",
		"mount", "umount2", "unshare", "setns", "bpf", "perf_event_open", "keyctl", "add_key", "request_key", "io_uring_setup",
		"userfaultfd", "kexec_load", "init_module", "reboot", "swapon", "pivot_root", "chroot", "open_by_handle_at", "clone3", "clone", "socket"} {
		require.False(t, allowed[n], "%s is not allowed unconditionally", n)
	}
	var clone, clone3 bool
	for _, s := range p.Syscalls {
		switch {
		case slices.Equal(s.Names, []string{"clone"}):
			clone = s.Action == "SCMP_ACT_ALLOW" && len(s.Args) == 1 && s.Args[0]["op"] == "SCMP_CMP_MASKED_EQ" && s.Args[0]["value"] == float64(0x7E020000)
		case slices.Equal(s.Names, []string{"clone3"}):
			clone3 = s.Action == "SCMP_ACT_ERRNO" && s.ErrnoRet != nil && *s.ErrnoRet == 38
		}
	}
	require.True(t, clone, "clone only without namespace flags")
	require.True(t, clone3, "clone3 fails with ENOSYS, so the C library falls back to clone")
}

func TestTheSeccompDocListsEveryAllowedSyscall(t *testing.T) {
	doc, err := os.ReadFile("../docs/seccomp.md")
	require.NoError(t, err)
	p := readProfile(t)
	for _, s := range p.Syscalls {
		for _, n := range s.Names {
			require.Contains(t, string(doc), "`"+n+"`", "docs/seccomp.md lists %s", n)
		}
	}
}
