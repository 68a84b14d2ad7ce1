package controller

import (
	"testing"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckLoopback(t *testing.T) {
	tests := []struct {
		addr string
		ok   bool
	}{
		{"", true},
		{"0", true},
		{"127.0.0.1:8082", true},
		{"localhost:8082", true},
		{"[::1]:8082", true},
		{":8082", false},
		{"0.0.0.0:8082", false},
		{"10.1.2.3:8082", false},
		{"no-port", false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			err := checkLoopback(tt.addr)
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.addr)
		})
	}
}

func TestNewHistoryAPI(t *testing.T) {
	h, err := newHistoryAPI(Options{HistoryAPIAddr: "0"}, nil, nil, logr.Discard())
	require.NoError(t, err)
	assert.Nil(t, h, "disabled")
	h, err = newHistoryAPI(Options{}, nil, nil, logr.Discard())
	require.NoError(t, err)
	assert.Nil(t, h, "disabled by default")
	_, err = newHistoryAPI(Options{HistoryAPIAddr: ":8443"}, nil, nil, logr.Discard())
	require.ErrorContains(t, err, "no certificate directory")
	h, err = newHistoryAPI(Options{HistoryAPIAddr: ":8443", HistoryCertDir: "/certs"}, nil, nil, logr.Discard())
	require.NoError(t, err)
	require.NotNil(t, h)
	assert.False(t, h.NeedLeaderElection(), "every replica serves the history")
	assert.Equal(t, ":8443", h.addr)
}
