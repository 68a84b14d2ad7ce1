package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// EnvBinDir names the environment variable that points at the directory of
// initdb and postgres, overriding the search.
const EnvBinDir = "FLOWFORGE_POSTGRES_BIN"

// Superuser is the role the server is initialised with (trust
// authentication on loopback).
const Superuser = "postgres"

// osUser is the OS account the server runs as when the test runs as root.
const osUser = "postgres"

// logTailLines is how much of the server's log an error shows.
const logTailLines = 30

// startAttempts bounds the retries when another process takes the free
// port between choosing it and the server binding it.
const startAttempts = 3

// Options configure Start. The zero value is ready to use.
type Options struct {
	// BinDir holds initdb, postgres, pg_isready and createdb; default:
	// FindBinDir.
	BinDir string
	// StartTimeout bounds initdb plus the server's start (default 60s).
	StartTimeout time.Duration
	// Settings are extra `-c name=value` server settings (they override the
	// defaults, e.g. "max_connections": "200").
	Settings map[string]string
}

// Server is a running PostgreSQL server.
type Server struct {
	// Port is the loopback TCP port the server listens on.
	Port int
	// Dir is the server's temporary directory (data directory and log).
	Dir string

	binDir  string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	waitErr error
	stop    sync.Once
	stopErr error
}

// FindBinDir returns the directory of the PostgreSQL server binaries:
// $FLOWFORGE_POSTGRES_BIN, else the newest /usr/lib/postgresql/<n>/bin
// (Debian's layout), else the directory of initdb on $PATH.
func FindBinDir() (string, error) {
	if dir := os.Getenv(EnvBinDir); dir != "" {
		if err := checkBinDir(dir); err != nil {
			return "", fmt.Errorf("postgres: $%s: %w", EnvBinDir, err)
		}
		return dir, nil
	}
	if dir := newestDebianBinDir("/usr/lib/postgresql"); dir != "" {
		return dir, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		dir := filepath.Dir(p)
		if checkBinDir(dir) == nil {
			return dir, nil
		}
	}
	return "", errors.New("postgres: PostgreSQL server binaries (initdb, postgres) not found: " +
		"install Debian's postgresql (`apt-get install -y postgresql`, as .ci/run does) or set $" + EnvBinDir)
}

// newestDebianBinDir returns root/<version>/bin of the highest numeric
// version that holds the server binaries, or "".
func newestDebianBinDir(root string) string {
	entries, err := os.ReadDir(root)
	if err != nil {
		return ""
	}
	type candidate struct {
		version float64
		dir     string
	}
	var found []candidate
	for _, e := range entries {
		v, err := strconv.ParseFloat(e.Name(), 64)
		if err != nil {
			continue
		}
		dir := filepath.Join(root, e.Name(), "bin")
		if checkBinDir(dir) == nil {
			found = append(found, candidate{v, dir})
		}
	}
	if len(found) == 0 {
		return ""
	}
	sort.Slice(found, func(i, j int) bool { return found[i].version > found[j].version })
	return found[0].dir
}

// checkBinDir reports a missing server binary in dir.
func checkBinDir(dir string) error {
	for _, name := range []string{"initdb", "postgres", "pg_isready", "createdb"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("%s not in %s: %w", name, dir, err)
		}
	}
	return nil
}

// ForTest starts a server for t (or a benchmark) and stops it when t ends;
// it fails t if the server cannot start (tests never skip for a missing
// server).
func ForTest(t testing.TB) *Server {
	t.Helper()
	s, err := Start(context.Background(), Options{})
	if err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop postgres: %v", err)
		}
	})
	return s
}

