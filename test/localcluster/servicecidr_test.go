package localcluster

import (
	"net"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestServiceRangesAreExclusive(t *testing.T) {
	a, err := reserveServiceRange()
	require.NoError(t, err)
	defer a.release()
	b, err := reserveServiceRange()
	require.NoError(t, err)
	defer b.release()
	require.NotEqual(t, a.octet, b.octet, "two live clusters got the same range")

	// While a holds its range, nobody else can take it.
	_, err = lockRange(a.octet)
	require.ErrorIs(t, err, syscall.EWOULDBLOCK)

	// Released, it is free again.
	a.release()
	f, err := lockRange(a.octet)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func TestServiceRangeAddresses(t *testing.T) {
	r := &serviceRange{octet: 42}
	require.Equal(t, "127.99.42.0/24", r.cidr())
	_, network, err := net.ParseCIDR(r.cidr())
	require.NoError(t, err)
	c := &Cluster{svc: r}
	for _, host := range []int{WebhookServiceHost, HistoryAPIServiceHost} {
		ip, err := c.ClusterIP(host)
		require.NoError(t, err)
		require.True(t, network.Contains(net.ParseIP(ip)), ip)
		require.True(t, net.ParseIP(ip).IsLoopback(), ip)
	}
	ip, err := c.ClusterIP(WebhookServiceHost)
	require.NoError(t, err)
	require.Equal(t, "127.99.42.10", ip)

	for _, bad := range []int{-1, 0, 1, 255, 1000} {
		_, err := c.ClusterIP(bad)
		require.Error(t, err, "host %d", bad)
	}
	_, err = (&Cluster{}).ClusterIP(WebhookServiceHost)
	require.ErrorContains(t, err, "no service range")
}

func TestServicePort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	busy := l.Addr().(*net.TCPAddr).Port
	_, err = ServicePort("127.0.0.1", busy)
	require.ErrorContains(t, err, "service address", "an address in use is an error, not a silent other port")
	require.NoError(t, l.Close())

	got, err := ServicePort("127.0.0.1", busy)
	require.NoError(t, err)
	require.Equal(t, busy, got, "a free port the process may bind is kept")
}
