package history

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestContinueTokens(t *testing.T) {
	j := Job{UID: "8f2c/odd:uid", Created: time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC)}
	token := ContinueAfter(j)
	ms, uid, err := ParseContinue(token)
	require.NoError(t, err)
	require.Equal(t, j.Created.UnixMilli(), ms, "milliseconds, as stored")
	require.Equal(t, j.UID, uid, "the UID survives, slashes included")

	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for name, bad := range map[string]string{
		"not base64":      "!!",
		"no separator":    enc("12345"),
		"no uid":          enc("12345/"),
		"not a number":    enc("soon/uid"),
		"negative":        enc("-5/uid"),
		"padded base64":   base64.URLEncoding.EncodeToString([]byte("1/uu")),
		"empty time part": enc("/uid"),
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := ParseContinue(bad)
			require.ErrorContains(t, err, "not a token from a previous page")
		})
	}
}