// Start initialises a new cluster in a temporary directory and starts the
// server on a free loopback port, returning once it accepts connections.
// The caller must Stop it; it also dies with this process.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.BinDir == "" {
		dir, err := FindBinDir()
		if err != nil {
			return nil, err
		}
		opts.BinDir = dir
	} else if err := checkBinDir(opts.BinDir); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()

	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "flowforge-postgres-")
	if err != nil {
		return nil, fmt.Errorf("postgres: temp dir: %w", err)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("postgres: chown %s to the %s user: %w", dir, osUser, err)
		}
	}
	s := &Server{Dir: dir, binDir: opts.BinDir, logPath: filepath.Join(dir, "postgres.log")}
	if err := s.initdb(ctx, cred); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		err = s.start(ctx, cred, opts.Settings)
		if err == nil {
			return s, nil
		}
		if attempt >= startAttempts || !errors.Is(err, errPortTaken) || ctx.Err() != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
}

// serverCredential returns the credential of the postgres OS user when this
// process is root, nil otherwise (the server then runs as this user).
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(osUser)
	if err != nil {
		return nil, fmt.Errorf("postgres: running as root, and PostgreSQL refuses root: need the %q OS user (Debian's postgresql package creates it): %w", osUser, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres: uid of %s: %w", osUser, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres: gid of %s: %w", osUser, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// command builds a command of bin dir's program, run as cred (if set), that
// gets SIGKILL when this process dies.
func (s *Server) command(ctx context.Context, cred *syscall.Credential, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(s.binDir, name), args...) //nolint:gosec // the system's PostgreSQL binaries
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C", "PGTZ=UTC", "TZ=UTC")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	return cmd
}

// initdb creates the cluster's data directory.
func (s *Server) initdb(ctx context.Context, cred *syscall.Credential) error {
	cmd := s.command(ctx, cred, "initdb",
		"--pgdata", s.dataDir(), "--username", Superuser, "--auth", "trust",
		"--encoding", "UTF8", "--locale", "C", "--no-sync", "--no-instructions")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("postgres: initdb: %w\n%s", err, lastLines(string(out), logTailLines))
	}
	return nil
}

func (s *Server) dataDir() string { return filepath.Join(s.Dir, "data") }

// errPortTaken marks a start that failed because the port was taken.
var errPortTaken = errors.New("port taken")

// bindFailure matches the log line of a server that could not bind.
var bindFailure = regexp.MustCompile(`could not (bind|create listen socket)|Address already in use`)

// start runs the server on a new free port and waits until it is ready.
func (s *Server) start(ctx context.Context, cred *syscall.Credential, extra map[string]string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	settings := map[string]string{
		"listen_addresses":        "127.0.0.1",
		"port":                    strconv.Itoa(port),
		"unix_socket_directories": "", // TCP only: no socket path length limits, nothing in /var/run
		// Test data: durability is not needed, speed is.
		"fsync":              "off",
		"synchronous_commit": "off",
		"full_page_writes":   "off",
		"shared_buffers":     "64MB",
		// Segments live in the data directory, which Stop removes even
		// after a kill (posix would leave them in /dev/shm).
		"dynamic_shared_memory_type": "mmap",
		"max_connections":            "200",
		"log_min_messages":           "warning",
		"log_timezone":               "UTC",
		"TimeZone":                   "UTC",
	}
	for k, v := range extra {
		settings[k] = v
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	args := []string{"-D", s.dataDir()}
	for _, k := range keys {
		args = append(args, "-c", k+"="+settings[k])
	}
	logFile, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("postgres: create log: %w", err)
	}
	// Not CommandContext: the server outlives the start's context.
	cmd := s.command(context.Background(), cred, "postgres", args...) //nolint:contextcheck // the server outlives Start
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return fmt.Errorf("postgres: start server: %w", err)
	}
	s.Port, s.cmd, s.exited, s.waitErr = port, cmd, make(chan struct{}), nil
	exited := s.exited
	go func() {
		s.waitErr = cmd.Wait()
		_ = logFile.Close()
		close(exited)
	}()
	ticker := time.NewTicker(50 * time.Millisecond)
	defer ticker.Stop()
	for {
		if s.ready(ctx) {
			return nil
		}
		select {
		case <-exited:
			log := s.LogTail()
			if bindFailure.MatchString(log) {
				return fmt.Errorf("postgres: port %d: %w", port, errPortTaken)
			}
			return fmt.Errorf("postgres: server exited before it was ready (%v)\n--- last lines of %s ---\n%s", s.waitErr, s.logPath, log)
		case <-ctx.Done():
			s.kill()
			return fmt.Errorf("postgres: server not ready on port %d: %w\n--- last lines of %s ---\n%s", port, ctx.Err(), s.logPath, s.LogTail())
		case <-ticker.C:
		}
	}
}

