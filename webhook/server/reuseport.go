package server

import (
	"context"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// reusePortControl sets SO_REUSEPORT (and SO_REUSEADDR) on a socket before
// it binds.
func reusePortControl(_, _ string, rc syscall.RawConn) error {
	var sockErr error
	if err := rc.Control(func(fd uintptr) {
		if sockErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); sockErr != nil {
			return
		}
		sockErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}
	if sockErr != nil {
		return fmt.Errorf("set SO_REUSEPORT: %w", sockErr)
	}
	return nil
}

// listenReusePort listens on addr with SO_REUSEPORT.
func listenReusePort(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: reusePortControl}
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s with SO_REUSEPORT: %w", addr, err)
	}
	return l, nil
}
