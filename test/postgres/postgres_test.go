package postgres

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// envChild makes the test binary act as a child that starts a server,
// prints its pid and port, and waits to be killed.
const envChild = "FLOWFORGE_POSTGRES_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(envChild) != "" {
		s, err := Start(context.Background(), Options{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		shmid, _ := SharedMemoryID(s.dataDir())
		fmt.Printf("%d %d %d %s\n", s.cmd.Process.Pid, s.Port, shmid, s.Dir)
		select {} // until killed
	}
	os.Exit(m.Run())
}

// psql runs one statement against url and returns its unaligned output.
func psql(t *testing.T, url, sql string) string {
	t.Helper()
	dir, err := FindBinDir()
	require.NoError(t, err)
	out, err := exec.Command(filepath.Join(dir, "psql"), "--no-psqlrc", "-XAtq", "-d", url, "-c", sql).CombinedOutput() //nolint:gosec // test
	require.NoError(t, err, "psql: %s", out)
	return strings.TrimSpace(string(out))
}

// processUID returns the real uid of a process.
func processUID(t *testing.T, pid int) int {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	defer f.Close() //nolint:errcheck // read-only
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "Uid:"); ok {
			uid, err := strconv.Atoi(strings.Fields(rest)[0])
			require.NoError(t, err)
			return uid
		}
	}
	t.Fatalf("no Uid line for pid %d", pid)
	return -1
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func TestServerServesDatabases(t *testing.T) {
	s := ForTest(t)
	require.True(t, s.Running())
	require.Equal(t, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.Port), s.URL(""))
	require.Regexp(t, `^\d+\.\d+`, psql(t, s.URL(""), "SHOW server_version"))

	ctx := context.Background()
	a, err := s.CreateDatabase(ctx, "flowforge_a")
	require.NoError(t, err)
	b, err := s.CreateDatabase(ctx, "flowforge_b")
	require.NoError(t, err)
	psql(t, a, "CREATE TABLE t (v int); INSERT INTO t VALUES (41), (1)")
	require.Equal(t, "42", psql(t, a, "SELECT sum(v) FROM t"))
	require.Equal(t, "0", psql(t, b, "SELECT count(*) FROM pg_tables WHERE tablename = 't'"), "databases are separate")
	require.Equal(t, "127.0.0.1", psql(t, a, "SHOW listen_addresses"))

	_, err = s.CreateDatabase(ctx, "flowforge_a")
	require.ErrorContains(t, err, "already exists")
	_, err = s.CreateDatabase(ctx, "bad; DROP")
	require.ErrorContains(t, err, "lower-case letters")

	if os.Geteuid() == 0 {
		u, err := user.Lookup(osUser)
		require.NoError(t, err)
		require.Equal(t, u.Uid, strconv.Itoa(processUID(t, s.cmd.Process.Pid)), "as root, the server runs as the postgres user")
	} else {
		require.Equal(t, os.Getuid(), processUID(t, s.cmd.Process.Pid))
	}
}

func TestStopRemovesEverything(t *testing.T) {
	s, err := Start(context.Background(), Options{Settings: map[string]string{"max_connections": "20"}})
	require.NoError(t, err)
	require.Equal(t, "20", psql(t, s.URL(""), "SHOW max_connections"))
	pid := s.cmd.Process.Pid
	require.NoError(t, s.Stop())
	require.False(t, s.Running())
	require.False(t, alive(pid))
	require.NoDirExists(t, s.Dir)
	require.NoError(t, s.Stop(), "a second Stop is a no-op")
}

func TestServerDiesWithTheTestProcess(t *testing.T) {
	self, err := os.Executable()
	require.NoError(t, err)
	child := exec.Command(self, "-test.run", "^$") //nolint:gosec // the test binary itself
	child.Env = append(os.Environ(), envChild+"=1")
	child.Stderr = os.Stderr
	out, err := child.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, child.Start())
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	var pid, port, shmid int
	var dir string
	_, err = fmt.Sscanf(line, "%d %d %d %s", &pid, &port, &shmid, &dir)
	require.NoError(t, err)
	require.Positive(t, shmid)
	t.Cleanup(func() {
		_ = os.RemoveAll(dir)
		_, _ = unix.SysvShmCtl(shmid, unix.IPC_RMID, nil)
	})
	require.True(t, alive(pid))

	require.NoError(t, child.Process.Signal(syscall.SIGKILL))
	_ = child.Wait()
	require.Eventually(t, func() bool {
		// The server is the killed process's child: once reaped by init it
		// disappears (a zombie still answers kill 0, so read its state).
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		return err != nil || strings.Contains(string(data), ") Z ")
	}, 30*time.Second, 50*time.Millisecond, "the server outlived the process that started it")
}

func TestBadBinDir(t *testing.T) {
	_, err := Start(context.Background(), Options{BinDir: t.TempDir()})
	require.ErrorContains(t, err, "initdb not in")

	t.Setenv(EnvBinDir, t.TempDir())
	_, err = FindBinDir()
	require.ErrorContains(t, err, EnvBinDir)
}

func TestNewestDebianBinDir(t *testing.T) {
	root := t.TempDir()
	for _, v := range []string{"9.6", "15", "13", "notaversion"} {
		bin := filepath.Join(root, v, "bin")
		require.NoError(t, os.MkdirAll(bin, 0o755))
		for _, name := range []string{"initdb", "postgres", "pg_isready", "createdb"} {
			require.NoError(t, os.WriteFile(filepath.Join(bin, name), nil, 0o755))
		}
	}
	require.NoError(t, os.MkdirAll(filepath.Join(root, "16", "bin"), 0o755)) // no binaries: skipped
	require.Equal(t, filepath.Join(root, "15", "bin"), newestDebianBinDir(root))
	require.Empty(t, newestDebianBinDir(filepath.Join(root, "missing")))
}

func TestLastLines(t *testing.T) {
	require.Equal(t, "c\nd", lastLines("a\nb\nc\nd\n", 2))
	require.Equal(t, "a", lastLines("a", 5))
}