// ready reports whether the server accepts connections.
func (s *Server) ready(ctx context.Context) bool {
	cmd := exec.CommandContext(ctx, filepath.Join(s.binDir, "pg_isready"), //nolint:gosec // the system's PostgreSQL binaries
		"--host", "127.0.0.1", "--port", strconv.Itoa(s.Port), "--username", Superuser, "--dbname", "postgres", "--quiet")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd.Run() == nil
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("postgres: free port: %w", err)
	}
	defer l.Close() //nolint:errcheck // only probing
	return l.Addr().(*net.TCPAddr).Port, nil
}

// URL returns a connection URL (pgx and libpq accept it) for database db
// ("" means the default database, postgres).
func (s *Server) URL(db string) string {
	if db == "" {
		db = "postgres"
	}
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(Superuser),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// databaseName is what CreateDatabase accepts: no quoting needed.
var databaseName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// CreateDatabase creates an empty database (one per test keeps tests that
// share a server apart) and returns its URL.
func (s *Server) CreateDatabase(ctx context.Context, name string) (string, error) {
	if !databaseName.MatchString(name) {
		return "", fmt.Errorf("postgres: database name %q: want lower-case letters, digits and _ (at most 63)", name)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(s.binDir, "createdb"), //nolint:gosec // the system's PostgreSQL binaries
		"--host", "127.0.0.1", "--port", strconv.Itoa(s.Port), "--username", Superuser, name)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("postgres: create database %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return s.URL(name), nil
}

// Running reports whether the server process has not exited.
func (s *Server) Running() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// Stop shuts the server down (fast shutdown, then SIGKILL after 10s) and
// removes its directory. It is safe to call more than once.
func (s *Server) Stop() error {
	s.stop.Do(func() {
		if s.Running() {
			// SIGINT is PostgreSQL's fast shutdown: roll back, close, exit.
			_ = s.cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-s.exited:
			case <-time.After(10 * time.Second):
				s.kill()
			}
		}
		if err := os.RemoveAll(s.Dir); err != nil {
			s.stopErr = fmt.Errorf("postgres: remove %s: %w", s.Dir, err)
		}
	})
	return s.stopErr
}

// kill sends SIGKILL to the server's process group, waits for it, and
// removes the small System V shared memory segment a killed server leaves.
func (s *Server) kill() {
	if !s.Running() {
		return
	}
	shmid, hasShm := SharedMemoryID(s.dataDir())
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.exited
	if hasShm {
		_, _ = unix.SysvShmCtl(shmid, unix.IPC_RMID, nil)
	}
}

// SharedMemoryID returns the System V shared memory id that the server of
// dataDir recorded in postmaster.pid (a server that is killed, not shut
// down, leaves that segment behind).
func SharedMemoryID(dataDir string) (int, bool) {
	data, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	lines := strings.Split(string(data), "\n")
	const shmLine = 6 // "key shmid", the 7th line
	if len(lines) <= shmLine {
		return 0, false
	}
	fields := strings.Fields(lines[shmLine])
	if len(fields) != 2 {
		return 0, false
	}
	id, err := strconv.Atoi(fields[1])
	return id, err == nil
}

// LogTail returns the last lines of the server's log.
func (s *Server) LogTail() string {
	data, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	return lastLines(string(data), logTailLines)
}

// lastLines returns the last n lines of text.
func lastLines(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
